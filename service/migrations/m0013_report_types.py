"""`study_report_types` (models.StudyReportTypes): for each study with a reporting reference, the types of
those references and whether one has results, as bits (vocabularies.REPORT_TYPE_BITS, HAS_RESULTS_BIT).
What the facets `reference_type` and `has_results` count (domain/facets.py): one narrow table instead of
joining every reporting link with its reference (89-110 ms over 50,000 studies, bench/README.md "Pages").

Triggers keep it, in the database, like the write generation (service/generation.py): a link made,
changed or removed, or a reference's type or results changed, by any writer (the API, an import, a bulk
insert, a raw `UPDATE`), rewrites the rows of the studies concerned in the same transaction; a study's
row goes with the study (ON DELETE CASCADE). SQLite: row triggers; Postgres: statement triggers over
their transition tables. A table of its own, not a `study` column: no record, `updated` or change-feed
entry can show it. No value anyone reads changes.
"""

from ..vocabularies import HAS_RESULTS_BIT, REPORT_TYPE_BITS

TABLE = "study_report_types"


def mask_of(study: str) -> str:
    """SQL: the bits of the study whose id is the expression ``study``. Each type's bit is a distinct
    power of two, so the sum of the distinct bits is their OR."""
    bits = " ".join(f"WHEN '{kind}' THEN {bit}" for kind, bit in REPORT_TYPE_BITS.items())
    reporting = ('FROM study_reference AS l JOIN "reference" AS r ON r.id = l.reference_id '
                 f"WHERE l.study_id = {study} AND l.role = 'reports'")
    return (f"((SELECT COALESCE(SUM(DISTINCT CASE r.type {bits} ELSE 0 END), 0) {reporting}) "
            f"+ (CASE WHEN EXISTS (SELECT 1 {reporting} AND r.has_results) THEN {HAS_RESULTS_BIT} "
            "ELSE 0 END))")


def _rewrite(studies: str) -> str:
    """SQL: the rows of the studies whose ids ``studies`` (a subquery) selects, written anew."""
    return (f'INSERT INTO "{TABLE}" (study_id, types) SELECT study.id, {mask_of("study.id")} FROM study '
            f"WHERE study.id IN ({studies}) ON CONFLICT (study_id) DO UPDATE SET types = excluded.types")


def _sqlite(db) -> None:
    for name, event, body in (
            ("link_insert", "INSERT ON study_reference", _rewrite("SELECT NEW.study_id")),
            ("link_delete", "DELETE ON study_reference", _rewrite("SELECT OLD.study_id")),
            ("link_update", "UPDATE OF study_id, reference_id, role ON study_reference",
             _rewrite("SELECT OLD.study_id UNION SELECT NEW.study_id")),
            ("reference_update", 'UPDATE OF type, has_results ON "reference"',
             _rewrite("SELECT study_id FROM study_reference WHERE reference_id = NEW.id"))):
        db.execute_sql(f'CREATE TRIGGER IF NOT EXISTS "report_types_{name}" AFTER {event} '
                       f"FOR EACH ROW BEGIN {body}; END")


def _postgres(db) -> None:
    for name, event, transitions, studies in (
            ("link_insert", "INSERT", "NEW TABLE AS new_rows", "SELECT study_id FROM new_rows"),
            ("link_delete", "DELETE", "OLD TABLE AS old_rows", "SELECT study_id FROM old_rows"),
            ("link_update", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows",
             "SELECT study_id FROM old_rows UNION SELECT study_id FROM new_rows"),
            ("reference_update", "UPDATE", "NEW TABLE AS new_rows",
             "SELECT l.study_id FROM study_reference AS l JOIN new_rows ON new_rows.id = l.reference_id")):
        table = "reference" if name.startswith("reference") else "study_reference"
        db.execute_sql(f"""CREATE OR REPLACE FUNCTION report_types_{name}() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN {_rewrite(studies)}; RETURN NULL; END $$""")
        db.execute_sql(f'CREATE TRIGGER "report_types_{name}" AFTER {event} ON "{table}" '
                       f"REFERENCING {transitions} FOR EACH STATEMENT EXECUTE FUNCTION report_types_{name}()")


def upgrade(db, migrator) -> None:
    from ..db import is_postgres

    db.execute_sql(f'CREATE TABLE "{TABLE}" (study_id INTEGER NOT NULL PRIMARY KEY '
                   'REFERENCES study (id) ON DELETE CASCADE, types INTEGER NOT NULL)')
    db.execute_sql(f'CREATE INDEX "{TABLE}_types" ON "{TABLE}" (types, study_id)')
    _postgres(db) if is_postgres() else _sqlite(db)
    db.execute_sql(_rewrite("SELECT study_id FROM study_reference WHERE role = 'reports'"))
