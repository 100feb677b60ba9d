"""File formats the register reads: decoding a byte stream, and one parser per format.

Each parser turns a text stream into ``Row``s, one per record, each carrying the line the record starts
on and either a mapped record or the reason it was rejected. A parser raises ``FormatError`` when the
file as a whole is not the format named (wrong columns, not JSON, truncated): the import is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = ("ictrp-csv", "ctgov-json", "ris", "ndjson", "ctgov-aact-csv", "ictrp-xlsx")
# Formats read as bytes (``reading.open_binary``), not as text.
BINARY_FORMATS = ("ictrp-xlsx",)


class FormatError(ValueError):
    """The file cannot be read as the format named: nothing from it is imported."""


class RowError(ValueError):
    """One record of the file cannot be mapped onto the register: it is rejected, the rest goes on."""


@dataclass
class RegistryRecord:
    """A trial registry record: becomes (or updates) a study with its registrations, plus its own
    `trial_registry_record` reference.

    ``identifier`` is the record's own canonical registration identifier, ``registry`` its registry code;
    ``secondary`` are the other registrations of the same trial it names (ICTRP bridging, CT.gov
    secondary ids), as ``(identifier, registry)``.
    """

    identifier: str
    registry: str
    study: dict[str, Any]
    reference: dict[str, Any]
    secondary: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ArticleRecord:
    """A bibliographic record (journal article, preprint...): becomes (or updates) a reference, linked
    automatically by the registration identifiers found in it."""

    reference: dict[str, Any]
    complete: bool = False  # True: a whole record (register NDJSON): missing values clear stored ones


@dataclass
class ExportedStudy:
    """A study line of the register's own NDJSON export: the study, its registrations, and its references
    with how each was linked (``"manual"`` links are made by hand, ``"auto"`` ones left to linking)."""

    study: dict[str, Any]
    registrations: list[tuple[str, str]]
    references: list[tuple[dict[str, Any], str]]


@dataclass
class Row:
    line: int
    record: RegistryRecord | ArticleRecord | ExportedStudy | None = None
    error: str | None = None


def parser_for(fmt: str):
    """The parse function of a format: ``parse(text_stream, info) -> Iterator[Row]`` (a seekable byte
    stream for ``BINARY_FORMATS``); it records what it
    learnt about the file (``info["layout"]``) in ``info``."""
    from . import aact, ctgov, ictrp, ndjson, ris, xlsx

    return {"ictrp-csv": ictrp.parse, "ctgov-json": ctgov.parse, "ris": ris.parse,
            "ndjson": ndjson.parse, "ctgov-aact-csv": aact.parse, "ictrp-xlsx": xlsx.parse}[fmt]
