r"""The full-text indexes of studies and references: their tables, their documents, the vocabulary
truncations expand from, and matching a parsed strategy.

One row per record, keyed by its id, in `study_search` and `reference_search`, with one column per
search field (the field tags of :mod:`service.search.query`):

- SQLite: FTS5 tables (porter stemmer, diacritics removed), one column per field, ranked by
  ``bm25`` with weights 10 / 4 / 1 / 1 for the fields of weight A / B / C / D.
- Postgres: a ``tsvector`` per field, their weighted concatenation ``document`` (A / B / C / D) and
  its A and B parts ``heading`` (what ``ts_rank`` reads), under one multicolumn GIN index: an
  unfielded strategy is one match of ``document``, a field tag a match of that field's vector.
  A reference's row also carries the reference's ``type``, ``year``, ``has_results`` and ``updated``
  (:data:`CARRIED`, kept in step by a trigger), so a search's facets and relevance page read the
  search rows alone.

A study's fields: its ``name``, ``title``, ``registration`` identifiers and ``registry`` names
(A), and through its reports their titles (``report_title``, B), their abstracts with the
identifiers found in them (``abstract``, C) and their authors (``author``, D): a study is found
through any of its reports. A reference's: its ``title`` with its own registration id (A), its
``author``\ s (B), its ``abstract`` with the identifiers found in it (C), its ``source``, ``doi``
and ``pmid`` (D). Both databases read the same text, prepared by
:func:`service.search.query.document_text`, so they split it into the same words.

`search_word` holds every word the documents were written with (unstemmed, folded): a truncation
(``vaccinat*``) is expanded from it, since the stemmed indexes hold ``vaccin`` and answer no
prefix longer than a stem. Words are never removed (one nobody uses any more expands to a term
that matches nothing); a rebuild starts it afresh.

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

from peewee import SQL, Cast, Entity, Expression, Table, Value, fn

from ..db import any_of, before_commit, database, is_postgres, select_in
from ..models import Reference, Study
from .query import (
    REFERENCE_FIELDS,
    Both,
    Either,
    Match,
    Plan,
    QueryError,
    SearchQuery,
    document_text,
    identifier_token,
)

STUDY_TABLE, REFERENCE_TABLE = "study_search", "reference_search"
WORD_TABLE = "search_word"
SEARCH_TABLES = (STUDY_TABLE, REFERENCE_TABLE)
# Each table's fields in column order, with their weight.
WEIGHTS = {
    STUDY_TABLE: {"name": "A", "title": "A", "registration": "A", "registry": "A",
                  "report_title": "B", "abstract": "C", "author": "D"},
    REFERENCE_TABLE: {"title": "A", "author": "B", "abstract": "C", "source": "D", "doi": "D",
                      "pmid": "D"},
}
BM25 = {"A": 10.0, "B": 4.0, "C": 1.0, "D": 1.0}
TS_CONFIG = "english"
BATCH = 500
MAX_EXPANSION = 2_000  # words one truncation may stand for
MAX_EXPANDED = 20_000  # words all of a strategy's truncations may stand for
_FTS5_OPTIONS = "tokenize = 'porter unicode61 remove_diacritics 2'"
HITS = "hits"
# The relevance of a row of a query joined with `matches(...).alias(HITS)`.
RANK = Entity(HITS, "rank")
# The fields whose words go into the vocabulary from each table (a study's others are its
# references' words, added when those are written).
_OWN_WORDS = {STUDY_TABLE: ("name", "title", "registration", "registry"),
              REFERENCE_TABLE: REFERENCE_FIELDS}
# Postgres: the columns of its reference a row of `reference_search` carries, with their types, so that a
# search's facet count (type, year, has_results) and its relevance page (rank, updated, id) read the search
# rows alone and look up no match in "reference" (half of `"intensive care"`'s time, 12,000 lookups:
# bench/README.md, "Phrases on Postgres"). Written with the row (_write); a trigger on "reference" keeps
# them in step with every later update of the reference (_CARRY_FUNCTION), whoever writes it.
CARRIED = {"type": "varchar(40) NOT NULL", "year": "integer", "has_results": "boolean NOT NULL",
           "updated": "timestamp NOT NULL"}
_CARRY = "reference_search_carry"
_CARRY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {_CARRY}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  UPDATE "{REFERENCE_TABLE}" AS s SET {", ".join(f'"{c}" = n."{c}"' for c in CARRIED)}
  FROM new_rows AS n
  WHERE s.id = n.id AND ({", ".join(f's."{c}"' for c in CARRIED)}) IS DISTINCT FROM
                        ({", ".join(f'n."{c}"' for c in CARRIED)});
  RETURN NULL;
END $$"""


# Every two lexemes adjacent in a vector as one lexeme, `'stem cell'` (a lexeme of the parser never
# holds a space): a phrase of two is then answered by the GIN index alone, where `'stem' <-> 'cell'`
# had Postgres read the document of every row holding both words (212 ms for `"intensive care"`
# on 150,000 references). Positions as the vector keeps them: what `<->` reads. plpgsql: an SQL
# self-join of the positions took 1.6 times as long (bench/README.md, phrase pairs).
_PAIRS_FUNCTION = """
CREATE OR REPLACE FUNCTION search_pairs(v tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  words text[] := '{}';
  lexeme text;
  positions smallint[];
  p integer;
  pairs text[] := '{}';
BEGIN
  FOR lexeme, positions IN SELECT u.lexeme, u.positions FROM unnest(v) AS u LOOP
    FOREACH p IN ARRAY coalesce(positions, '{}') LOOP
      words[p] := lexeme;
    END LOOP;
  END LOOP;
  IF array_lower(words, 1) IS NULL THEN
    RETURN ''::tsvector;
  END IF;
  FOR p IN array_lower(words, 1) .. array_upper(words, 1) - 1 LOOP
    IF words[p] IS NOT NULL AND words[p + 1] IS NOT NULL THEN
      pairs := pairs || (words[p] || ' ' || words[p + 1]);
    END IF;
  END LOOP;
  RETURN array_to_tsvector(pairs);
END $$"""


def create_index(db, table: str) -> None:
    """Postgres: the GIN index of ``table``'s vectors."""
    indexed = ", ".join(f'"{f}"' for f in WEIGHTS[table])
    db.execute_sql(f'CREATE INDEX "{table}_document" ON "{table}" USING gin (document, {indexed})')


def create_tables(db) -> None:
    """Create both indexes and the vocabulary (empty) on ``db``; used by the migrations."""
    if is_postgres():
        for table, owner in ((STUDY_TABLE, "study"), (REFERENCE_TABLE, "reference")):
            carried = CARRIED.items() if table == REFERENCE_TABLE else ()
            columns = ", ".join([f'"{f}" tsvector NOT NULL' for f in WEIGHTS[table]]
                                + [f'"{c}" {kind}' for c, kind in carried])
            db.execute_sql(f'CREATE TABLE "{table}" (id integer PRIMARY KEY REFERENCES "{owner}" (id) '
                           f"ON DELETE CASCADE, document tsvector NOT NULL, heading tsvector NOT NULL, "
                           f"{columns})")
            # A narrow heap: a search reads `heading` (to rank) of every match, and with the field
            # vectors inline a row of the benchmark's studies filled a sixth of a page (10,773 pages
            # read for `patients hospital`, 75 ms; out of line 4,884 pages, 25 ms).
            out_of_line = ", ".join(f'ALTER COLUMN "{f}" SET STORAGE EXTERNAL'
                                    for f in ("document", *WEIGHTS[table]))
            db.execute_sql(f'ALTER TABLE "{table}" SET (toast_tuple_target = 128)')
            db.execute_sql(f'ALTER TABLE "{table}" {out_of_line}, ALTER COLUMN heading SET STORAGE MAIN')
            create_index(db, table)
        db.execute_sql(f'CREATE TABLE "{WORD_TABLE}" (word text COLLATE "C" PRIMARY KEY)')
        db.execute_sql(_PAIRS_FUNCTION)
        create_carry_trigger(db)
    else:
        for table in SEARCH_TABLES:
            db.execute_sql(f'CREATE VIRTUAL TABLE "{table}" USING fts5({", ".join(WEIGHTS[table])}, '
                           f"{_FTS5_OPTIONS})")
        db.execute_sql(f'CREATE TABLE "{WORD_TABLE}" (word TEXT PRIMARY KEY) WITHOUT ROWID')


def create_carry_trigger(db) -> None:
    """Postgres: the trigger that copies a reference's CARRIED columns into its search row whenever the
    reference is updated (a statement trigger over its transition table, as migration 13's)."""
    db.execute_sql(_CARRY_FUNCTION)
    db.execute_sql(f'DROP TRIGGER IF EXISTS "{_CARRY}" ON "reference"')
    db.execute_sql(f'CREATE TRIGGER "{_CARRY}" AFTER UPDATE ON "reference" REFERENCING NEW TABLE AS new_rows '
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {_CARRY}()")


def drop_tables(db) -> None:
    if is_postgres():
        db.execute_sql(f'DROP TRIGGER IF EXISTS "{_CARRY}" ON "reference"')
    for table in (*SEARCH_TABLES, WORD_TABLE):
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')


def _tokens(identifiers: Iterable[str]) -> str:
    return " ".join(identifier_token(i) for i in identifiers)


Documents = dict[int, dict[str, str]]  # record id -> field -> its text


def study_documents(study_ids: list[int]) -> Documents:
    """The field texts of each existing study in ``study_ids`` (four queries)."""
    fields: dict[int, dict[str, list[str]]] = {}
    for i, name, title in select_in("SELECT id, name, title FROM study WHERE {where}", "id", study_ids):
        fields[i] = {"name": [name], "title": [title], "registration": [], "registry": [],
                     "report_title": [], "abstract": [], "author": []}
    registrations = "SELECT study_id, registry, identifier, id FROM registration WHERE {where}"
    for study_id, registry, identifier, _ in sorted(select_in(registrations, "study_id", study_ids),
                                                    key=lambda row: row[3]):
        fields[study_id]["registry"].append(registry)
        fields[study_id]["registration"].append(identifier_token(identifier))
    for study_id, title, abstract, authors, _ in sorted(select_in(
            'SELECT l.study_id, r.title, r.abstract, r.authors, l.id FROM study_reference AS l '
            'JOIN "reference" AS r ON r.id = l.reference_id WHERE l.role = \'reports\' AND {where}',
            "l.study_id", study_ids), key=lambda row: row[4]):
        fields[study_id]["report_title"].append(title)
        fields[study_id]["abstract"].append(abstract)
        fields[study_id]["author"] += json.loads(authors or "[]")
    for study_id, identifier, _, _ in sorted(select_in(
            "SELECT l.study_id, f.identifier, l.id, f.id FROM study_reference AS l "
            "JOIN reference_identifier AS f ON f.reference_id = l.reference_id "
            "WHERE l.role = 'reports' AND {where}",
            "l.study_id", study_ids),
            key=lambda row: row[2:]):
        fields[study_id]["abstract"].append(identifier_token(identifier))
    return {i: {f: document_text(*parts) for f, parts in texts.items()} for i, texts in fields.items()}


def reference_documents(reference_ids: list[int]) -> Documents:
    """The field texts of each existing reference in ``reference_ids`` (two queries)."""
    found: dict[int, list[str]] = defaultdict(list)
    for reference_id, identifier, _ in sorted(select_in(
            "SELECT reference_id, identifier, id FROM reference_identifier WHERE {where}", "reference_id",
            reference_ids), key=lambda row: row[2]):
        found[reference_id].append(identifier)
    documents = {}
    for ref_id, title, authors, abstract, own, source, doi, pmid in select_in(
            'SELECT id, title, authors, abstract, registration_id, source, doi, pmid FROM "reference" '
            "WHERE {where}", "id", reference_ids):
        documents[ref_id] = {"title": document_text(title, _tokens([own] if own else [])),
                             "author": document_text(*json.loads(authors or "[]")),
                             "abstract": document_text(abstract, _tokens(found[ref_id])),
                             "source": document_text(source), "doi": document_text(doi),
                             "pmid": document_text(pmid)}
    return documents


def _write(table: str, ids: list[int], documents: Documents, vocabulary: set[str]) -> None:
    """Replace the rows of ``ids``; add the words of their own fields to ``vocabulary``."""
    condition, params = any_of("id" if is_postgres() else "rowid", ids)
    database.execute_sql(f'DELETE FROM "{table}" WHERE {condition}', params)
    if not documents:
        return
    names = list(WEIGHTS[table])
    for texts in documents.values():
        for name in _OWN_WORDS[table]:
            vocabulary.update(texts[name].split())
    rows = [(i, *(texts[n] for n in names)) for i, texts in documents.items()]
    p = database.param
    if is_postgres():
        # One array per column: the driver's interpolation of one parameter per value cost more.
        def weighted(weights: str) -> str:
            return " || ".join(f"setweight(v.\"{n}\", '{WEIGHTS[table][n]}')" for n in names
                               if WEIGHTS[table][n] in weights)

        pairs = " || ".join(f'search_pairs(v."{n}")' for n in names)

        quoted = ", ".join(f'"{n}"' for n in names)
        vectors = ", ".join(f"to_tsvector('{TS_CONFIG}', w.\"{n}\") AS \"{n}\"" for n in names)
        arrays = ", ".join([f"{p}::integer[]"] + [f"{p}::text[]"] * len(names))
        # A reference's row carries its CARRIED columns, read from the reference as it is written.
        carried = list(CARRIED) if table == REFERENCE_TABLE else []
        targets = ", ".join(f'"{n}"' for n in [*names, *carried])
        values = ", ".join([*(f'v."{n}"' for n in names), *(f'r."{c}"' for c in carried)])
        source = ' JOIN "reference" AS r ON r.id = v.id' if carried else ""
        database.execute_sql(
            f'INSERT INTO "{table}" (id, document, heading, {targets}) '
            f"SELECT v.id, {weighted('ABCD')} || {pairs}, {weighted('AB')}, {values} "
            f"FROM (SELECT w.id, {vectors} FROM unnest({arrays}) AS w (id, {quoted})) AS v{source}",
            [list(column) for column in zip(*rows, strict=True)])
    else:
        database.cursor().executemany(
            f'INSERT INTO "{table}" (rowid, {", ".join(names)}) VALUES ({", ".join([p] * (len(names) + 1))})',
            rows)


def _add_words(vocabulary: set[str]) -> None:
    if not vocabulary:
        return
    words = sorted(vocabulary)
    if is_postgres():
        database.execute_sql(f'INSERT INTO "{WORD_TABLE}" (word) SELECT unnest({database.param}::text[]) '
                             f"ON CONFLICT DO NOTHING", [words])
    else:
        database.cursor().executemany(
            f'INSERT OR IGNORE INTO "{WORD_TABLE}" (word) VALUES ({database.param})', [(w,) for w in words])


def _ascending_chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = iter(ids)
    while chunk := list(itertools.islice(ids, BATCH)):
        yield chunk


def _refresh_references(reference_ids: Iterable[int], linked: Callable[[Iterable[int]], None]) -> None:
    """Rewrite the documents of ``reference_ids`` (ascending), handing ``linked`` their studies."""
    vocabulary: set[str] = set()
    for chunk in _ascending_chunks(reference_ids):
        _write(REFERENCE_TABLE, chunk, reference_documents(chunk), vocabulary)
        linked(s for (s,) in select_in("SELECT study_id FROM study_reference WHERE {where}",
                                       "reference_id", chunk))
    _add_words(vocabulary)


def _refresh_studies(study_ids: Iterable[int]) -> None:
    vocabulary: set[str] = set()
    for chunk in _ascending_chunks(study_ids):
        _write(STUDY_TABLE, chunk, study_documents(chunk), vocabulary)
    _add_words(vocabulary)


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
    if is_postgres():
        # The GIN index took the new entries into its pending list, which every search reads through
        # in full until a vacuum merges it (78 of the 148 ms of a strategy's index scan after the
        # real data set's imports; 23 ms merged): merged here, once, at the end of the import.
        for table in SEARCH_TABLES:
            database.execute_sql(f"SELECT gin_clean_pending_list('\"{table}_document\"'::regclass)")


def rebuild() -> tuple[int, int]:
    """Rewrite both indexes and the vocabulary from the records (after a migration); return
    (studies, references)."""
    for table in (*SEARCH_TABLES, WORD_TABLE):
        database.execute_sql(f'DELETE FROM "{table}"')
    if is_postgres():
        # Written into a table without its GIN index, which is then built once: 150,000 references
        # took 230 s written into the index, 22 s + 50 s so (bench/README.md, phrase pairs).
        for table in SEARCH_TABLES:
            database.execute_sql(f'DROP INDEX "{table}_document"')
    study_ids = [i for (i,) in Study.select(Study.id).tuples()]
    reference_ids = [i for (i,) in Reference.select(Reference.id).tuples()]
    _refresh_references(sorted(reference_ids), lambda linked: None)
    _refresh_studies(sorted(study_ids))
    if is_postgres():
        for table in SEARCH_TABLES:
            create_index(database.obj, table)
    return len(study_ids), len(reference_ids)


def expansions(query: SearchQuery) -> dict[str, list[str]]:
    """The words of the register each truncation of ``query`` stands for (one query, or none),
    kept on the query; QueryError when one stands for more than MAX_EXPANSION words."""
    if query.expansions is not None:
        return query.expansions
    prefixes = sorted(query.prefixes())
    found: dict[str, list[str]] = {p: [] for p in prefixes}
    if prefixes:
        p = database.param
        # One range of the primary key per prefix (an OR of ranges had SQLite scan the table).
        ranges = " UNION ALL ".join(
            [f'SELECT * FROM (SELECT word FROM "{WORD_TABLE}" WHERE word >= {p} AND word < {p} '
             f"LIMIT {MAX_EXPANSION + 1}) AS r{i}" for i in range(len(prefixes))])
        bounds = [b for prefix in prefixes for b in (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))]
        limit = MAX_EXPANDED + 1
        rows = database.execute_sql(f"SELECT word FROM ({ranges}) AS w LIMIT {limit}", bounds).fetchall()
        if len(rows) >= limit:
            raise QueryError(f"the truncations stand for more than {MAX_EXPANDED:,} words of the "
                             f"register; lengthen them")
        for (word,) in rows:
            for prefix in prefixes:
                if word.startswith(prefix):
                    found[prefix].append(word)
        for prefix, words in found.items():
            if len(words) > MAX_EXPANSION:
                raise QueryError(f"`{prefix}*` stands for more than {MAX_EXPANSION:,} words of the "
                                 f"register; lengthen it")
    query.expansions = found
    return found


def _id_column(source: Table):
    return source.c.id if is_postgres() else SQL("rowid")


def lexicon(query: SearchQuery, words: dict[str, list[str]]):
    """Postgres: the lexemes its `english` configuration makes of each word of ``query`` (one
    query, kept on the query), as a function of the word."""
    if query.lexemes is None:
        searched = sorted(query.words(words))
        rows = database.execute_sql(
            f"SELECT w, array(SELECT lexeme FROM unnest(to_tsvector('{TS_CONFIG}', w)) "
            f"ORDER BY positions[1]) FROM unnest({database.param}::text[]) AS w", [searched]).fetchall()
        query.lexemes = {word: tuple(lexemes) for word, lexemes in rows}
    found = query.lexemes
    return lambda word: found.get(word, ())


def _tsquery(text: str):
    return Cast(Value(text), "tsquery")


def _condition(table: str, source: Table, plan: Plan):
    """A Postgres plan as SQL: each match a vector's ``@@``, combined by AND / OR / NOT. The parts of
    an AND are each matched in a subquery of their own: written as one condition, Postgres took one
    part through the index and read every candidate's document for the others (a three-block
    strategy with field tags: 67 of its 100 ms on the real data set)."""
    if isinstance(plan, Match):
        return Expression(source.c[plan.field or "document"], "@@", _tsquery(plan.text))
    if isinstance(plan, Either):
        condition = _condition(table, source, plan.options[0])
        for option in plan.options[1:]:
            condition = condition | _condition(table, source, option)
        return condition
    assert isinstance(plan, Both)
    parts = [_condition(table, source, p) if len(plan.include) == 1
             else source.c.id.in_(_subquery(table, p)) for p in plan.include]
    parts += [~_condition(table, source, p) for p in plan.exclude]
    condition = parts[0]
    for part in parts[1:]:
        condition = condition & part
    return condition


def _subquery(table: str, plan: Plan):
    inner = Table(table)
    return inner.select(inner.c.id).where(_condition(table, inner, plan)).offset(0)


def _matching(source: Table, table: str, query: SearchQuery):
    words = expansions(query)
    if is_postgres():
        plan = query.postgres(words, lexicon(query, words))
        return SQL("1 = 0") if plan is None else _condition(table, source, plan)
    text = query.fts5(words)
    return SQL("1 = 0") if text is None else Expression(SQL(f'"{table}"'), "MATCH", Value(text))


def _rank(source: Table, table: str, query: SearchQuery):
    words = expansions(query)
    if is_postgres():
        text = query.tsquery(words, lexicon(query, words))
        if text is None:
            return Value(0.0)
        # Ranked on the A and B parts only (`heading`: small, stored inline): ranking on the whole
        # document read every match's abstracts (900 ms for 37k matches at 50k studies). ts_rank, not
        # ts_rank_cd: the cover density cost ~1.6 µs a row whatever the vector's size, eight times
        # ts_rank (14 of the 28 ms of a page of 8,496 matches at 50k studies). float8, not float4: a
        # cursor carries the rank and must compare equal to it.
        return fn.ts_rank(source.c.heading, _tsquery(text)).cast("double precision")
    if query.fts5(words) is None:
        return Value(0.0)
    return 0 - fn.bm25(SQL(f'"{table}"'), *(BM25[w] for w in WEIGHTS[table].values()))


def matches(table: str, query: SearchQuery, *, carried: bool = False):
    """A subquery of (id, rank) of the records matching ``query``; higher rank is more relevant.
    A query with nothing to look for matches nothing. ``carried`` (Postgres, references): each match's
    CARRIED columns too."""
    source = Table(table)
    columns = [_id_column(source).alias("id"), _rank(source, table, query).alias("rank")]
    if carried:
        columns += [source.c[c] for c in CARRIED]
    hits = source.select(*columns).where(_matching(source, table, query))
    if is_postgres():
        # OFFSET 0 keeps the subquery whole: each match is ranked as it is read. Flattened into the
        # join, Postgres carried every match's `heading` through the hash join and ranked after it
        # (a third more CPU for a page of 8,496 matches at 50,000 studies).
        hits = hits.offset(0)
    return hits


def carries_references() -> bool:
    """Whether the search rows of references carry CARRIED (Postgres)."""
    return is_postgres()


def reference_rows() -> Table:
    """Postgres: `reference_search` to count or select from, its columns named as the reference's
    (`id` and CARRIED); :func:`matching` is a search's condition on it."""
    return Table(REFERENCE_TABLE).bind(database)


def matching(rows: Table, table: str, query: SearchQuery):
    """The condition that a row of ``rows`` (the search table ``table`` itself) matches ``query``."""
    return _matching(rows, table, query)


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
