"""Saved searches for living reviews: a strategy (`q` as written) and its study filters kept by name, and
the history of its runs (when, how many studies it answered, since when)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from peewee import fn

from ..db import write_transaction
from ..models import SavedSearch, SearchRun, utcnow
from . import records
from .errors import NotFound

SEARCH_SORTS = {"id": SavedSearch.id, "name": SavedSearch.name, "created": SavedSearch.created,
                "updated": SavedSearch.updated}
SEARCH_FIELDS = ("id", "name", "q", "created", "updated")


def run_dict(run: SearchRun) -> dict:
    return {"run_at": run.run_at, "total": run.total, "since": run.since}


def search_dict(search: SavedSearch, runs: Sequence[SearchRun] | None = None,
                last_run: SearchRun | None = None, run_count: int = 0) -> dict:
    """A saved search; with ``runs`` (newest first) its whole history, else its latest run and count."""
    record = {name: getattr(search, name) for name in SEARCH_FIELDS}
    record["filters"] = json.loads(search.filters or "{}")
    if runs is not None:
        record["runs"] = [run_dict(r) for r in runs]
        last_run, run_count = (runs[0] if runs else None), len(runs)
    record["last_run"] = run_dict(last_run) if last_run is not None else None
    record["run_count"] = run_count
    return record


def _get(search_id: int) -> SavedSearch:
    search = SavedSearch.get_or_none(SavedSearch.id == search_id)
    if search is None:
        raise NotFound(f"Saved search {search_id} does not exist.")
    return search


def _runs(search_id: int) -> list[SearchRun]:
    return list(SearchRun.select().where(SearchRun.search == search_id)
                .order_by(SearchRun.run_at.desc(), SearchRun.id.desc()))


def get_search(search_id: int) -> dict:
    """One saved search with every run, newest first (two queries)."""
    search = _get(search_id)
    return search_dict(search, _runs(search_id))


def strategy(search_id: int) -> tuple[str, dict]:
    """The `q` (as written) and the filters (as stored) of a saved search."""
    search = _get(search_id)
    return search.q, json.loads(search.filters or "{}")


def all_searches():
    return SavedSearch.select()


def search_rows(top):
    """The whole rows of the saved searches whose ids ``top`` (a subquery with an ``id`` column) selects."""
    return SavedSearch.select().join(top, on=(SavedSearch.id == top.c.id))


def search_dicts(searches: Sequence[SavedSearch]) -> list[dict]:
    """A page of saved searches, each with its latest run and its number of runs (two queries more)."""
    ids = [s.id for s in searches]
    counts, latest = {}, {}
    if ids:
        grouped = (SearchRun.select(SearchRun.search, fn.COUNT(SearchRun.id), fn.MAX(SearchRun.id))
                   .where(SearchRun.search.in_(ids)).group_by(SearchRun.search).tuples())
        last_ids = []
        for search_id, count, last_id in grouped:
            counts[search_id] = count
            last_ids.append(last_id)
        if last_ids:  # runs are numbered in the order they were recorded
            latest = {r.search_id: r for r in SearchRun.select().where(SearchRun.id.in_(last_ids))}
    return [search_dict(s, last_run=latest.get(s.id), run_count=counts.get(s.id, 0)) for s in searches]


def _filters_json(filters: dict | None) -> str:
    return json.dumps(filters or {}, sort_keys=True)


def _current(search_id: int, if_match: list[str] | None) -> None:
    """The saved search exists and ``if_match`` (when given) names its current version."""
    search = _get(search_id)
    records.check_precondition(f"Saved search {search_id}",
                               lambda: search_dict(search, _runs(search_id)), if_match)


def create_search(data: dict[str, Any]) -> int:
    """Store a saved search (``data``: its `name`, `q` as written and `filters` as validated); its id."""
    now = utcnow()
    with write_transaction():
        return SavedSearch.insert(name=data["name"], q=data["q"],
                                  filters=_filters_json(data.get("filters")),
                                  created=now, updated=now).execute()


def update_search(search_id: int, data: dict[str, Any], *, if_match: list[str] | None = None) -> None:
    """Change its name, `q` or filters (the filters given replace the stored ones); its runs stay."""
    with write_transaction():
        _current(search_id, if_match)
        values: dict[str, Any] = {k: data[k] for k in ("name", "q") if k in data}
        if "filters" in data:
            values["filters"] = _filters_json(data["filters"])
        values["updated"] = utcnow()
        SavedSearch.update(values).where(SavedSearch.id == search_id).execute()


def delete_search(search_id: int, *, if_match: list[str] | None = None) -> None:
    """Delete a saved search and its run history."""
    with write_transaction():
        _current(search_id, if_match)
        SearchRun.delete().where(SearchRun.search == search_id).execute()
        SavedSearch.delete().where(SavedSearch.id == search_id).execute()


def last_run_at(search_id: int) -> dt.datetime | None:
    """When the saved search was last run (None: never)."""
    run = (SearchRun.select(SearchRun.run_at).where(SearchRun.search == search_id)
           .order_by(SearchRun.run_at.desc(), SearchRun.id.desc()).first())
    return run.run_at if run is not None else None


def record_run(search_id: int, *, run_at: dt.datetime, total: int, since: dt.datetime | None) -> dict:
    """Note a run of the saved search: when, how many studies it answered, the `since` it used."""
    with write_transaction():
        _get(search_id)
        SearchRun.insert(search=search_id, run_at=run_at, total=total, since=since).execute()
    return {"run_at": run_at, "total": total, "since": since}
