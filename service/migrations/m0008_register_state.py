"""The register's own settings (`register_state`: the cursor-signing key made when no SECRET_KEY is set)
and the `Idempotency-Key`s of writes (`idempotency_key`). Two new tables; nothing that is there changes.
The signing key is made here, once, so every worker agrees on it from the start."""

import secrets

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField

from service.db import IdField
from service.models import utcnow


def upgrade(db, migrator) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class ApiToken(Base):
        id = IdField()

    class RegisterState(Base):
        name = CharField(max_length=100, primary_key=True)
        value = TextField()

    class IdempotencyKey(Base):
        id = IdField()
        token = ForeignKeyField(ApiToken, on_delete="CASCADE")
        key = CharField(max_length=255)
        request_hash = CharField(max_length=64)
        created = DateTimeField(default=utcnow, index=True)
        status = IntegerField(null=True)
        headers = TextField(null=True)
        body = TextField(null=True)

        class Meta:
            indexes = ((("token", "key"), True),)

    db.create_tables([RegisterState, IdempotencyKey])
    RegisterState.insert(name="secret_key", value=secrets.token_urlsafe(32)).on_conflict_ignore().execute()
