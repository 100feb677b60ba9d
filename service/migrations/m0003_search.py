"""Full-text search: the study and reference indexes (FTS5 on SQLite, tsvector + GIN on Postgres).

They are filled once the upgrade is complete (`REINDEX_AFTER`), from the records already there.
"""

from service.search import index

REINDEX_AFTER = True


def upgrade(db, migrator) -> None:
    index.create_tables(db)
