"""Search by field and truncation: the study and reference indexes get one column per search field
(FTS5 columns; on Postgres a vector per field beside the whole document, under one multicolumn GIN
index), and `search_word`, the vocabulary truncations expand from.

The indexes hold nothing that is not derived from the records: they are dropped, created in the
new layout and filled once the upgrade is complete (`REINDEX_AFTER`).
"""

from service.search import index

REINDEX_AFTER = True


def upgrade(db, migrator) -> None:
    index.drop_tables(db)
    index.create_tables(db)
