"""Cleaning single values read from files: text, missing-value placeholders, dates, and the limits the
register's columns put on them."""

from __future__ import annotations

import datetime as dt
import functools
import html
import re

import ftfy

from ..validation import EARLIEST, LATEST, within_range
from . import RowError

MISSING = {"", "na", "n/a", "none", "null", "not available", "no results", "no country given",
           "no status given", "nan"}
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
_SPACES = re.compile(r"[ \t\u00a0]+")
# What makes `text` do more than strip a value's ends: markup, an entity, a line break, a tab, a no-break
# space or a run of spaces.
_UNCLEAN = re.compile(r"[<&\r\n\t\u00a0]|  ")
MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], 1)}
MONTHS.update({name[:3]: i for name, i in list(MONTHS.items())})

# Column limits of the reference table (models.Reference) and of a study name.
LIMITS = {"title": 5000, "source": 500, "volume": 50, "issue": 50, "pages": 50, "doi": 300, "pmid": 12,
          "url": 2000, "registration_id": 100, "abstract": 100_000, "notes": 10_000}


# Short values repeat (statuses, phases, countries, dates): their cleaning is remembered, up to this many.
SHORT, REMEMBERED = 120, 1 << 14


def text(value: str | None) -> str | None:
    """A value with mojibake repaired, markup, HTML entities and stray spacing removed; None when it is a
    missing-value placeholder (`NA`, `None`, `Not Available`, ...)."""
    if value is None:
        return None
    if len(value) <= SHORT:
        return _short_text(value)
    return _text(value)


def _text(value: str) -> str | None:
    if not value.isascii():
        # UTF-8 once decoded as Windows-1252 or Mac Roman (`GS-5734â„¢`, `coronavirusâ€“infected`), as the
        # registries' exports carry it: only that repair (ftfy's `fix_encoding`), on non-ASCII cells only.
        value = ftfy.fix_encoding(value)
    if _UNCLEAN.search(value) is None:
        # Nothing to clean inside (most cells): only the ends can change, as the general path would.
        cleaned = value.strip()
        return None if cleaned.lower() in MISSING else cleaned
    cleaned = _BR.sub("\n", value)
    if "<" in cleaned:
        cleaned = _TAG.sub(" ", cleaned)
    if "&" in cleaned:
        cleaned = html.unescape(cleaned)
    lines = [_SPACES.sub(" ", line).strip() for line in cleaned.replace("\r", "\n").split("\n")]
    cleaned = "\n".join(line for line in lines if line)
    if cleaned.lower() in MISSING:
        return None
    return cleaned


_short_text = functools.lru_cache(maxsize=REMEMBERED)(_text)


def one_line(value: str | None) -> str | None:
    if value is not None and len(value) <= SHORT:
        return _short_line(value)
    cleaned = text(value)
    return " ".join(cleaned.split()) if cleaned else None


@functools.lru_cache(maxsize=REMEMBERED)
def _short_line(value: str) -> str | None:
    cleaned = _text(value)
    return " ".join(cleaned.split()) if cleaned else None


@functools.lru_cache(maxsize=REMEMBERED)
def date(value: str | None) -> dt.date | None:
    """A day from the forms registries write: ISO, DD/MM/YYYY, YYYYMMDD, "14 April 2020",
    "April 1, 2020"; None when missing or not a full date."""
    raw = one_line(value)
    if not raw:
        return None
    for pattern, order in ((r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?", "ymd"),
                           (r"(\d{1,2})/(\d{1,2})/(\d{4})", "dmy"),
                           (r"(\d{4})(\d{2})(\d{2})", "ymd"),
                           (r"(\d{4})/(\d{1,2})/(\d{1,2})/?", "ymd")):
        m = re.fullmatch(pattern, raw)
        if m:
            parts = dict(zip(order, (int(g) for g in m.groups()), strict=True))
            return _day(parts["y"], parts["m"], parts["d"])
    m = re.fullmatch(r"(\d{1,2}) ([A-Za-z]+),? (\d{4})", raw) or None
    if m:
        month = MONTHS.get(m.group(2).lower())
        return _day(int(m.group(3)), month, int(m.group(1))) if month else None
    m = re.fullmatch(r"([A-Za-z]+) (\d{1,2}),? (\d{4})", raw)
    if m:
        month = MONTHS.get(m.group(1).lower())
        return _day(int(m.group(3)), month, int(m.group(2))) if month else None
    return None


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        found = dt.date(year, month, day)
    except ValueError:
        return None
    return found if within_range(found) else None  # outside the register's range: no date


def partial_date(value: str | None) -> str | None:
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD` at the precision written (RIS `2020/03/15/`, `2020/03//`,
    CT.gov `2020-03`); None when there is no year."""
    raw = one_line(value)
    if not raw:
        return None
    m = re.match(r"(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?", raw)
    if not m or not EARLIEST.year <= int(m.group(1)) <= LATEST.year:
        return None  # outside the register's date range: no date
    year, month, day = m.group(1), m.group(2), m.group(3)
    if month and 1 <= int(month) <= 12:
        if day and _day(int(year), int(month), int(day)):
            return f"{year}-{int(month):02d}-{int(day):02d}"
        return f"{year}-{int(month):02d}"
    return year


def check_limits(values: dict) -> None:
    """RowError naming the first value longer than its column allows."""
    for name, limit in LIMITS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            raise RowError(f"`{name}` is {len(value)} characters long; at most {limit} fit.")


def url(value: str | None) -> str | None:
    cleaned = one_line(value)
    if cleaned and re.match(r"https?://\S+$", cleaned):
        return cleaned
    return None
