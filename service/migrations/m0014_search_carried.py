"""Postgres: each row of `reference_search` carries its reference's `type`, `year`, `has_results` and
`updated` (search.index.CARRIED), so that a search's facet count and its relevance page read the search
rows alone instead of looking up every match in "reference" (`GET /references?q="intensive care"
&facets=type,year` at 50,000 studies: bench/README.md, "Phrases on Postgres").

In place: the columns are added (a register whose search tables the current code created already has
them), filled from the references, made NOT NULL, and the trigger that keeps them in step with every
later update of a reference is created. No document is rewritten, but every row gets a new version,
which its GIN index would take one by one into its pending list (a refresh of every row: minutes at
150,000 references, bench/README.md): the index is dropped first and built once afterwards (its
build is one statement, under DATABASE_LONG_TIMEOUT: 600 s by default, which it exceeded at 150,000
references on a loaded 2-core machine: raise it there or for a larger register). SQLite:
nothing changes (its FTS5 tables carry no columns; its searches read "reference" as before).
"""

from ..db import is_postgres
from ..search import index


def upgrade(db, migrator) -> None:
    if not is_postgres():
        return
    table = index.REFERENCE_TABLE
    added = ", ".join(f'ADD COLUMN IF NOT EXISTS "{c}" {kind.removesuffix(" NOT NULL")}'
                      for c, kind in index.CARRIED.items())
    db.execute_sql(f'ALTER TABLE "{table}" {added}')
    assigned = ", ".join(f'"{c}" = r."{c}"' for c in index.CARRIED)
    db.execute_sql(f'DROP INDEX IF EXISTS "{table}_document"')
    db.execute_sql(f'UPDATE "{table}" AS s SET {assigned} FROM "reference" AS r WHERE r.id = s.id')
    index.create_index(db, table)
    required = ", ".join(f'ALTER COLUMN "{c}" SET NOT NULL' for c, kind in index.CARRIED.items()
                         if kind.endswith(" NOT NULL"))
    db.execute_sql(f'ALTER TABLE "{table}" {required}')
    index.create_carry_trigger(db)
