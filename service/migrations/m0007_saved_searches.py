"""Saved searches for living reviews: a strategy (`q` as written) and its study filters kept by name, and
each run of it (when, how many studies it answered, the `since` it used). Two new tables; nothing that is
there changes."""

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField

from service.db import IdField


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class SavedSearch(Base):
        id = IdField()
        name = CharField(max_length=200)
        q = TextField()
        filters = TextField(default="{}")
        created = DateTimeField()
        updated = DateTimeField()

    class SearchRun(Base):
        id = IdField()
        search = ForeignKeyField(SavedSearch, on_delete="CASCADE", index=True)
        run_at = DateTimeField(index=True)
        total = IntegerField()
        since = DateTimeField(null=True)

    db.create_tables([SavedSearch, SearchRun])
