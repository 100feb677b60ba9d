"""RIS (DOMAIN.md §3.3) read with rispy, one record at a time so large files stream and every record
keeps the line it starts on. Each record is an article (journal article, preprint, ...), linked to
studies automatically by the registration identifiers found in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TextIO

import rispy

from . import ArticleRecord, FormatError, Row, RowError, fields

_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
# RIS type -> reference type; `M3` (type of work) "preprint" also makes a preprint.
TYPES = {
    "JOUR": "journal_article", "JFULL": "journal_article", "EJOUR": "journal_article",
    "MGZN": "journal_article", "UNPB": "preprint", "INPR": "journal_pre_proof",
    "CONF": "conference_abstract", "CPAPER": "conference_abstract", "ABST": "conference_abstract",
    "NEWS": "press_release", "RPRT": "report", "GOVDOC": "report", "PCOMM": "letter",
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
    authors = [fields.one_line(a) for a in (record.get("authors") or record.get("first_authors") or [])]
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
    if accession and accession.isdigit():
        pmid = accession.lstrip("0") or None
    if pmid is None:
        for note in (record.get("notes") or []) + [record.get("note") or ""]:
            m = _PMID.search(note or "")
            if m:
                pmid = m.group(1).lstrip("0") or None
                break
    urls = [u for u in (record.get("urls") or []) if fields.url(u)]
    notes = "\n".join(n for n in (fields.text(n) for n in record.get("notes") or []) if n) or None
    reference = {
        "type": kind,
        "title": title,
        "authors": [a for a in authors if a],
        "abstract": fields.text(record.get("abstract") or record.get("notes_abstract")),
        "source": _first(record, "secondary_title", "journal_name", "alternate_title3",
                         "alternate_title2", "alternate_title1", "name_of_database"),
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
    fields.check_limits(reference)
    return ArticleRecord(reference=reference)


def _doi(value: str | None) -> str | None:
    if not value:
        return None
    m = re.search(r"10\.\d{4,9}/\S+", value)
    return m.group(0).rstrip(".").lower() if m else None
