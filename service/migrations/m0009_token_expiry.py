"""Tokens may expire: `api_token.expires` (none for every existing token, which keeps working)."""

from peewee import PostgresqlDatabase


def upgrade(db, migrator) -> None:
    # Plain ALTER TABLE ... ADD COLUMN (m0004 says why: SQLite's migrator would rebuild the table), typed
    # as peewee's DateTimeField is on each database.
    kind = "TIMESTAMP" if isinstance(db, PostgresqlDatabase) else "DATETIME"
    db.execute_sql(f'ALTER TABLE "api_token" ADD COLUMN "expires" {kind}')
