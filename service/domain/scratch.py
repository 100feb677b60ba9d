"""An import's bookkeeping in memory that does not grow with its file: a mapping that moves to a scratch
file, and a set of record ids as a bitmap.

An import remembers every key it has seen (to report a later row with the same key as a duplicate of
the first), the title index of the register, and the dates to restore at the end. Held in dicts, that
is about half a kilobyte a record: the memory of a large import would grow with its file. A
:class:`SpillingMap` is a dict until it holds ``limit`` entries, then an SQLite table in a temporary
file with a small page cache (stdlib ``sqlite3``, whatever the register's database), so memory stays
flat. Keys and values are pickled (tuples of str, bytes, int, None, dates: the same key always gives the
same bytes). The ids of the records an import touched are an :class:`IdSet`: one bit an id, so a
million records cost 125 KB where a Python set of them costs tens of MB.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
from collections.abc import Hashable, Iterator
from typing import Any

SPILL_AFTER = 20_000  # entries a map holds in memory before it moves to its scratch file
_CACHE_KIB = 2048  # the scratch file's page cache
_MISSING = object()


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class SpillingMap:
    """``get``, ``[]``, ``in``, ``setdefault``, ``items`` and ``len`` of a dict, in bounded memory."""

    def __init__(self, limit: int | None = None):
        self._limit = SPILL_AFTER if limit is None else limit
        self._memory: dict = {}
        self._disk: sqlite3.Connection | None = None
        self._path: str | None = None
        self._size = 0

    def __len__(self) -> int:
        return len(self._memory) if self._disk is None else self._size

    def _lookup(self, key: Hashable) -> Any:
        if self._disk is None:
            return self._memory.get(key, _MISSING)
        row = self._disk.execute("SELECT v FROM m WHERE k = ?", (_dump(key),)).fetchone()
        return _MISSING if row is None else pickle.loads(row[0])

    def get(self, key: Hashable, default: Any = None) -> Any:
        value = self._lookup(key)
        return default if value is _MISSING else value

    def __contains__(self, key: Hashable) -> bool:
        return self._lookup(key) is not _MISSING

    def __getitem__(self, key: Hashable) -> Any:
        value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        if self._disk is None:
            self._memory[key] = value
            if len(self._memory) > self._limit:
                self._spill()
            return
        pair = (_dump(key), _dump(value))
        if self._disk.execute("INSERT OR IGNORE INTO m (k, v) VALUES (?, ?)", pair).rowcount:
            self._size += 1
        else:
            self._disk.execute("UPDATE m SET v = ? WHERE k = ?", pair[::-1])

    def setdefault(self, key: Hashable, value: Any) -> Any:
        current = self._lookup(key)
        if current is not _MISSING:
            return current
        self[key] = value
        return value

    def items(self) -> Iterator[tuple[Any, Any]]:
        """The entries, in the order they were first set."""
        if self._disk is None:
            yield from list(self._memory.items())
            return
        for key, value in self._disk.execute("SELECT k, v FROM m ORDER BY n"):
            yield pickle.loads(key), pickle.loads(value)

    def _spill(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="study-register-import-", suffix=".db")
        os.close(handle)
        self._disk = sqlite3.connect(self._path, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{_CACHE_KIB}"):
            self._disk.execute(f"PRAGMA {pragma}")
        self._disk.execute("CREATE TABLE m (n INTEGER PRIMARY KEY, k BLOB NOT NULL UNIQUE, v BLOB NOT NULL)")
        self._disk.execute("BEGIN")  # one scratch transaction: never committed piecemeal, never needed after
        self._disk.executemany("INSERT INTO m (k, v) VALUES (?, ?)",
                               ((_dump(k), _dump(v)) for k, v in self._memory.items()))
        self._size = len(self._memory)
        self._memory = {}

    def close(self) -> None:
        """Remove the scratch file, if any (the map is empty afterwards)."""
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        if self._path is not None:
            os.unlink(self._path)
            self._path = None
        self._memory, self._size = {}, 0


class IdSet:
    """A set of non-negative integers (record ids) as a bitmap: ``add``, ``update``, ``in``, ``len``, and
    iteration in ascending order."""

    def __init__(self, ids=()):
        self._bits = bytearray()
        self._size = 0
        self.update(ids)

    def add(self, value: int) -> None:
        byte, bit = divmod(value, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        if not self._bits[byte] & (1 << bit):
            self._bits[byte] |= 1 << bit
            self._size += 1

    def update(self, values) -> None:
        for value in values:
            self.add(value)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int) or value < 0:
            return False
        byte, bit = divmod(value, 8)
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << bit))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[int]:
        for byte, bits in enumerate(self._bits):
            while bits:
                low = bits & -bits
                yield byte * 8 + low.bit_length() - 1
                bits ^= low
