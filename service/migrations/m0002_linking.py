"""Automatic linking: identifiers found in each reference, and the manual unlinks automation respects.

References already in the register are scanned once the upgrade is complete (`RELINK_AFTER`), by
the same code `study-register relink` runs, so an upgraded register links like a new one.
"""

from peewee import CharField, DateTimeField, ForeignKeyField, Model

from service.db import IdField

RELINK_AFTER = True


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Study(Base):
        id = IdField()

    class Reference(Base):
        id = IdField()

    class ReferenceIdentifier(Base):
        id = IdField()
        reference = ForeignKeyField(Reference, on_delete="CASCADE")
        identifier = CharField(max_length=100, index=True)
        registry = CharField(max_length=40)

        class Meta:
            indexes = ((("reference", "identifier"), True),)

    class LinkSuppression(Base):
        id = IdField()
        study = ForeignKeyField(Study, on_delete="CASCADE")
        reference = ForeignKeyField(Reference, on_delete="CASCADE", index=True)
        created = DateTimeField()

        class Meta:
            indexes = ((("study", "reference"), True),)

    db.create_tables([ReferenceIdentifier, LinkSuppression])
