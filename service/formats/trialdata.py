"""What trial registries say of a trial's status, in the register's terms: recruitment status, phase,
target size, countries, sponsor and dates, each read from one source value by the rules below, and the
randomisation a title states.

Every function is pure and answers ``None`` when the value states nothing the register can use (a
placeholder, an unknown spelling, a status that says nothing of recruitment): the caller then makes no
claim. The tables hold every spelling of the real data set (SOURCES.md: the WHO export and workbook,
TrialsTracker, DIRECCT's ICTRP list and registry scrape, AACT, ClinicalTrials.gov's enums), lower-cased.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

import pycountry

from ..validation import EARLIEST, LATEST, within_range
from . import STRUCTURED, TABLE, TEXT, Claim, fields

# -- recruitment status ------------------------------------------------------------------------------------

# A registry's status spelling (lower-cased, spaces collapsed) -> the RECRUITMENT_STATUS label. Left out on
# purpose: EU CTR's `Authorised` ("recruitment may be ongoing or finished"), `GB - no longer in EU/EEA`,
# CTRI's `Not Applicable`, NTR's `Recruitment status not public`, the expanded-access statuses
# (`Available`, `Approved for marketing`...), all of which say nothing of recruitment.
RECRUITMENT_STATUSES: dict[str, str] = {
    # WHO ICTRP, TrialsTracker, DIRECCT's ICTRP list
    "recruiting": "Recruiting", "not recruiting": "Not recruiting",
    # ClinicalTrials.gov (API v2 enums and AACT's display text) and the registries that copy it
    "not yet recruiting": "Not yet recruiting", "not_yet_recruiting": "Not yet recruiting",
    "enrolling by invitation": "Enrolling by invitation",
    "enrolling_by_invitation": "Enrolling by invitation",
    "active, not recruiting": "Active, not recruiting", "active_not_recruiting": "Active, not recruiting",
    "suspended": "Suspended", "terminated": "Terminated", "completed": "Completed", "withdrawn": "Withdrawn",
    "unknown": "Unknown", "unknown status": "Unknown",
    # ANZCTR, PACTR, SLCTR, RPCEC, LBCTR, jRCT, TCTR, CRiS
    "stopped early": "Terminated", "stopped early/ terminated": "Terminated", "pending": "Not yet recruiting",
    "complete": "Completed", "closed to recruitment,follow-up continuing": "Active, not recruiting",
    "pending (not yet recruiting)": "Not yet recruiting", "completed (has results)": "Completed",
    "completed (no results)": "Completed", "terminated (halted prematurely)": "Terminated",
    # CTRI
    "open to recruitment": "Recruiting", "closed to recruitment of participants": "Active, not recruiting",
    "other (terminated)": "Terminated",
    # ChiCTR
    "suspending": "Suspended",
    # DRKS
    "recruiting ongoing": "Recruiting", "recruiting planned": "Not yet recruiting",
    "recruiting complete, follow-up complete": "Completed",
    "recruiting complete, follow-up continuing": "Active, not recruiting",
    "recruiting stopped after recruiting started": "Terminated",
    "recruiting suspended on temporary hold": "Suspended",
    # EU CTR (one status per member state; see eu_status)
    "ongoing": "Recruiting", "prematurely ended": "Terminated", "temporarily halted": "Suspended",
    "restarted": "Recruiting",
    # IRCT
    "recruitment complete": "Active, not recruiting",
    # ISRCTN (Ongoing above), NTR
    "stopped": "Terminated", "open for patient inclusion": "Recruiting", "planned": "Not yet recruiting",
    "inclusion stopped, follow up": "Active, not recruiting", "stopped, trial finished": "Completed",
    # UMIN-CTR, JapicCTI
    "open public recruiting": "Recruiting", "preinitiation": "Not yet recruiting",
    "no longer recruiting": "Active, not recruiting", "main results already published": "Completed",
    "progressing": "Recruiting",
    # REPEC
    "in enrollment": "Recruiting", "enrollment closed": "Active, not recruiting",
    "enrollment stopped": "Terminated", "without starting enrollment": "Not yet recruiting",
}
# EU CTR's member-state statuses, from the most to the least advanced: a trial ongoing in one state is
# recruiting (or may be) as a whole; one completed everywhere is completed.
EU_ORDER = ("Recruiting", "Suspended", "Terminated", "Completed")


def _fold(value: str | None) -> str:
    return " ".join((value or "").replace("<br>", " ").lower().split())


@functools.lru_cache(maxsize=1 << 14)
def recruitment_status(value: str | None) -> str | None:
    """The RECRUITMENT_STATUS label a registry's status spelling states; None when it states none."""
    folded = _fold(value)
    if folded.startswith("[") and folded.endswith("]"):
        return eu_status(re.findall(r"'([^']*)'", value or ""))
    return RECRUITMENT_STATUSES.get(folded)


def eu_status(states: list[str]) -> str | None:
    """One status for an EU CTR trial from its member states' (DIRECCT's scrape writes a list): the most
    advanced-in-recruitment of those that say something (`Ongoing` beats `Completed`)."""
    found = {RECRUITMENT_STATUSES.get(_fold(s)) for s in states} - {None}
    return next((label for label in EU_ORDER if label in found), None)


# -- phase ------------------------------------------------------------------------------------------------

ROMAN = {"0": 0, "i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}
# Whole spellings that are not numbers: -> label, or None for spellings that say no phase (ChiCTR's
# `Retrospective study` and `New Treatment Measure Clinical Study`, JPRN's `Not selected`...).
PHASE_WORDS: dict[str, str | None] = {
    "n/a": "Not applicable", "na": "Not applicable", "not applicable": "Not applicable",
    "early phase 1": "Early phase 1", "early_phase1": "Early phase 1",
    "post marketing surveillance": "Phase 4",
    "retrospective study": None, "new treatment measure clinical study": None, "not selected": None,
    "diagnostic new technique clincal study": None, "not specified": None,
}
CTGOV_PHASES = {"EARLY_PHASE1": 0, "PHASE1": 1, "PHASE2": 2, "PHASE3": 3, "PHASE4": 4, "NA": None}
_EU_PHASE = re.compile(r"\(phase (i{1,3}|iv)\)\s*:\s*(yes|no)?", re.I)


def _label(numbers: list[int]) -> str | None:
    numbers = sorted(set(numbers))
    if numbers == [0]:
        return "Early phase 1"
    numbers = [n for n in numbers if n]
    if len(numbers) == 1:
        return f"Phase {numbers[0]}"
    if len(numbers) == 2 and numbers[1] == numbers[0] + 1 and numbers[0] in (1, 2):
        return f"Phase {numbers[0]}/{numbers[1]}"
    return None  # `Phase 3/Phase 4` and other spans the vocabulary has no value for


@functools.lru_cache(maxsize=1 << 14)
def phase(value: str | None) -> str | None:
    """The PHASE label of a registry's phase text: `Phase 2/Phase 3`, `2-3`, `II-III`, `Phase II`,
    `Phase-1`, `0` (phase 0: Early phase 1), `N/A`, EU CTR's "Human pharmacology (Phase I): no
    Therapeutic exploratory (Phase II): yes ..." (the phases marked yes); None when it states none."""
    if _fold(value or "") in ("", "n/a", "na") and (value or "").strip():
        return "Not applicable"  # `N/A` is a placeholder elsewhere, but in a phase column it says one
    raw = fields.one_line(value)
    if not raw:
        return None
    if _EU_PHASE.search(raw):
        marked = [ROMAN[m.group(1).lower()] for m in _EU_PHASE.finditer(raw)
                  if (m.group(2) or "").lower() == "yes"]
        return _label(marked) if marked else None
    folded = _fold(raw)
    if folded in PHASE_WORDS:
        return PHASE_WORDS[folded]
    # Excel turned `1-2` into 1 February: the workbook reader wrote it back as `1-2` (xlsx.cell_text).
    tokens = re.split(r"[\s/-]+", re.sub(r"phase|\(exploratory trials\)", " ", folded).strip(" /-"))
    numbers = []
    for token in tokens:
        number = ROMAN.get(token) if token not in ("", "a", "b") else None
        if number is None and token[-1:] in ("a", "b"):
            number = ROMAN.get(token[:-1])
        if number is None:
            return None
        numbers.append(number)
    return _label(numbers) if numbers else None


def ctgov_phase(phases: list[Any] | None) -> str | None:
    """The PHASE label of ClinicalTrials.gov's `phases` list (`["PHASE2", "PHASE3"]`, `["NA"]`)."""
    if not phases or not all(isinstance(p, str) and p in CTGOV_PHASES for p in phases):
        return None
    if phases == ["NA"]:
        return "Not applicable"
    return _label([CTGOV_PHASES[p] for p in phases if CTGOV_PHASES[p] is not None])


# -- target size ------------------------------------------------------------------------------------------

_GROUP = re.compile(r":\s*(\d+)\s*(?:;|$)")


def target_size(value: Any) -> tuple[int, str] | None:
    """(participants, how read) from a number, or ChiCTR's groups (`Case series:100;`, `Experimental
    group:30;Control group:30;`: their sum). 0 is a placeholder (DIRECCT writes it for unknown targets):
    None."""
    if isinstance(value, int):
        return (value, "number") if value > 0 else None
    raw = fields.one_line(value)
    if not raw:
        return None
    if re.fullmatch(r"\d{1,9}", raw):
        return (int(raw), "number") if int(raw) > 0 else None
    groups = _GROUP.findall(raw)
    if groups and re.fullmatch(r"(?:[^:;]*:\s*\d+\s*;?\s*)+", raw):
        total = sum(int(g) for g in groups)
        return (total, f"sum of {len(groups)} groups") if total > 0 else None
    return None


# -- countries --------------------------------------------------------------------------------------------

# Spellings pycountry does not know (folded: lower case, accents and punctuation dropped) -> alpha-2.
COUNTRY_ALIASES = {
    "turkey": "TR", "iran": "IR", "russia": "RU", "south korea": "KR", "korea south": "KR",
    "republic of korea": "KR", "korea republic of": "KR", "north korea": "KP", "korea north": "KP",
    "democratic peoples republic of korea": "KP", "the netherlands": "NL", "nederland": "NL", "holland": "NL",
    "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB", "uk": "GB",
    "united kindgdom": "GB", "usa": "US", "us": "US", "uae": "AE", "vietnam": "VN", "laos": "LA",
    "syria": "SY", "brunei": "BN", "cape verde": "CV", "swaziland": "SZ", "macedonia": "MK",
    "the former yugoslav republic of macedonia": "MK", "macedonia the former yugoslav republic of": "MK",
    "palestinian territory": "PS", "palestine": "PS", "czech republic": "CZ", "czech rep": "CZ",
    "poland rep": "PL", "peru rep": "PE", "hungaria": "HU", "taiwan": "TW", "hong kong": "HK", "macao": "MO",
    "macau": "MO", "democratic republic of congo": "CD", "democratic republic of the congo": "CD",
    "congo democratic republic": "CD", "congo the democratic republic of the": "CD", "ivory coast": "CI",
    "libyan arab jamahiriya": "LY", "micronesia": "FM", "micronesia federated states of": "FM",
    "holy see vatican city state": "VA", "vatican": "VA", "virgin islands british": "VG",
    "virgin islands us": "VI", "falkland islands": "FK", "saint martin french part": "MF",
    "sint maarten dutch part": "SX", "bonaire saint eustatius and saba": "BQ", "reunion": "RE",
    "the arab republic of egypt": "EG", "the peoples republic of china": "CN",
    "peoples republic of china": "CN",
    "south georgia and the south sandwich is": "GS", "heard island and mcdonald islands": "HM",
    "saint barthelemy": "BL", "saint helena": "SH", "curacao": "CW", "aland islands": "AX",
    "moldova": "MD", "tanzania": "TZ",
    "bolivia": "BO", "venezuela": "VE", "china": "CN", "chian": "CN",
}
# Parts of a comma-separated list that only finish the name before them (`Korea, Republic of`).
_SPLIT_TAILS = re.compile(r"^(?:republic of|republic|islamic republic of|province of china|north|south|"
                          r"british|"
                          r"u\.?s\.?|federated states of|the former yugoslav republic of|"
                          r"the democratic republic of the|democratic republic)$", re.I)


def _fold_country(name: str) -> str:
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z ]+", " ", name.lower().replace("'", ""))
    return " ".join(name.split())


@cache
def _country_index() -> dict[str, str]:
    index = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            name = getattr(country, attr, None)
            if name:
                index[_fold_country(name)] = country.alpha_2
    index.update(COUNTRY_ALIASES)
    return index


def country_code(name: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name as registries write it; None for regions (`Europe`,
    `Asia(except Japan)`), placeholders and names no table knows (never a fuzzy guess)."""
    folded = _fold_country(name)
    index = _country_index()
    if folded in index:
        return index[folded]
    if folded.startswith("the ") and folded[4:] in index:
        return index[folded[4:]]
    return None


def countries(value: str | None, separator: str) -> tuple[list[str], list[str]] | None:
    """(codes in order of first mention, names not recognised) of a list of country names separated by
    ``separator`` (`;` in the WHO export, `,` in TrialsTracker and DIRECCT, where `Korea, Republic of` is
    rejoined); None when no name is recognised."""
    raw = fields.one_line(value)
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(separator)]
    names: list[str] = []
    for part in parts:
        if names and (_SPLIT_TAILS.match(part) or (separator == "," and country_code(part) is None
                                                   and country_code(f"{names[-1]}, {part}"))):
            names[-1] = f"{names[-1]}, {part}"
        elif part:
            names.append(part)
    codes: list[str] = []
    unknown: list[str] = []
    for name in names:
        code = country_code(name)
        if code is None and separator != "," and "," in name:
            # `Japan,Asia(except Japan),Australia,Europe` in the WHO export: a JPRN comma list
            found = countries(name, ",")
            if found:
                codes.extend(c for c in found[0] if c not in codes)
                unknown.extend(found[1])
                continue
        if code is None:
            if fields.text(name) is not None:
                unknown.append(name)
        elif code not in codes:
            codes.append(code)
    return (codes, unknown) if codes else None


# -- dates ------------------------------------------------------------------------------------------------

_MONTH_YEAR = re.compile(r"([A-Za-z]+)\.?,? (\d{4})")


@functools.lru_cache(maxsize=1 << 14)
def day(value: str | None) -> str | None:
    """An ISO day from the forms registries write (fields.date), else None."""
    found = fields.date(value)
    return found.isoformat() if found else None


_US_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s.*)?")


def us_day(value: str | None) -> str | None:
    """An ISO day from a WHO export date (`4/15/2020 4:11:24 PM`: month first; the workbook's cells are
    ISO already), else None."""
    raw = fields.one_line(value)
    if not raw:
        return None
    m = _US_DAY.fullmatch(raw)
    if m:
        month, day_, year = (int(g) for g in m.groups())
        if month > 12:  # written day first after all
            month, day_ = day_, month
        try:
            found = dt.date(year, month, day_)
        except ValueError:
            return None
        return found.isoformat() if within_range(found) else None  # outside the register's range: none
    return day(raw[:10])


def _in_range(year: str) -> bool:
    """A month of this year lies in the register's date range (outside it: no date)."""
    return EARLIEST.year <= int(year) <= LATEST.year


@functools.lru_cache(maxsize=1 << 14)
def day_or_month(value: str | None) -> tuple[str, str] | None:
    """(ISO day, precision) from a date as registries write a start: a full date ("day"), or a month
    (`April 2020`, `2020-04`, `May-20`: its first day, "month")."""
    raw = fields.one_line(value)
    if not raw:
        return None
    full = fields.date(raw)
    if full:
        return full.isoformat(), "day"
    m = _MONTH_YEAR.fullmatch(raw)
    if m and m.group(1).lower() in fields.MONTHS and _in_range(m.group(2)):
        return f"{m.group(2)}-{fields.MONTHS[m.group(1).lower()]:02d}-01", "month"
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", raw)
    if m and 1 <= int(m.group(2)) <= 12 and _in_range(m.group(1)):
        return f"{m.group(1)}-{int(m.group(2)):02d}-01", "month"
    return None


# -- titles -----------------------------------------------------------------------------------------------

_NOT_RANDOM = re.compile(r"\b(?:non|not|un|quasi)[- ]?randomi[sz](?:ed|ation)\b|\bnonrandomi[sz]ed\b|"
                         r"\bsingle[- ](?:arm|group)\b", re.I)
_RANDOM = re.compile(r"\brandomi[sz](?:ed|ation)\b|\brandomly\b|\bRCT\b", re.I)


def title_assignment(title: str | None) -> tuple[str, str, str] | None:
    """(assignment, rule, span) a trial's title states: Non-randomised for `non-randomised`,
    `nonrandomized`, `single-arm`, `quasi-randomised`; Randomised for `randomised`/`randomized`/`RCT` where
    no such word is; None when neither, or both (`randomized ... single-arm extension`)."""
    text = fields.one_line(title) or ""
    negative = _NOT_RANDOM.search(text)
    rest = _NOT_RANDOM.sub(" ", text)
    positive = _RANDOM.search(rest)
    if negative and positive:
        return None
    if negative:
        return "Non-randomised", f"title says {negative.group(0).lower()}", negative.group(0)
    if positive:
        return "Randomised", "title says randomised", positive.group(0)
    return None


# -- claims ---------------------------------------------------------------------------------------------
# A date's claim has no span: its value is the day written; a month's says what was written.

def put(claims: dict[str, Claim], name: str, claim: Claim | None) -> None:
    """Keep ``claim`` for field ``name`` unless the record already states it at least as strongly (one
    claim per field and record: the strongest, then the first)."""
    if claim is None:
        return
    current = claims.get(name)
    if current is None or claim.strength > current.strength:
        claims[name] = claim


def status_claims(get: Callable[[str], str | None], columns: dict[str, str], *,
                  country_separator: str, names: dict[str, str] | None = None) -> dict[str, Claim]:
    """The status claims of an ICTRP-style row. ``columns`` maps the claim's source fields
    (``recruitment_status``, ``phase``, ``target_size``, ``countries``, ``sponsor``, ``registered``,
    ``registered3``, ``start_date``, ``primary_completion_date``, ``record_updated``) to the header name
    the file uses; ``get`` reads a field's cleaned text, by the caller's name for it (``names``: the
    caller's name -> the source field)."""
    claims: dict[str, Claim] = {}
    own = {logical: name for name, logical in (names or {}).items()}

    def raw(name: str) -> str | None:
        return get(own.get(name, name)) if name in columns else None

    status = raw("recruitment_status")
    if status and recruitment_status(status):
        put(claims, "recruitment_status", Claim(recruitment_status(status), columns["recruitment_status"],
                                                TABLE, span=status))
    text = raw("phase")
    if text and phase(text):
        put(claims, "phase", Claim(phase(text), columns["phase"], TABLE, span=_short(text)))
    size = target_size(raw("target_size"))
    if size:
        put(claims, "target_size", Claim(size[0], columns["target_size"],
                                         STRUCTURED if size[1] == "number" else TABLE,
                                         rule=None if size[1] == "number" else size[1],
                                         span=_short(raw("target_size"))))
    found = countries(raw("countries"), country_separator)
    if found:
        put(claims, "countries", Claim(found[0], columns["countries"], TABLE,
                                       rule=f"not recognised: {'; '.join(found[1])}" if found[1] else None,
                                       span=_short(raw("countries"))))
    sponsor = fields.one_line(raw("sponsor"))
    if sponsor and sponsor.lower() != "no sponsor name given":
        put(claims, "sponsor", Claim(sponsor, columns["sponsor"], STRUCTURED))
    for name in ("registered", "registered3"):
        when = day(raw(name))
        if when:
            put(claims, "registered", Claim(when, columns[name], STRUCTURED))
    start = day_or_month(raw("start_date"))
    if start:
        put(claims, "start_date", Claim(start[0], columns["start_date"], STRUCTURED,
                                        rule="first day of the month given" if start[1] == "month" else None,
                                        span=raw("start_date") if start[1] == "month" else None))
    for name in ("primary_completion_date", "record_updated"):
        when = day(raw(name))
        if when:
            put(claims, name, Claim(when, columns[name], STRUCTURED))
    return claims


def title_claim(titles: list[tuple[str, str | None]]) -> Claim | None:
    """The assignment claim of the first title (``(column, text)``, in order of preference) stating one."""
    for column, title in titles:
        found = title_assignment(title)
        if found:
            return Claim(found[0], column, TEXT, rule=found[1], span=found[2])
    return None


def _short(value: str | None, limit: int = 120) -> str | None:
    text = fields.one_line(value)
    return text if not text or len(text) <= limit else text[: limit - 1] + "…"
