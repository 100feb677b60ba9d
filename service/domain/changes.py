"""The change feed and record history: one append-only `change` row per create, update, delete or merge of
a study or a reference, written in the write's own transaction.

Every write path notes the records it touched (`db.changed()`, which the search index reads too, or
`note()` for records whose links or dates only moved); just before the outermost write transaction
commits, `record_changes` compares each noted record's state now with the state its last change left,
and appends a change for each one that differs: `create` (no state before), `update` (the names of the
fields that differ), `delete` or `merge` (a tombstone: the record is gone; a merged study's names the
study it went into). A write path cannot forget to record, and a write that changes nothing records
nothing.

A record's state is its own columns (a study's `facet_sources` aside: provenance, which moves with the
derived fields and `updated`), a study's registration identifiers and its links (reference id, role, how
made), a reference's links (study id, role, how made). A link is a change of both ends.

Order: `seq` is the feed's order and its paging key. Change rows are inserted last in a transaction, and
on Postgres under a transaction-level advisory lock held until commit, so changes commit in `seq` order
and a reader past `seq` N never misses one committed later with a smaller `seq`. (SQLite's IMMEDIATE
write lock serialises writers already.)

The acting token's name: the HTTP layer tells it with `set_actor_source` (domain code never imports
the API); `acting_as` names the actor of a block (a script); the command line has none (null), the
migration's snapshot is `migration`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson
from peewee import BooleanField, DateField, DateTimeField

from ..db import before_commit, database, insert_rows, is_postgres, select_in
from ..models import Change, MergedStudy, Reference, Study, utcnow

STUDY, REFERENCE = "study", "reference"
KINDS = (STUDY, REFERENCE)
CREATE, UPDATE, DELETE, MERGE, SNAPSHOT = "create", "update", "delete", "merge", "snapshot"
ACTIONS = (CREATE, UPDATE, DELETE, MERGE, SNAPSHOT)
TOMBSTONES = (DELETE, MERGE)
CHUNK = 500
HOLD_AT_MOST = 20_000  # records whose changes are made before any is written (see record_changes)
_LOCK_KEY = 0x5354_5245_4743_4847  # pg_advisory_xact_lock key of the change feed ("STREGCHG")
_MODELS = {STUDY: Study, REFERENCE: Reference}
_LEFT_OUT = {STUDY: {"facet_sources"}, REFERENCE: set()}
_JSON_COLUMNS = {"countries", "curated", "authors", "publication_types"}


# ---- who acts ---------------------------------------------------------------------------------------

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("change_actor", default=None)
_actor_source: list[Callable[[], str | None]] = [lambda: None]


def set_actor_source(source: Callable[[], str | None]) -> None:
    """How to find the acting token's name (the API's: the request's bearer token)."""
    _actor_source[0] = source


@contextlib.contextmanager
def acting_as(name: str | None) -> Iterator[None]:
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str | None:
    return _actor.get() or _actor_source[0]()


# ---- what a write touched ---------------------------------------------------------------------------

@dataclass
class _Noted:
    studies: set[int] = field(default_factory=set)
    references: set[int] = field(default_factory=set)


_noted: contextvars.ContextVar[_Noted | None] = contextvars.ContextVar("change_noted", default=None)


def note(*, studies: Iterable[int] = (), references: Iterable[int] = ()) -> None:
    """Records a write touched besides those given to `db.changed()` (their links or `updated` moved);
    their changes are recorded when the write transaction commits."""
    noted = _noted.get()
    if noted is None:
        noted = _Noted()
        _noted.set(noted)
    noted.studies.update(studies)
    noted.references.update(references)


_ready: weakref.WeakSet = weakref.WeakSet()  # databases known to have the change table


def _feed_exists() -> bool:
    """Whether the register has its change table (not before m0010: the migration's snapshot then
    covers what was written before)."""
    db = database.obj
    if db in _ready:
        return True
    if db.table_exists(Change._meta.table_name):
        _ready.add(db)
        return True
    return False


def _at_commit(pending) -> None:
    noted = _noted.get()
    _noted.set(None)
    if not _feed_exists():
        return
    studies, references = set(pending.studies), set(pending.references)
    if noted is not None:
        studies |= noted.studies
        references |= noted.references
    if studies or references:
        record_changes(studies=studies, references=references)


before_commit.append(_at_commit)  # after derivation (domain/derive.py runs first): the final state


# ---- states -----------------------------------------------------------------------------------------

def _columns(kind: str, existing: set[str] | None) -> list:
    model = _MODELS[kind]
    return [f for name, f in model._meta.fields.items()
            if name not in _LEFT_OUT[kind] and (existing is None or f.column_name in existing)]


def _converter(column) -> Callable | None:
    """How a raw value of ``column`` becomes the model's (the same on both databases: SQLite gives text
    for dates and instants, integers for booleans)."""
    if column.name in _JSON_COLUMNS:
        return lambda v: orjson.loads(v or "[]")
    if isinstance(column, DateTimeField):
        return lambda v: dt.datetime.fromisoformat(v) if isinstance(v, str) else v
    if isinstance(column, DateField):
        return lambda v: dt.date.fromisoformat(v[:10]) if isinstance(v, str) else v
    if isinstance(column, BooleanField):
        return lambda v: None if v is None else bool(v)
    return None


def _states(kind: str, ids: list[int], existing: set[str] | None = None) -> dict[int, dict]:
    """The current state of each of these records that exists (``existing``: the table's columns, when
    the models may be ahead of the schema, as in a migration). Raw statements: building a peewee `IN`
    of 500 ids cost more than running it."""
    model = _MODELS[kind]
    columns = _columns(kind, existing)
    names = [c.name for c in columns]
    converters = [(n, f) for n, f in ((c.name, _converter(c)) for c in columns) if f is not None]
    selected = ", ".join(f'"{c.column_name}"' for c in columns)
    states: dict[int, dict] = {}
    for values in select_in(f'SELECT {selected} FROM "{model._meta.table_name}" WHERE {{where}}', "id", ids):
        row = dict(zip(names, values, strict=True))
        for name, convert in converters:
            row[name] = convert(row[name])
        states[row["id"]] = row
    if not states:
        return states
    links = select_in('SELECT study_id, reference_id, role, link FROM "study_reference" WHERE {where}',
                      "study_id" if kind == STUDY else "reference_id", list(states))
    if kind == STUDY:
        for state in states.values():
            state["registrations"], state["references"] = [], []
        for study_id, identifier in select_in('SELECT study_id, identifier FROM "registration" WHERE {where}',
                                              "study_id", list(states)):
            states[study_id]["registrations"].append(identifier)
        for study_id, reference_id, role, how in links:
            states[study_id]["references"].append([reference_id, role, how])
        for state in states.values():
            state["registrations"].sort()
            state["references"].sort()
    else:
        for state in states.values():
            state["studies"] = []
        for study_id, reference_id, role, how in links:
            states[reference_id]["studies"].append([study_id, role, how])
        for state in states.values():
            state["studies"].sort()
    return states


def _dumps(state: dict) -> bytes:
    """A state as JSON: instants in UTC with a `Z`, as the API writes them."""
    return orjson.dumps(state, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _latest(kind: str, ids: list[int]) -> dict[int, dict | None]:
    """Each record's state after its last change (None: its last change is a tombstone); records with no
    change are absent."""
    p = database.param
    rows = select_in(f'SELECT record_id, state FROM "change" WHERE seq IN (SELECT MAX(seq) FROM "change" '
                     f'WHERE kind = {p} AND {{where}} GROUP BY record_id)', "record_id", ids, params=(kind,))
    return {record_id: (orjson.loads(state) if state is not None else None) for record_id, state in rows}


def diff(old: dict | None, new: dict | None) -> list[str]:
    """The names of the fields whose values differ (a missing state has none)."""
    old, new = old or {}, new or {}
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def _lock_feed() -> None:
    if is_postgres():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def record_changes(*, studies: Iterable[int] = (), references: Iterable[int] = (),
                   actor: str | None = None, action: str | None = None,
                   existing: dict[str, set[str]] | None = None) -> int:
    """Append a change for each of these records whose state differs from the one its last change left
    (inside the write's transaction); return how many. ``action`` replaces `create` (`snapshot`)."""
    if not _feed_exists():
        return 0
    actor = actor if actor is not None else current_actor()
    chunks = [(kind, ids[start:start + CHUNK])
              for kind, ids in ((STUDY, sorted(set(studies))), (REFERENCE, sorted(set(references))))
              for start in range(0, len(ids), CHUNK)]
    # The rows are made before the feed's lock is taken, so other writers wait only for the inserts and
    # the commit; past HOLD_AT_MOST records (a large import, a migration's snapshot) they are made and
    # inserted a chunk at a time under the lock instead, so memory stays flat.
    columns = existing or {}

    def made(kind: str, ids: list[int]) -> list[dict]:
        return _changes_of(kind, ids, actor, action, columns.get(kind))

    if sum(len(ids) for _, ids in chunks) <= HOLD_AT_MOST:
        batches: Iterable[list[dict]] = [made(kind, ids) for kind, ids in chunks]
    else:
        batches = (made(kind, ids) for kind, ids in chunks)
    written, locked, now = 0, False, utcnow()
    for rows in batches:
        if not rows:
            continue
        if not locked:
            _lock_feed()
            now, locked = utcnow(), True
        for row in rows:
            row["at"] = now
        insert_rows(Change, rows)
        written += len(rows)
    return written


def _changes_of(kind: str, ids: list[int], actor: str | None, action: str | None,
                existing: set[str] | None) -> list[dict]:
    now_states = {i: orjson.loads(_dumps(s)) for i, s in _states(kind, ids, existing).items()}
    before = _latest(kind, ids)
    gone = [i for i in ids if i not in now_states and before.get(i) is not None]
    merged_into = {}
    if kind == STUDY and gone:
        merged_into = dict(MergedStudy.select(MergedStudy.id, MergedStudy.into)
                           .where(MergedStudy.id.in_(gone)).tuples())
    rows = []
    for record_id in ids:
        old, new = before.get(record_id), now_states.get(record_id)
        if new is None:
            if old is None:
                continue  # never recorded (made and removed in one write), or already a tombstone
            into = merged_into.get(record_id)
            rows.append({"kind": kind, "record_id": record_id, "action": MERGE if into else DELETE,
                         "actor": actor, "field_names": "[]", "state": None, "merged_into": into})
            continue
        names = diff(old, new) if old is not None else sorted(new)
        if not names:
            continue
        rows.append({"kind": kind, "record_id": record_id,
                     "action": UPDATE if old is not None else (action or CREATE), "actor": actor,
                     "field_names": orjson.dumps(names).decode(), "state": _dumps(new).decode(),
                     "merged_into": None})
    return rows


def snapshot_all(actor: str = "migration") -> int:
    """A `snapshot` change for every study and reference with none yet (an existing register, when the
    feed begins), so a mirror replaying the feed from the start holds every record. Reads only the
    columns the tables have (the models may be ahead of the schema during a migration)."""
    existing = {kind: {c.name for c in database.get_columns(_MODELS[kind]._meta.table_name)}
                for kind in KINDS}
    recorded = {kind: {r for (r,) in Change.select(Change.record_id).where(Change.kind == kind).distinct()
                       .tuples()} for kind in KINDS}
    ids = {kind: [i for (i,) in _MODELS[kind].select(_MODELS[kind].id).order_by(_MODELS[kind].id).tuples()
                  if i not in recorded[kind]] for kind in KINDS}
    return record_changes(studies=ids[STUDY], references=ids[REFERENCE], actor=actor, action=SNAPSHOT,
                          existing=existing)


# ---- reading ----------------------------------------------------------------------------------------

def feed_query(*, since: dt.datetime | None = None, kind: str | None = None):
    """Changes at or after ``since`` (of one ``kind``), for paging by `seq`."""
    query = Change.select()
    if since is not None:
        query = query.where(Change.at >= since)
    if kind is not None:
        query = query.where(Change.kind == kind)
    return query


def page_after(query, after: int | None, limit: int) -> tuple[list[Change], bool]:
    """Up to ``limit`` changes of ``query`` after `seq` ``after``, in `seq` order, and whether more follow."""
    if after is not None:
        query = query.where(Change.seq > after)
    rows = list(query.order_by(Change.seq).limit(limit + 1))
    return rows[:limit], len(rows) > limit


def _state(change: Change) -> dict | None:
    return orjson.loads(change.state) if change.state is not None else None


def feed_item(change: Change) -> dict:
    """A change as the feed lists it: the new values of the fields it changed (none for a tombstone)."""
    names = orjson.loads(change.field_names)
    state = _state(change)
    tombstone = change.action in TOMBSTONES
    return {"seq": change.seq, "at": change.at, "kind": change.kind, "id": change.record_id,
            "action": change.action, "actor": change.actor, "fields": names,
            "values": None if tombstone else {n: state.get(n) for n in names},
            "deleted_at": change.at if tombstone else None, "merged_into": change.merged_into}


def has_history(kind: str, record_id: int) -> bool:
    return Change.select(Change.seq).where((Change.kind == kind) & (Change.record_id == record_id)).exists()


def history_query(kind: str, record_id: int):
    return Change.select().where((Change.kind == kind) & (Change.record_id == record_id))


def history_items(kind: str, record_id: int, changes: list[Change]) -> list[dict]:
    """Each change with the old and new value of every field it changed (a tombstone: every field's old
    value, new null)."""
    if not changes:
        return []
    previous = (history_query(kind, record_id).where(Change.seq < changes[0].seq)
                .order_by(Change.seq.desc()).first())
    old = _state(previous) if previous is not None else None
    items = []
    for change in changes:
        new = _state(change)
        names = diff(old, new)
        items.append({**feed_item(change), "fields": names,
                      "changes": {name: {"old": (old or {}).get(name), "new": (new or {}).get(name)}
                                  for name in names}})
        old = new
    return items
