"""RIS (DOMAIN.md §3.3) read with rispy, one record at a time so large files stream and every record
keeps the line it starts on. Each record is an article (journal article, preprint, ...), linked to
studies automatically by the registration identifiers found in it."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import rispy

from . import ArticleRecord, FormatError, Row, RowError, fields

_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
# RIS type -> reference type; `M3` (type of work) "preprint" also makes a preprint. MANSCPT is what the
# register's own export writes for a preprint (see RIS_TYPES below).
TYPES = {
    "JOUR": "journal_article", "JFULL": "journal_article", "EJOUR": "journal_article",
    "MGZN": "journal_article", "UNPB": "preprint", "MANSCPT": "preprint", "INPR": "journal_pre_proof",
    "CONF": "conference_abstract", "CPAPER": "conference_abstract", "ABST": "conference_abstract",
    "NEWS": "press_release", "RPRT": "report", "GOVDOC": "report", "PCOMM": "letter",
    "DBASE": "trial_registry_record",  # the register's own export: a registry record, its id in AN
}
_PMID = re.compile(r"\bPMID:?\s*(\d{1,10})\b", re.I)


def parse(stream: TextIO, info: dict) -> Iterator[Row]:
    info["layout"] = "ris"
    parser = rispy.RisParser()
    lines: list[str] = []
    start = 0
    seen_record = False
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n").lstrip("\ufeff")
        tag = _TAG.match(line)
        if not lines:
            if not line.strip():
                continue
            if not tag or tag.group(1) != "TY":
                if seen_record:
                    continue  # text between records is ignored, as RIS readers do
                raise FormatError(f"This is not RIS: line {number} should start a record with `TY  - `.")
            lines, start = [line], number
            continue
        lines.append(line)
        if tag and tag.group(1) == "ER":
            seen_record = True
            yield _row(parser, start, lines)
            lines = []
    if lines:
        raise FormatError(f"The record starting at line {start} has no `ER  - ` end (truncated?).")
    if not seen_record:
        raise FormatError("The file holds no RIS record.")


def _row(parser: rispy.RisParser, line: int, lines: list[str]) -> Row:
    try:
        parsed = parser.parse_lines(iter(lines))
        return Row(line, record=map_record(parsed[0] if parsed else {}))
    except RowError as error:
        return Row(line, error=str(error))


def _first(record: dict, *keys: str) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        cleaned = fields.one_line(value) if isinstance(value, str) else None
        if cleaned:
            return cleaned
    return None


def map_record(record: dict) -> ArticleRecord:
    title = _first(record, "title", "primary_title", "translated_title", "short_title")
    if not title:
        raise RowError("has no title (`TI` or `T1`).")
    kind = TYPES.get((record.get("type_of_reference") or "").strip().upper(), "other")
    if "preprint" in (_first(record, "type_of_work") or "").lower():
        kind = "preprint"
    authors = [_stored_author(fields.one_line(a))
               for a in (record.get("authors") or record.get("first_authors") or [])]
    published = fields.partial_date(_first(record, "date")) or fields.partial_date(
        _first(record, "year", "publication_year"))
    year_text = fields.partial_date(_first(record, "year", "publication_year"))
    year = int((year_text or published or "0")[:4]) or None
    if published and year and int(published[:4]) != year:
        published = year_text
    start, end = _first(record, "start_page"), _first(record, "end_page")
    pages = f"{start}-{end}" if start and end and end != start else start
    doi = _doi(_first(record, "doi"))
    pmid = None
    accession = _first(record, "accession_number")
    registration_id = None
    if kind == "trial_registry_record":
        registration_id, accession = accession, None
    if accession and accession.isdigit():
        pmid = accession.lstrip("0") or None
    if pmid is None:
        extra = (record.get("unknown_tag") or {}).get("M2") or []  # the export's "PMID: n" of a preprint
        for note in (record.get("notes") or []) + [record.get("note") or ""] + list(extra):
            m = _PMID.search(note or "")
            if m:
                pmid = m.group(1).lstrip("0") or None
                break
    urls = [u for u in (record.get("urls") or []) if fields.url(u)]
    keywords = {k.strip().lower() for k in record.get("keywords") or [] if isinstance(k, str)}
    notes = "\n".join(n for n in (fields.text(n) for n in record.get("notes") or []) if n) or None
    reference = {
        "type": kind,
        "title": title,
        "authors": [a for a in authors if a],
        "abstract": fields.text(record.get("abstract") or record.get("notes_abstract")),
        "source": _first(record, "secondary_title", "journal_name", "alternate_title3",
                         "alternate_title2", "alternate_title1") or _database(record),
        "year": year,
        "published": published,
        "volume": _first(record, "volume"),
        "issue": _first(record, "number"),
        "pages": pages,
        "doi": doi,
        "pmid": pmid,
        "url": urls[0] if urls else None,
        "notes": notes,
    }
    if registration_id:
        reference["registration_id"] = registration_id
    if RESULTS_KEYWORDS[True] in keywords:  # the register's own export marks reports with results
        reference["has_results"] = True
    fields.check_limits(reference)
    return ArticleRecord(reference=reference)


def _database(record: dict) -> str | None:
    """`DB` as the source (a preprint server, a registry), unless it only names where `AN` is from."""
    database = _first(record, "name_of_database")
    return None if database and database.lower() in ("pubmed", "medline") else database


def _stored_author(name: str | None) -> str | None:
    """RIS's `Chu, M` as the register stores PubMed's names, `Chu M` (and `Ortiz, GJ, 4th` as
    `Ortiz GJ 4th`), so that what the export wrote reads back as it was; a full given name keeps its
    comma ("Chu, Mingxing"), which ``split_name`` reads the same way again."""
    if not name or "," not in name:
        return name
    parsed = split_name(name)
    if parsed is None or parsed.literal is not None or not all(
            _is_initials(t) for t in (parsed.given or "").split()):
        return name
    return " ".join(p for p in (parsed.family, parsed.given, parsed.suffix) if p)


def _doi(value: str | None) -> str | None:
    if not value:
        return None
    m = re.search(r"10\.\d{4,9}/\S+", value)
    return m.group(0).rstrip(".").lower() if m else None


# ---------------------------------------------------------------------------------------- export
#
# The register's references as RIS for reference managers. Tags and types were chosen by reading
# the two importers people use (README "RIS export" has the table): Zotero's RIS translator
# (zotero/translators RIS.js: `importTypeMap`, `fieldMap`, `degenerateImportFieldMap`; a tag whose
# field the item type lacks ends up in a "no corresponding Zotero field" child note) and citation-js
# (@citation-js/plugin-ris: spec/types.json and the "mixed" tag spec).

# Reference type -> RIS type. A preprint is `MANSCPT`: Zotero's translator has no RIS type for its
# `preprint` item type (UNPB falls back to a journal article there) and makes MANSCPT a manuscript,
# citation-js a CSL `manuscript` (as it does UNPB); `M3  - Preprint` names it (Zotero: manuscript type,
# citation-js: genre). A registry record is `DBASE`: a `dataset` in both.
RIS_TYPES = {
    "journal_article": "JOUR",
    "trial_registry_record": "DBASE",
    "preprint": "MANSCPT",
    "journal_pre_proof": "JOUR",  # Zotero makes INPR a manuscript, which has no journal field
    "conference_abstract": "ABST",
    "press_release": "NEWS",
    "retraction_notice": "JOUR",
    "expression_of_concern": "JOUR",
    "letter": "JOUR",
    "report": "RPRT",
    "other": "GEN",
}
# RIS types whose `M3` both importers keep as the kind of work (Zotero: manuscriptType, reportType);
# on a journal article or a dataset Zotero reads `M3` as a DOI and files anything else in a junk note.
_M3_TYPES = {"MANSCPT", "RPRT"}
# Where the source (journal, server, registry, publisher) goes, by RIS type: `T2` is the journal for
# Zotero and citation-js alike; a manuscript or dataset has no journal field in Zotero, so the server
# or registry goes in `DB` (Zotero: archive; citation-js: source); a report's source is its institution.
_SOURCE_TAG = {"MANSCPT": "DB", "DBASE": "DB", "RPRT": "PB"}
# Zotero's item types without volume and issue fields: VL/IS there would be dropped (or land in the junk
# note); a manuscript reads SP as its number of pages and a dataset has no pages at all.
_NO_VOLUME = {"MANSCPT", "DBASE", "RPRT"}
_NO_PAGES = {"MANSCPT", "DBASE"}
_DATE_IN_PY = {"DBASE", "NEWS"}
STUDY_KEYWORD = "study:"  # + each registration identifier of a study the reference reports
RESULTS_KEYWORDS = {True: "results:yes", False: "results:no"}

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_PAGE_RANGE = re.compile(r"^\s*([^\s\-–]+)\s*[-–]\s*([^\s\-–]+)\s*$")


# ---------------------------------------------------------------------------------- author names

_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "2nd", "3rd", "4th", "5th"}
# Words that make a name a group author (PubMed's collective names: "PECOS Study Team",
# "RECOVER-Pediatrics Consortium", "OpenSAFELY Collaborative", "the SURPRISE+ cohort", ...).
_GROUP_WORDS = re.compile(
    r"\b(group|groups|team|consortium|collaborat\w*|investigators?|network|committee|study|studies|"
    r"working|society|association|institute|university|hospital|trial|trials|trialists|biobank|"
    r"coalition|alliance|registry|organi[sz]ation|council|programm?e?|initiative|cent(?:er|re)|"
    r"department|members|writing|panel|cohort|project|partnership|task|force|board|foundation|agency|"
    r"ministry|service|unit|laborator(?:y|ies)|faculty|authors|on behalf|effort|groupe|grupo|gruppo|"
    r"covid|covid-19|sars-cov-2)\b", re.IGNORECASE)
# Lower-case particles that start a family name written after the given name ("Ludwig van der Berg").
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "do", "du",
              "la", "le", "ter", "ten", "te", "zu", "zur", "vom", "bin", "ibn", "al", "el", "y"}


@dataclass(frozen=True)
class Name:
    """An author as RIS wants it: a person's family and given names (initials), or one literal."""

    family: str | None = None
    given: str | None = None
    suffix: str | None = None
    literal: str | None = None

    def ris(self) -> str:
        """`Family, Given` (`, Suffix`) for a person; a group author without a comma, so that Zotero
        makes it a single-field creator and citation-js a `literal` name."""
        if self.literal is not None:
            return self.literal
        return ", ".join(p for p in (self.family, self.given, self.suffix) if p)


def _is_initials(token: str) -> bool:
    letters = token.replace("-", "").replace(".", "")
    return bool(letters) and letters.isalpha() and letters.isupper() and len(letters) <= 6


def split_name(name: str) -> Name | None:
    """An author as the register stores it, split into family and given names.

    The forms the sources use: PubMed's `Family INITIALS` ("Chu M", "Chu MX", "van der Horn HJ",
    "Hernáez Á", "Balligand J-L", "Ortiz GJ 4th"), `Family, Given` ("Chu, Mingxing"), `Given Family`
    ("Mingxing Chu", "Ludwig van der Berg", "Mingxing Chu Jr"); group authors ("PECOS Study Team")
    and one-word names stay one literal (commas in it become spaces: every importer splits at one).
    """
    text = " ".join((name or "").split())
    if not text:
        return None
    if _GROUP_WORDS.search(text) or re.search(r"\d", re.sub(r"\b\d(?:st|nd|rd|th)$", "", text)):
        return Name(literal=" ".join(text.replace(",", " ").split()))
    if "," in text:
        family, *rest = [part.strip() for part in text.split(",")]
        rest = [part for part in rest if part]
        suffix = rest.pop() if len(rest) > 1 and rest[-1].lower() in _SUFFIXES else None
        if family and rest:
            return Name(family=family, given=" ".join(rest), suffix=suffix)
        return Name(literal=family or " ".join(rest)) if family or rest else None
    tokens = text.split(" ")
    suffix = None
    if len(tokens) > 2 and tokens[-1].lower() in _SUFFIXES:
        suffix = tokens.pop()
    if len(tokens) < 2 or tokens[-1].lower() in _SUFFIXES:  # "WHO", "Chu Jr": one field
        return Name(literal=text)
    initials = 0
    while initials < len(tokens) - 1 and _is_initials(tokens[-1 - initials]):
        initials += 1
    if initials:  # PubMed: family first, then initials
        return Name(family=" ".join(tokens[:-initials]), given=" ".join(tokens[-initials:]), suffix=suffix)
    start = next((i for i in range(1, len(tokens) - 1) if tokens[i] in _PARTICLES), len(tokens) - 1)
    if tokens[0] in _PARTICLES:  # "van der Berg": a family name alone
        return Name(literal=text)
    return Name(family=" ".join(tokens[start:]), given=" ".join(tokens[:start]), suffix=suffix)


@functools.lru_cache(maxsize=65536)  # authors recur across an export's records (~6 µs a name uncached)
def ris_author(name: str) -> str | None:
    """One `AU` value: `Chu, M` for "Chu M" (see ``split_name``)."""
    parsed = split_name(name)
    return parsed.ris() if parsed else None


# ---------------------------------------------------------------------------------------- record

def _one_line(value) -> str:
    """RIS is line-based: a line break inside a value would start a bogus tag or be lost."""
    text = str(value)
    if "\n" in text or "\r" in text:
        text = _LINE_BREAKS.sub(" ", text)
    return text.strip()


def _ris_date(published: str) -> str:
    """`2020-04-08` / `2020-04` / `2020` as RIS `YYYY/MM/DD/` (empty parts where unknown)."""
    parts = published.split("-") + ["", ""]
    return f"{parts[0]}/{parts[1]}/{parts[2]}/"


def ris_fields(record: dict, study_keys: dict[int, list[str]]) -> dict:
    """The rispy fields of one reference as the JSON API serves it (README "RIS export").

    ``study_keys``: for each study id, its registration identifiers; the reference gets a
    `KW  - study:<identifier>` for each identifier of each study it reports.
    """
    ris_type = RIS_TYPES.get(record["type"], "GEN")
    out: dict = {"type_of_reference": ris_type, "id": str(record["id"]), "title": record["title"]}
    authors = [ris_author(a) for a in record["authors"]]
    if any(authors):
        out["authors"] = [a for a in authors if a]
    published = record.get("published")
    if ris_type in _DATE_IN_PY:
        # citation-js reads DA of a dataset as the date accessed, and not at all on a newspaper
        # article: the date goes in PY (the older RIS form, which Zotero reads too)
        if published or record.get("year") is not None:
            out["year"] = _ris_date(published) if published else str(record["year"])
    else:
        if record.get("year") is not None:
            out["year"] = str(record["year"])
        if published:
            out["date"] = _ris_date(published)
    source = record.get("source")
    if source:
        tag = _SOURCE_TAG.get(ris_type, "T2")
        out[{"T2": "secondary_title", "DB": "name_of_database", "PB": "publisher"}[tag]] = source
    for name, key in (("volume", "volume"), ("issue", "number")):
        if record.get(name) and ris_type not in _NO_VOLUME:
            out[key] = record[name]
    if record.get("pages") and ris_type not in _NO_PAGES:
        match = _PAGE_RANGE.match(record["pages"])
        if match:
            out["start_page"], out["end_page"] = match.groups()
        else:
            out["start_page"] = record["pages"]
    for name, key in (("abstract", "abstract"), ("doi", "doi")):
        if record.get(name):
            out[key] = record[name]
    if record.get("url"):
        out["urls"] = [record["url"]]
    if ris_type == "DBASE":
        if record.get("registration_id"):
            out["accession_number"] = record["registration_id"]
    elif record.get("pmid") and "name_of_database" in out:
        # a preprint's DB is its server: `AN` there would be a PMID "in medRxiv". Zotero reads `M2` into
        # Extra, where "PMID: n" is its own convention; citation-js drops M2 (and AN) of a manuscript.
        out["extra"] = f"PMID: {record['pmid']}"
    elif record.get("pmid"):
        out["accession_number"] = record["pmid"]
        out["name_of_database"] = "PubMed"
    if ris_type in _M3_TYPES:
        out["type_of_work"] = record["type_label"]
    keywords = [STUDY_KEYWORD + key for study in record["study_ids"] for key in study_keys.get(study, [])]
    out["keywords"] = list(dict.fromkeys(keywords)) + [RESULTS_KEYWORDS[bool(record["has_results"])]]
    if record.get("notes"):
        out["notes"] = [record["notes"]]
    return {key: ([_one_line(v) for v in value] if isinstance(value, list) else _one_line(value))
            for key, value in out.items()}


class _RisWriter(rispy.RisWriter):
    NEWLINE = "\r\n"  # the RIS specification's line ending
    DEFAULT_MAPPING = {**rispy.TAG_KEY_MAPPING, "M2": "extra"}  # rispy has no key for M2

    def set_header(self, count: int) -> str:
        return ""  # rispy numbers records ("1.") by default; reference managers expect none


_RIS_WRITER = _RisWriter()


def write_records(records: list[dict], study_keys: dict[int, list[str]]) -> str:
    """RIS records, each ending with `ER  - ` and a blank line."""
    return "".join(_RIS_WRITER.formats([ris_fields(r, study_keys)]) + "\r\n" for r in records)
