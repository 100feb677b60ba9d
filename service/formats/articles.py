"""Article lists as CSV (format `articles-csv`), recognised by their headers:

* ``regcovid-publications``: the regCOVID PubMed publication lists (SOURCES.md, articles/): one row per
  (article, trial) pair, the abstract as PubMed XML fragments, no DOI and no authors;
* ``litcovid-doc-info``: the LitCovid/PubTator3 document list: PMID, PMCID, DOI, authors, title, abstract,
  journal, date;
* ``direcct-trn-hits``: DIRECCT's CORD-19/PubMed search hits: DOI, PMID, title and the trial identifiers
  found in the article's text (no abstract, no date).

Rows of one article (the same DOI or PMID) anywhere in the file make one reference whose trial identifiers
are those of all its rows, so the whole file is read before its first record is handed on (these files are
a few MB). The trial identifiers a file names go into `notes`, in a sentence saying where they come from:
linking finds them there (`domain.linking`), a curator sees why a link was made, and they survive
re-import. Those notes lines are *added* to a reference's stored notes (``AddedLines``), never put in
their place: an article listed in two files keeps the trials of both, and notes written by hand stay.

A value a file does not really know (the type of an article in a file without types, DIRECCT's titles cut
from full texts) is ``KeepStored``: it fills an empty value, never overwrites one.

A row needs a DOI or PMID, and an article a title (from any of its rows); without them it is rejected.
Text damaged by a wrong decoding (UTF-8 read as Windows-1252: ``Â©``, ``1Â·54``, ``â€‰``) is repaired with
ftfy's ``fix_encoding``, which changes nothing in text that is not damaged.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import ftfy

from ..identifiers import canonical
from . import AddedLines, ArticleRecord, FormatError, KeepStored, Row, RowError, fields
from .reading import csv_rows

# Layout name -> header names that identify it (compared case-insensitively, spaces trimmed).
LAYOUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("regcovid-publications", ("pmid", "ArticleType", "Title", "PubDate", "Journal", "Article_Abstract",
                               "nct_id", "pub_source")),
    ("litcovid-doc-info", ("pmid", "pmcid", "date", "journal", "doi", "authors", "title_e", "abstract",
                           "litcovid_title_e", "litcovid_journal")),
    ("direcct-trn-hits", ("id", "id_hits", "pub_types", "doi", "pm_id", "cord_id", "url", "title")),
)

# PubMed publication type -> reference type, first match wins; any other article is a journal article.
PUBMED_TYPES: tuple[tuple[str, str], ...] = (
    ("retraction of publication", "retraction_notice"),
    ("expression of concern", "expression_of_concern"),
    ("preprint", "preprint"),
    ("published erratum", "other"),
    ("letter", "letter"),
)
# DOIs of preprint servers: bioRxiv/medRxiv (10.1101/ followed by a date or a bare number; Cold Spring
# Harbor's journals use letters there), Research Square, SSRN, Preprints.org, ChemRxiv.
PREPRINT_DOI = re.compile(r"10\.(?:1101/(?:\d{4}\.\d{2}\.\d{2}\.)?\d{6,}(?:v\d+)?$|21203/rs\.|2139/ssrn\."
                          r"|20944/preprints|26434/chemrxiv)")
# Where the regCOVID row's trial link comes from (`pub_source`, upstream README).
REGCOVID_SOURCES = {
    "registry": "ClinicalTrials.gov records listing this article",
    "abstract": "ClinicalTrials.gov identifiers in this article's PubMed record",
}
REGCOVID_OTHER = "ClinicalTrials.gov records regCOVID links to this article"
DIRECCT_HITS = "Trial identifiers found in the text by DIRECCT"
# A file that does not tell an article's type: journal article, unless the register knows better.
DEFAULT_TYPE = KeepStored("journal_article")
_DOI = re.compile(r"10\.\d{4,9}/\S+")
_SPACES = re.compile(r"[ \t\r\n\u00a0]+")


def _fold(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).lower()


def read_header(header: list[str]) -> tuple[dict[str, int], str]:
    """Column index of each header name (folded) and the layout's name; FormatError naming the layouts
    known when the header is none of them."""
    folded = [_fold(h) for h in header]
    where: dict[str, int] = {}
    for index, name in enumerate(folded):
        where.setdefault(name, index)
    for layout, signature in LAYOUTS:
        if all(_fold(s) in where for s in signature):
            return where, layout
    shown = ", ".join(repr(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
    known = "; ".join(f"{layout} ({', '.join(signature)})" for layout, signature in LAYOUTS)
    raise FormatError(f"The header ({shown}) is not an article list this format reads. It knows these "
                      f"layouts, each told by its columns: {known}.")


@dataclass
class _Article:
    """One article being gathered from the rows that name it."""

    line: int
    values: dict[str, Any]
    trials: dict[str, list[str]] = field(default_factory=dict)  # notes sentence -> identifiers
    extra: list[str] = field(default_factory=list)                # other notes lines
    merged: int = 0                                               # rows merged into this one

    def keys(self) -> list[tuple[str, str]]:
        return [(k, self.values[k]) for k in ("doi", "pmid") if self.values.get(k)]

    def merge(self, other: _Article) -> None:
        self.merged += 1
        for name, value in other.values.items():
            if self.values.get(name) in (None, "", []) and value not in (None, "", []):
                self.values[name] = value
        for sentence, identifiers in other.trials.items():
            mine = self.trials.setdefault(sentence, [])
            mine.extend(i for i in identifiers if i not in mine)
        self.extra.extend(line for line in other.extra if line not in self.extra)

    def record(self) -> ArticleRecord:
        if not self.values.get("title"):
            raise RowError("has no title" + (" (nor has any other row of this article)." if self.merged
                                             else "."))
        lines = [f"{sentence}: {', '.join(ids)}." for sentence, ids in self.trials.items() if ids]
        lines += self.extra
        reference = dict(self.values)
        reference["notes"] = AddedLines("\n".join(lines)) if lines else None
        fields.check_limits(reference)
        return ArticleRecord(reference=reference)


def parse(stream: TextIO, info: dict) -> Iterator[Row]:
    items: list[Row | _Article] = []
    by_key: dict[tuple[str, str], _Article] = {}
    found: dict = {}

    def on_header(header: list[str]) -> None:
        found["where"], info["layout"] = read_header(header)
        found["mapper"] = MAPPERS[info["layout"]]

    for line, row, error in csv_rows(stream, on_header):
        if error is not None:
            items.append(Row(line, error=error))
            continue
        try:
            article = found["mapper"](_getter(row, found["where"]), line)
        except RowError as error:
            items.append(Row(line, error=str(error)))
            continue
        keys = article.keys()
        earlier = next((by_key[k] for k in keys if k in by_key), None)
        if earlier is not None:
            earlier.merge(article)
        else:
            items.append(article)
        for key in keys:
            by_key.setdefault(key, earlier or article)
    for item in items:
        if isinstance(item, Row):
            yield item
            continue
        try:
            yield Row(item.line, record=item.record())
        except RowError as error:
            yield Row(item.line, error=str(error))


def _getter(row: list[str], where: dict[str, int]) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        index = where.get(_fold(name))
        if index is None:
            return None
        value = row[index]
        return ftfy.fix_encoding(value) if value and not value.isascii() else value

    return get


# -- the three layouts ------------------------------------------------------------------------------------


def _regcovid(get, line: int) -> _Article:
    pmid = _pmid(get("pmid"))
    title = _title(get("Title"))
    written = [fields.one_line(t) for t in (get("ArticleType") or "").split("|")]
    publication_types = list(dict.fromkeys(t for t in written if t and t.upper() != "NA"))
    kinds = [t.lower() for t in publication_types]
    kind = next((ours for theirs, ours in PUBMED_TYPES if theirs in kinds), "journal_article")
    published = fields.partial_date(get("PubDate"))
    values = {"type": kind, "title": title, "abstract": pubmed_abstract(get("Article_Abstract")),
              "source": fields.one_line(get("Journal")), "published": published,
              "year": int(published[:4]) if published else None, "pmid": pmid,
              "publication_types": publication_types}
    article = _Article(line, values)
    _require_key(article)
    trial = fields.one_line(get("nct_id"))
    if trial:
        sentence = REGCOVID_SOURCES.get((fields.one_line(get("pub_source")) or "").lower(), REGCOVID_OTHER)
        article.trials[sentence] = [_trial_id(trial)]
    return article


def _litcovid(get, line: int) -> _Article:
    title = fields.one_line(get("title_e"))
    if not title or title.startswith("[Not Available]"):
        # PubMed's placeholder for an article without an English title; LitCovid's copy may have one.
        title = fields.one_line(get("litcovid_title_e"))
    title = title if title and not title.startswith("[Not Available]") else None
    journal = fields.one_line(get("journal"))
    if not journal or ";" in journal or "doi:" in journal.lower():
        journal = fields.one_line(get("litcovid_journal")) or journal  # `journal` is a whole citation
    published = _yyyymmdd(get("date")) or fields.partial_date(get("year"))
    values = {"type": DEFAULT_TYPE, "title": title, "authors": authors(get("authors")),
              "abstract": fields.text(get("abstract")), "source": journal, "published": published,
              "year": int(published[:4]) if published else None, "doi": _doi(get("doi")),
              "pmid": _pmid(get("pmid"))}
    article = _Article(line, values)
    _require_key(article)
    pmcid = fields.one_line(get("pmcid"))
    if pmcid and re.fullmatch(r"(?:PMC)?\d{1,10}", pmcid, re.I):
        article.extra.append(f"PMCID: PMC{pmcid.upper().removeprefix('PMC')}")
    return article


def _direcct(get, line: int) -> _Article:
    title = _title(get("title"))
    doi = _doi(get("doi"))
    urls = [fields.url(u) for u in (get("url") or "").split(";")]
    values = {"type": "preprint" if doi and PREPRINT_DOI.match(doi) else DEFAULT_TYPE,
              "title": KeepStored(title) if title else None, "doi": doi, "pmid": _pmid(get("pm_id")),
              "url": next((u for u in urls if u), None)}
    article = _Article(line, values)
    _require_key(article)
    hits = python_list(get("id_hits"), "id_hits")
    article.trials[DIRECCT_HITS] = list(dict.fromkeys(_trial_id(h) for h in hits if fields.one_line(h)))
    cord = fields.one_line(get("cord_id"))
    if cord:
        article.extra.append(f"CORD-19 uid: {cord}")
    return article


MAPPERS: dict[str, Callable[[Callable[[str], str | None], int], _Article]] = {
    "regcovid-publications": _regcovid, "litcovid-doc-info": _litcovid, "direcct-trn-hits": _direcct}


# -- values -----------------------------------------------------------------------------------------------


def _title(value: str | None) -> str | None:
    """The title; a row without one may be merged with another row of the same article that has one."""
    return fields.one_line(value)


def _require_key(article: _Article) -> None:
    if not article.keys():
        title = article.values.get("title")
        raise RowError(f"{title[:80]!r} has no DOI or PMID to identify it." if title
                       else "has no title, no DOI and no PMID.")


def _pmid(value: str | None) -> str | None:
    raw = fields.one_line(value)
    if not raw:
        return None
    if not re.fullmatch(r"\d{1,12}", raw):
        raise RowError(f"PMID {raw!r} is not a number.")
    return raw.lstrip("0") or None


def _doi(value: str | None) -> str | None:
    found = _DOI.search(fields.one_line(value) or "")
    return found.group(0).rstrip(".").lower() if found else None


def _yyyymmdd(value: str | None) -> str | None:
    raw = fields.one_line(value)
    if raw and re.fullmatch(r"\d{8}", raw):
        day = fields.date(raw)
        return day.isoformat() if day else fields.partial_date(raw[:4])
    return fields.partial_date(raw) if raw and re.fullmatch(r"\d{4}", raw) else None


def _trial_id(value: str) -> str:
    """The canonical form of a registration identifier, or the identifier as written."""
    written = fields.one_line(value) or ""
    known = canonical(written)
    return known[0] if known else written


def python_list(value: str | None, column: str) -> list[str]:
    """A Python-list string (``"['NCT04412304', 'NCT04327206']"``) read with ``ast.literal_eval`` (a
    literal, never code); RowError when it is something else."""
    raw = (value or "").strip()
    if fields.text(raw) is None:
        return []
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = None
    if not isinstance(parsed, list | tuple) or not all(isinstance(v, str) for v in parsed):
        raise RowError(f"`{column}` is not a list of strings: {raw[:80]!r}.")
    return list(parsed)


def authors(value: str | None) -> list[str]:
    """Authors written `Surname AB, Surname CD, ` or as a Python-list string `['Surname AB', ...]`."""
    raw = (value or "").strip()
    names = python_list(raw, "authors") if raw.startswith("[") else raw.split(",")
    return [name for name in (fields.one_line(n) for n in names) if name]


def pubmed_abstract(value: str | None) -> str | None:
    """A PubMed abstract given as XML fragments (`<AbstractText Label="METHODS">...</AbstractText>`,
    `<CopyrightInformation>`, inline `<i> <b> <sub> <sup>`) as text: one paragraph per section, led by its
    label ("METHODS: ..."); the copyright statement left out. Text that is not XML is cleaned as text."""
    raw = (value or "").strip()
    if "<" not in raw:
        return fields.text(raw)
    try:
        # Wrapped in one element: a DOCTYPE (and so any entity declaration) cannot occur.
        root = ET.fromstring(f"<abstract>{raw}</abstract>")
    except ET.ParseError:
        return fields.text(raw)
    parts = [_SPACES.sub(" ", root.text or "").strip()]
    for element in root:
        if element.tag != "CopyrightInformation":
            body = _SPACES.sub(" ", "".join(element.itertext())).strip()
            label = (element.get("Label") or "").strip()
            parts.append(f"{label}: {body}" if label and body else body)
        parts.append(_SPACES.sub(" ", element.tail or "").strip())
    return "\n".join(p for p in parts if p) or None
