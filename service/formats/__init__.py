"""File formats the register reads: decoding a byte stream, and one parser per format.

Each parser turns a text stream into ``Row``s, one per record, each carrying the line the record starts
on and either a mapped record or the reason it was rejected. A parser raises ``FormatError`` when the
file as a whole is not the format named (wrong columns, not JSON, truncated): the import is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = ("ictrp-csv", "ctgov-json", "ris", "ndjson", "ctgov-aact-csv", "ictrp-xlsx", "articles-csv",
           "direcct-registrations", "direcct-results", "direcct-registries")
# Formats read as bytes (``reading.open_binary``), not as text.
BINARY_FORMATS = ("ictrp-xlsx",)


class FormatError(ValueError):
    """The file cannot be read as the format named: nothing from it is imported."""


class RowError(ValueError):
    """One record of the file cannot be mapped onto the register: it is rejected, the rest goes on."""


# How strongly a source states a value (domain/derive.py: a stronger claim wins, then the newer source).
STRUCTURED = 3  # a registry's coded field (ClinicalTrials.gov's enums, AACT's columns, a date column)
TABLE = 2       # a registry's own words in a field made for it, mapped by a table (ICTRP `Study type`)
TEXT = 1        # a keyword rule over free text (design text, a scientific title saying "randomised")


@dataclass(frozen=True)
class Claim:
    """What one source record states about one field of its study: the value in the register's terms,
    the source's column (or JSON path) it was read from, how strongly (STRUCTURED, TABLE, TEXT), the rule
    that derived it when it was not read directly, and the words that stated it.

    Field names are the study's: the four facets, `recruitment_status`, `phase` (vocabularies), `target_size`
    (int), `countries` (list of ISO 3166-1 alpha-2 codes), `sponsor` (str), `registered`, `start_date`,
    `primary_completion_date`, `results_registry_date`, `record_updated` (ISO dates, `YYYY-MM-DD`),
    `results_registry` (bool: the registry holds summary results)."""

    value: Any
    field: str
    strength: int = STRUCTURED
    rule: str | None = None
    span: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"value": self.value, "field": self.field, "strength": self.strength}
        if self.rule:
            out["rule"] = self.rule
        if self.span:
            out["span"] = self.span[:200]
        return out


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
    # What the record states about its study, by study field (see Claim); kept per source and combined
    # with every other record of the study by domain/derive.py.
    claims: dict[str, Claim] = field(default_factory=dict)


@dataclass
class RegistryStatus:
    """What a registry scrape says of a registration without a record of its own (DIRECCT's April 2022
    scrape: status, completion dates, results flags): kept as claims of that registration's study."""

    identifier: str
    registry: str
    claims: dict[str, Claim] = field(default_factory=dict)


class AddedLines(str):
    """A value whose lines are added to the stored value's, not put in its place: the trial identifiers
    one article file names go into a reference's notes beside those another file (or a curator) wrote.
    Lines already there are not added again, so importing the file twice changes nothing."""

    def onto(self, current: str | None) -> str:
        """The stored value ``current`` with the lines of this one it lacks added at its end."""
        if not current:
            return str(self)
        have = set(current.split("\n"))
        return "\n".join([current, *(line for line in self.split("\n") if line and line not in have)])


class KeepStored(str):
    """A value used only where the stored value is empty: a default (an article file without types says
    `journal_article`) or a weaker source's (titles DIRECCT cut from full texts), which must not overwrite
    what a better source or a curator gave."""


@dataclass
class ArticleRecord:
    """A bibliographic record (journal article, preprint...): becomes (or updates) a reference, linked
    automatically by the registration identifiers found in it."""

    reference: dict[str, Any]
    complete: bool = False  # True: a whole record (register NDJSON): missing values clear stored ones
    # True: what one source knows about a reference others describe in full (DIRECCT's results list): it
    # creates the reference when none has its key, but on a stored one only fills empty values (and sets
    # `has_results` when it says so) and adds its lines of `notes` to the stored ones, never replacing them.
    supplement: bool = False


@dataclass
class ExportedStudy:
    """A study line of the register's own NDJSON export: the study, its registrations, and its references
    (reports and citing) with how each was linked (``"manual"`` links are made by hand, ``"auto"`` ones
    left to linking) and the role a curator set (or None)."""

    study: dict[str, Any]
    registrations: list[tuple[str, str]]
    references: list[tuple[dict[str, Any], str, str | None]]


@dataclass
class CrossRegistrations:
    """The registrations of one trial, as a list of cross-registrations (DIRECCT): they become registrations
    of one study, created (named by the first, ``study`` its placeholder title and facets) when none of them
    is registered yet; nothing else of a stored study changes. ``key`` names the trial in the file."""

    key: str
    identifiers: list[tuple[str, str]]
    study: dict[str, Any]


@dataclass
class Row:
    line: int
    record: RegistryRecord | ArticleRecord | ExportedStudy | CrossRegistrations | RegistryStatus | None = None
    error: str | None = None


def parser_for(fmt: str):
    """The parse function of a format: ``parse(stream, info) -> Iterator[Row]``, where ``stream`` is text
    (a seekable byte stream for ``BINARY_FORMATS``); it records what it learnt about the file
    (``info["layout"]``) in ``info``."""
    from . import aact, articles, ctgov, direcct, ictrp, ndjson, ris, xlsx

    return {"ictrp-csv": ictrp.parse, "ctgov-json": ctgov.parse, "ris": ris.parse,
            "ndjson": ndjson.parse, "ctgov-aact-csv": aact.parse, "ictrp-xlsx": xlsx.parse,
            "articles-csv": articles.parse, "direcct-registrations": direcct.parse_registrations,
            "direcct-results": direcct.parse_results, "direcct-registries": direcct.parse_registries}[fmt]
