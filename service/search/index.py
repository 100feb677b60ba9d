"""The full-text indexes of studies and references: their tables, their documents, and matching.

One row per record, keyed by its id, in `study_search` and `reference_search`:

- SQLite: FTS5 tables (porter stemmer, diacritics removed) with three columns ranked by ``bm25``
  with weights 10 / 4 / 1.
- Postgres: a ``tsvector`` (``english`` configuration) weighted A / B / C with a GIN index, ranked
  by ``ts_rank`` over its A and B parts (kept apart as ``heading``).

A study's document is its name, title, registration identifiers and registries (A), the titles of its
references (B) and their abstracts and the identifiers found in them (C): a study is found through
any of its reports. A reference's is its title and own registration id (A), its authors (B), its
abstract and the identifiers found in it (C). Both databases read the same text, prepared by
:func:`service.search.query.document_text`, so they split it into the same words.

Writes mark what they changed (:func:`service.db.changed`); :func:`refresh` rewrites those
documents in the same transaction, just before it commits. An import rewrites the documents of what
it touched itself, in chunks, at its end (:func:`refresh_many`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from peewee import SQL, Entity, Expression, Table, Value, fn

from ..db import any_of, before_commit, database, is_postgres, select_in
from ..models import Reference, Study
from .query import SearchQuery, document_text, identifier_token

STUDY_TABLE, REFERENCE_TABLE = "study_search", "reference_search"
SEARCH_TABLES = (STUDY_TABLE, REFERENCE_TABLE)
BM25_WEIGHTS = (10.0, 4.0, 1.0)
TS_CONFIG = "english"
BATCH = 500
_FTS5_OPTIONS = "tokenize = 'porter unicode61 remove_diacritics 2'"
HITS = "hits"
# The relevance of a row of a query joined with `matches(...).alias(HITS)`.
RANK = Entity(HITS, "rank")


def create_tables(db) -> None:
    """Create both indexes (empty) on ``db``; used by the migration that introduced them."""
    if is_postgres():
        for table, owner in ((STUDY_TABLE, "study"), (REFERENCE_TABLE, "reference")):
            db.execute_sql(f'CREATE TABLE "{table}" (id integer PRIMARY KEY REFERENCES "{owner}" (id) '
                           f"ON DELETE CASCADE, document tsvector NOT NULL, heading tsvector NOT NULL)")
            db.execute_sql(f'CREATE INDEX "{table}_document" ON "{table}" USING gin (document)')
    else:
        db.execute_sql(f'CREATE VIRTUAL TABLE "{STUDY_TABLE}" USING fts5(heading, titles, abstracts, '
                       f"{_FTS5_OPTIONS})")
        db.execute_sql(f'CREATE VIRTUAL TABLE "{REFERENCE_TABLE}" USING fts5(title, authors, abstract, '
                       f"{_FTS5_OPTIONS})")


def _tokens(identifiers: Iterable[str]) -> str:
    return " ".join(identifier_token(i) for i in identifiers)


def study_documents(study_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """The three weighted texts of each existing study in ``study_ids`` (four queries)."""
    heads = {i: [name, title] for i, name, title in
             select_in("SELECT id, name, title FROM study WHERE {where}", "id", study_ids)}
    registrations = "SELECT study_id, registry, identifier, id FROM registration WHERE {where}"
    for study_id, registry, identifier, _ in sorted(select_in(registrations, "study_id", study_ids),
                                                    key=lambda row: row[3]):
        heads[study_id] += [registry, identifier_token(identifier)]
    titles: dict[int, list[str]] = defaultdict(list)
    abstracts: dict[int, list[str]] = defaultdict(list)
    for study_id, title, abstract, _ in sorted(select_in(
            'SELECT l.study_id, r.title, r.abstract, l.id FROM study_reference AS l JOIN "reference" AS r '
            "ON r.id = l.reference_id WHERE l.role = 'reports' AND {where}", "l.study_id", study_ids),
            key=lambda row: row[3]):
        titles[study_id].append(title)
        abstracts[study_id].append(abstract)
    for study_id, identifier, _, _ in sorted(select_in(
            "SELECT l.study_id, f.identifier, l.id, f.id FROM study_reference AS l "
            "JOIN reference_identifier AS f ON f.reference_id = l.reference_id "
            "WHERE l.role = 'reports' AND {where}",
            "l.study_id", study_ids),
            key=lambda row: row[2:]):
        abstracts[study_id].append(identifier_token(identifier))
    return {i: (document_text(*head), document_text(*titles[i]), document_text(*abstracts[i]))
            for i, head in heads.items()}


def reference_documents(reference_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """The three weighted texts of each existing reference in ``reference_ids`` (two queries)."""
    found: dict[int, list[str]] = defaultdict(list)
    for reference_id, identifier, _ in sorted(select_in(
            "SELECT reference_id, identifier, id FROM reference_identifier WHERE {where}", "reference_id",
            reference_ids), key=lambda row: row[2]):
        found[reference_id].append(identifier)
    documents = {}
    for ref_id, title, authors, abstract, own in select_in(
            'SELECT id, title, authors, abstract, registration_id FROM "reference" WHERE {where}', "id",
            reference_ids):
        documents[ref_id] = (document_text(title, _tokens([own] if own else [])),
                             document_text(*json.loads(authors or "[]")),
                             document_text(abstract, _tokens(found[ref_id])))
    return documents


def _write(table: str, ids: list[int], documents: dict[int, tuple[str, str, str]]) -> None:
    condition, params = any_of("id" if is_postgres() else "rowid", ids)
    database.execute_sql(f'DELETE FROM "{table}" WHERE {condition}', params)
    if not documents:
        return
    rows = [(i, *texts) for i, texts in documents.items()]
    p = database.param
    if is_postgres():
        # One array per column: the driver's interpolation of one parameter per value cost more.
        database.execute_sql(
            f'INSERT INTO "{table}" (id, document, heading) SELECT v.id, v.heading || '
            f"setweight(to_tsvector('{TS_CONFIG}', v.c), 'C'), v.heading FROM (SELECT id, c, "
            f"setweight(to_tsvector('{TS_CONFIG}', a), 'A') || "
            f"setweight(to_tsvector('{TS_CONFIG}', b), 'B') AS heading "
            f"FROM unnest({p}::integer[], {p}::text[], {p}::text[], {p}::text[]) AS w (id, a, b, c)) AS v",
            [list(column) for column in zip(*rows, strict=True)])
    else:
        columns = "heading, titles, abstracts" if table == STUDY_TABLE else "title, authors, abstract"
        database.cursor().executemany(
            f'INSERT INTO "{table}" (rowid, {columns}) VALUES ({p}, {p}, {p}, {p})', rows)


def _ascending_chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = iter(ids)
    while chunk := list(itertools.islice(ids, BATCH)):
        yield chunk


def _refresh_references(reference_ids: Iterable[int], linked: Callable[[Iterable[int]], None]) -> None:
    """Rewrite the documents of ``reference_ids`` (ascending), handing ``linked`` their studies."""
    for chunk in _ascending_chunks(reference_ids):
        _write(REFERENCE_TABLE, chunk, reference_documents(chunk))
        linked(s for (s,) in select_in("SELECT study_id FROM study_reference WHERE {where}",
                                       "reference_id", chunk))


def _refresh_studies(study_ids: Iterable[int]) -> None:
    for chunk in _ascending_chunks(study_ids):
        _write(STUDY_TABLE, chunk, study_documents(chunk))


def refresh(study_ids: Iterable[int] = (), reference_ids: Iterable[int] = ()) -> None:
    """Rewrite the documents of these records, and of the studies linked to these references."""
    studies = set(study_ids)
    _refresh_references(sorted(set(reference_ids)), studies.update)
    _refresh_studies(sorted(studies))


def refresh_many(study_ids, reference_ids: Iterable[int]) -> None:
    """As :func:`refresh`, for more records than are worth copying (an import): ``reference_ids`` in
    ascending order; ``study_ids`` a set (``update``, ascending iteration) that the studies linked to
    those references join before the studies are rewritten, each once."""
    _refresh_references(reference_ids, study_ids.update)
    _refresh_studies(study_ids)


def rebuild() -> tuple[int, int]:
    """Rewrite both indexes from the records (after a migration); return (studies, references)."""
    for table in SEARCH_TABLES:
        database.execute_sql(f'DELETE FROM "{table}"')
    study_ids = [i for (i,) in Study.select(Study.id).tuples()]
    reference_ids = [i for (i,) in Reference.select(Reference.id).tuples()]
    for chunk in _ascending_chunks(sorted(reference_ids)):
        _write(REFERENCE_TABLE, chunk, reference_documents(chunk))
    _refresh_studies(sorted(study_ids))
    return len(study_ids), len(reference_ids)


def _id_column(source: Table):
    return source.c.id if is_postgres() else SQL("rowid")


def _matching(source: Table, table: str, query: SearchQuery):
    if query.empty:
        return SQL("1 = 0")
    if is_postgres():
        tsquery = fn.websearch_to_tsquery(SQL(f"'{TS_CONFIG}'"), Value(query.websearch()))
        return Expression(source.c.document, "@@", tsquery)
    return Expression(SQL(f'"{table}"'), "MATCH", Value(query.fts5()))


def _rank(source: Table, table: str, query: SearchQuery):
    if query.empty:
        return Value(0.0)
    if is_postgres():
        tsquery = fn.websearch_to_tsquery(SQL(f"'{TS_CONFIG}'"), Value(query.websearch()))
        # Ranked on the A and B parts only (`heading`: small, stored inline): ranking on the whole
        # document read every match's abstracts (900 ms for 37k matches at 50k studies). ts_rank, not
        # ts_rank_cd: the cover density cost ~1.6 µs a row whatever the vector's size, eight times
        # ts_rank (14 of the 28 ms of a page of 8,496 matches at 50k studies). float8, not float4: a
        # cursor carries the rank and must compare equal to it.
        return fn.ts_rank(source.c.heading, tsquery).cast("double precision")
    return 0 - fn.bm25(SQL(f'"{table}"'), *BM25_WEIGHTS)


def matches(table: str, query: SearchQuery):
    """A subquery of (id, rank) of the records matching ``query``; higher rank is more relevant.
    A query with nothing to look for matches nothing."""
    source = Table(table)
    hits = (source.select(_id_column(source).alias("id"), _rank(source, table, query).alias("rank"))
            .where(_matching(source, table, query)))
    if is_postgres():
        # OFFSET 0 keeps the subquery whole: each match is ranked as it is read. Flattened into the
        # join, Postgres carried every match's `heading` through the hash join and ranked after it
        # (a third more CPU for a page of 8,496 matches at 50,000 studies).
        hits = hits.offset(0)
    return hits


def matching_ids(table: str, query: SearchQuery):
    """A subquery of the ids of the records matching ``query`` (unranked)."""
    source = Table(table)
    return source.select(_id_column(source)).where(_matching(source, table, query))


@contextlib.contextmanager
def search_plan(searching: bool) -> Iterator[None]:
    """Around the statements of one search request: on Postgres, match through the GIN index.

    The planner prices a sequential scan of the documents as cheap when a query matches most
    rows, but each row's document is a compressed TOAST value: at 50,000 studies, `patients
    hospital` (74 % of them) took 360 ms by sequential scan and ~15 ms through the index, which is
    exact for these queries (no recheck reads a document).
    """
    if not (searching and is_postgres()):
        yield
        return
    with database.atomic():
        database.execute_sql("SET LOCAL enable_seqscan = off")
        yield


def _refresh_changes(changes) -> None:
    if changes.studies or changes.references:
        refresh(changes.studies, changes.references)


before_commit.append(_refresh_changes)
