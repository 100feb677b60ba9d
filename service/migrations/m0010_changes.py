"""The change feed: one new table, `change` (domain/changes.py), append-only. Nothing that is there changes.

The past cannot be invented: every study and reference already in the register gets one `snapshot` change
(its state now, actor `migration`), so a mirror replaying the feed from the start still holds every record;
what happened before the upgrade (edits, deletions, merges) is not in the feed (merged ids stay listed in
`GET /studies/merged`)."""

from peewee import CharField, DateTimeField, IntegerField, Model, TextField

from service.db import IdField
from service.models import utcnow


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Change(Base):
        seq = IdField()
        at = DateTimeField(default=utcnow, index=True)
        kind = CharField(max_length=10)
        record_id = IntegerField()
        action = CharField(max_length=10)
        actor = CharField(max_length=200, null=True)
        field_names = TextField(default="[]")
        state = TextField(null=True)
        merged_into = IntegerField(null=True)

        class Meta:
            indexes = ((("kind", "record_id", "seq"), False),)

    db.create_tables([Change])

    from service.domain.changes import snapshot_all

    snapshot_all()
