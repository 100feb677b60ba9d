"""The register's write generation (service/generation.py): a one-row counter and, on every table a public
read shows, triggers that move it on each committed write. Nothing else changes. `migrations.upgrade`
installs the triggers again after every run, so a table a later migration adds is tracked too."""

from ..generation import install_triggers


def upgrade(db, migrator) -> None:
    install_triggers(db)
