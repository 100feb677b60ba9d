"""SpillingMap: the same answers as a dict, in memory and once moved to its scratch file."""

from __future__ import annotations

import datetime as dt
import glob
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.scratch import IdSet, SpillingMap

KEYS = st.one_of(st.text(max_size=8), st.tuples(st.sampled_from(["doi", "pmid", "title"]),
                                                st.one_of(st.text(max_size=8), st.binary(max_size=12))),
                 st.tuples(st.just("reference"), st.integers(0, 50)))
VALUES = st.one_of(st.none(), st.integers(), st.tuples(st.integers(0, 10**6), st.none() | st.integers()),
                   st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1)))
OPERATIONS = st.lists(st.tuples(st.sampled_from(["set", "setdefault", "get", "in", "getitem"]), KEYS, VALUES),
                      max_size=60)


def _scratch_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "study-register-import-*.db")))


@settings(max_examples=150, deadline=None)
@given(operations=OPERATIONS, limit=st.sampled_from([0, 3, 10_000]))
def test_a_spilling_map_answers_as_a_dict(operations, limit):
    before = _scratch_files()
    model, store = {}, SpillingMap(limit=limit)
    try:
        for operation, key, value in operations:
            if operation == "set":
                model[key] = value
                store[key] = value
            elif operation == "setdefault":
                assert store.setdefault(key, value) == model.setdefault(key, value)
            elif operation == "get":
                assert store.get(key, "absent") == model.get(key, "absent")
            elif operation == "in":
                assert (key in store) == (key in model)
            elif key in model:
                assert store[key] == model[key]
            else:
                try:
                    store[key]
                except KeyError:
                    pass
                else:
                    raise AssertionError(f"{key!r} should be missing")
            assert len(store) == len(model)
        assert list(store.items()) == list(model.items())  # first-set order, last value
    finally:
        store.close()
    assert len(store) == 0 and _scratch_files() == before


def test_a_map_moves_to_its_scratch_file_only_past_its_limit_and_removes_it_when_closed():
    before = _scratch_files()
    store = SpillingMap(limit=2)
    store["a"], store["b"] = 1, 2
    assert _scratch_files() == before  # still a dict
    store["c"] = 3
    [path] = _scratch_files() - before
    assert os.path.getsize(path) > 0
    store["a"] = 10  # replaced in place: it keeps its position
    assert list(store.items()) == [("a", 10), ("b", 2), ("c", 3)] and len(store) == 3
    store.close()
    assert not os.path.exists(path)


@given(st.lists(st.integers(0, 5000), max_size=200), st.lists(st.integers(-3, 6000), max_size=50))
def test_an_id_set_answers_as_a_set_and_iterates_in_ascending_order(added, asked):
    ids = IdSet(added[:10])
    ids.update(added[10:])
    assert list(ids) == sorted(set(added)) and len(ids) == len(set(added))
    for value in asked:
        assert (value in ids) == (value in set(added))
