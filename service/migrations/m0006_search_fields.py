"""Search by field and truncation: the study and reference indexes get one column per search field
(FTS5 columns; on Postgres a vector per field beside the whole document, under one multicolumn GIN
index), and `search_word`, the vocabulary truncations expand from.

The indexes hold nothing that is not derived from the records: they are dropped, created in the
new layout and filled once the upgrade is complete (`REINDEX_AFTER`).

Also dropped: the index of `study_reference.role` alone (two values; every query asks for a role
with a study or a reference). SQLite, never ANALYZEd here, chose it for a study's report and citing
counts and read every `reports` link of the register for each study of a page: 234 ms for
`GET /studies?page_size=20` at 50,000 studies, 0.1 ms through `(study_id, reference_id)`.
"""

from service.search import index

REINDEX_AFTER = True


def upgrade(db, migrator) -> None:
    index.drop_tables(db)
    index.create_tables(db)
    db.execute_sql('DROP INDEX IF EXISTS "study_reference_role"')
