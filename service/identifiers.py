"""Trial registration numbers (DOMAIN.md §3.5): canonical patterns per registry, normalising written forms and
finding every registration identifier in free text (stdlib only: no Flask, no database).

* ``normalise(identifier)``  -- the canonical written form of one identifier (other strings: cleaned up);
* ``registry_of(canonical)`` -- the registry code whose canonical pattern matches, or None;
* ``canonical(identifier)``  -- ``(canonical form, registry code)`` for one identifier in any written form;
* ``find_identifiers(text)`` -- every identifier in free text, canonical, with its registry and offsets.

Extraction is one compiled alternation whose quantifiers are all bounded, tried left to right, so scanning
stays linear in the length of the text; the few checks that need context (bare ``NL`` numbers, UMIN ``C``
numbers, bare UTNs) look up context words found once per text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

# registry code -> strict pattern of the canonical form (DOMAIN.md §3.5), tried in order.
CANONICAL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (code, re.compile(pattern))
    for code, pattern in [
        ("ClinicalTrials.gov", r"NCT\d{8}"),
        ("ChiCTR", r"ChiCTR\d{10}|ChiCTR-[A-Z]{3,5}-\d{8}"),
        ("ISRCTN", r"ISRCTN\d{8}"),
        ("CTIS", r"\d{4}-5\d{5}-\d{2}-\d{2}"),
        ("EudraCT", r"\d{4}-\d{6}-\d{2}"),
        ("DRKS", r"DRKS\d{8}"),
        ("IRCT", r"IRCT\d{11,14}N\d{1,3}"),
        ("CTRI", r"CTRI/\d{4}/\d{2,3}/\d{6}"),
        ("ANZCTR", r"ACTRN\d{14}"),
        ("CRiS", r"KCT\d{7}"),
        ("UMIN-CTR", r"UMIN\d{9}"),
        ("jRCT", r"jRCT[a-z]?\d{9,10}"),
        ("JapicCTI", r"JapicCTI-\d{6}"),
        ("TCTR", r"TCTR20\d{9}"),
        ("PACTR", r"PACTR\d{15,16}"),
        ("NTR", r"NTR\d{1,5}|NL\d{1,5}|NL-OMON\d{5}"),
        ("ReBEC", r"RBR-[0-9a-z]{6,8}"),
        ("RPCEC", r"RPCEC\d{8}"),
        ("SLCTR", r"SLCTR/\d{4}/\d{3}"),
        ("LBCTR", r"LBCTR20\d{8}"),
        ("REPEC", r"PER-\d{3}-\d{2}"),
        ("ITMCTR", r"ITMCTR\d{10}"),
        ("UTN", r"U1111-\d{4}-\d{4}"),
    ]
]

# Prefixes whose letters keep a fixed mixed case in the canonical form.
_MIXED_CASE = {"CHICTR": "ChiCTR", "JRCT": "jRCT", "JAPICCTI": "JapicCTI"}
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u202f]+")
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")

# Text preparation for scanning: one code point for one code point, so offsets in the prepared text are
# offsets in the original. Unicode dashes and minus signs become "-", odd, non-breaking and zero-width
# spaces " ".
_DASH_CHARS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SPACE_CHARS = "\u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200C)) + "\u202f\u205f\u3000\ufeff"
_PREPARE = {**{ord(c): "-" for c in _DASH_CHARS}, **{ord(c): " " for c in _SPACE_CHARS}}


def _prepare(text: str) -> str:
    return text.translate(_PREPARE)


@dataclass(frozen=True)
class Found:
    """One registration identifier found in a text: its canonical form, registry and where it was written."""

    identifier: str
    registry: str
    start: int
    end: int
    written: str


# ----------------------------------------------------------------------------------------------------------
# Tolerant extraction patterns (matched case-insensitively on prepared text; ASCII classes only).

# Separator between a prefix and its digits: up to three ASCII punctuation marks or blanks, no line break
# ("NCT#04280705", "ISRCTN, 15281137", "(ISRCTN): 99840264").
_S = r"[ \t!-/:-@\[-`{-~]{0,3}"
_S1 = r"[ \t:#/._\-]{1,3}"                                # ... between the groups of CTRI and SLCTR numbers
_SEP = rf"{_S}(?:(?:ID|No|Nr|Number)\.?{_S})?"            # ... optionally with a label: "DRKS ID 00003498"
_END = r"(?![A-Za-z0-9])"                                 # no match inside a longer alphanumeric run
_END_NUM = r"(?![A-Za-z0-9]|[.,/\-]\d)"                   # ... nor a number that goes on ("NL26560.042.09")
_E = r"(?:[ \t]?-[ \t]?|[ \t])"                           # separator between EudraCT/CTIS groups
_H = r"[ \t]?-?[ \t]?"                                    # ... around the infix of old ChiCTR numbers
_CTX_WINDOW = 200                                         # characters looked at on either side for context

# Context words; the acronyms only in capitals and not inside a word ("NTR" is in "coNTRol").
_NL_CONTEXT = re.compile(r"netherlands|dutch|nederland|trial\W{0,3}regist|trialregister"
                         r"|(?<![A-Za-z])(?-i:NTR|OMON|CCMO)", re.I)
_UMIN_CONTEXT = re.compile(r"(?<![A-Za-z])(?-i:UMIN|JPRN)")
_UTN_CONTEXT = re.compile(r"(?<![A-Za-z])(?-i:UTN)(?![A-Za-z])|universal\W{0,3}trial", re.I)
_EUDRACT_LABEL = re.compile(r"(?:EUDRACT|EUCTR|CTIS)\W{0,3}$", re.I)

Check = Callable[[str, int, int, dict], bool]  # (prepared text, start, end, memo per text) -> keep the match?


@dataclass(frozen=True)
class _Rule:
    registry: str
    pattern: str                                          # with capturing groups used by ``build``
    build: Callable[[tuple[str | None, ...]], str]        # canonical form from the pattern's groups
    check: Check | None = None                            # extra test of a match
    alone: bool = False                                   # a lone identifier passes without ``check``


def _context(pattern: re.Pattern[str]) -> Check:
    """Keep a match only if ``pattern`` occurs within _CTX_WINDOW characters of it. The first matches search
    their window; once those searches add up to the length of the text, the occurrences in the whole text are
    found once (in ``memo``) and looked up by bisection, so many matches in one text stay linear."""
    def check(text: str, start: int, end: int, memo: dict) -> bool:
        places = memo.get(pattern)
        if places is None:
            searched = memo.get((pattern, "searched"), 0) + 2 * _CTX_WINDOW + end - start
            if searched <= len(text):
                memo[(pattern, "searched")] = searched
                window = (max(0, start - _CTX_WINDOW), min(len(text), end + _CTX_WINDOW))
                return pattern.search(text, *window) is not None
            places = memo[pattern] = [m.start() for m in pattern.finditer(text)]
        i = bisect.bisect_left(places, start - _CTX_WINDOW)
        return i < len(places) and places[i] <= end + _CTX_WINDOW
    return check


def _not_in_doi(text: str, start: int, end: int, memo: dict) -> bool:
    """A bare EudraCT/CTIS number glued to the text before it by '/', '.' or '-' is part of a DOI or a longer
    code, unless what precedes is the registry's own label ("EudraCT-2020-001500-41")."""
    if start == 0 or text[start - 1] not in "/.-":
        return True
    return _EUDRACT_LABEL.search(text, max(0, start - 12), start) is not None


def _prefixed(prefix: str) -> Callable[[tuple[str | None, ...]], str]:
    return lambda g: prefix + "".join(part for part in g if part)


def _joined(prefix: str, separator: str) -> Callable[[tuple[str | None, ...]], str]:
    return lambda g: prefix + separator.join(part for part in g if part)


_RULES: list[_Rule] = [
    _Rule("ClinicalTrials.gov", rf"NCT{_SEP}(0\d{{7}}){_END}", _prefixed("NCT")),
    # ClinicalTrials.gov itself resolves NCT numbers written without their leading zero ("NCT4357535").
    _Rule("ClinicalTrials.gov", rf"NCT{_SEP}([1-9]\d{{6}}){_END}", _prefixed("NCT0")),
    _Rule("ChiCTR", rf"ChiCTR{_SEP}(\d{{10}}){_END}", _prefixed("ChiCTR")),
    # The old infix glued or after a dash, never after a bare space ("ChiCTR NCT04280705" is two identifiers).
    _Rule("ChiCTR", rf"ChiCTR(?:[ \t]?-[ \t]?)?([A-Z]{{3,5}}){_H}(\d{{8}}){_END}",
          lambda g: f"ChiCTR-{g[0].upper()}-{g[1]}"),
    _Rule("ISRCTN", rf"ISRCTN{_SEP}(\d{{8}}){_END}", _prefixed("ISRCTN")),
    # CTIS before EudraCT: same start, told apart by the "5" and the fourth group.
    _Rule("CTIS", rf"(?:(?:CTIS|EUCTR)-?)?(20[2-3]\d){_E}(5\d{{5}}){_E}(\d{{2}}){_E}(\d{{2}}){_END_NUM}",
          _joined("", "-"), _not_in_doi),
    _Rule("EudraCT", rf"(?:EUCTR|EudraCT)-?(20[0-3]\d){_E}?(0\d{{5}}){_E}?(\d{{2}})"
                     rf"(?:-(?-i:[A-Z]{{2}}|3RD))?{_END_NUM}", _joined("", "-")),
    # A bare EudraCT number needs its separators; the scan has already consumed IRCT/PACTR/CTIS numbers whole.
    _Rule("EudraCT", rf"(20[0-3]\d){_E}(0\d{{5}}){_E}(\d{{2}})(?:-(?-i:[A-Z]{{2}}|3RD))?{_END_NUM}",
          _joined("", "-"), _not_in_doi),
    _Rule("DRKS", rf"DRKS{_SEP}(?:DRKS{_S})?(000\d{{5}}){_END}", _prefixed("DRKS")),
    _Rule("IRCT", rf"IRCT{_SEP}(\d{{11,14}})N(\d{{1,3}}){_END}", lambda g: f"IRCT{g[0]}N{g[1]}"),
    _Rule("CTRI", rf"CTRI{_SEP}(20\d{{2}}){_S1}(\d{{2,3}}){_S1}(\d{{6}}){_END_NUM}",
          _joined("CTRI/", "/")),
    _Rule("ANZCTR", rf"(?:ACTRN|ANZCTR){_SEP}(12\d{{12}})p?{_END}", _prefixed("ACTRN")),
    _Rule("CRiS", rf"KCT{_SEP}(00\d{{5}}){_END}", _prefixed("KCT")),
    _Rule("UMIN-CTR", rf"(?:JPRN{_S})?UMIN(?:{_S}CTR)?{_SEP}(000\d{{6}}){_END}", _prefixed("UMIN")),
    # The old UMIN form "C000000433" only near "UMIN" or "JPRN" ("ZINC000052955" fails the word boundary).
    _Rule("UMIN-CTR", rf"(?:JPRN{_S})?(?-i:C)(0000\d{{5}}){_END}", _prefixed("UMIN"),
          _context(_UMIN_CONTEXT)),
    _Rule("jRCT", rf"(?:JPRN{_S})?jRCT{_S}(?:([A-Z]){_S})?(\d{{9,10}}){_END}",
          lambda g: "jRCT" + (g[0] or "").lower() + g[1]),
    _Rule("JapicCTI", rf"(?:JPRN{_S})?Japic{_S}CTI{_S}(\d{{6}}){_END}", _prefixed("JapicCTI-")),
    _Rule("TCTR", rf"TCTR{_SEP}(20\d{{9}}){_END}", _prefixed("TCTR")),
    _Rule("PACTR", rf"PACTR{_SEP}(20\d{{13,14}}){_END}", _prefixed("PACTR")),
    _Rule("NTR", rf"NL{_S}OMON{_S}(\d{{5}}){_END_NUM}", _prefixed("NL-OMON")),
    _Rule("NTR", rf"NTR{_SEP}(\d{{2,5}}){_END_NUM}", _prefixed("NTR")),
    # A bare NL number only near words about the Dutch register; in capitals, not in a longer number.
    _Rule("NTR", rf"(?-i:NL)[ :#_\-]{{0,2}}(\d{{3,5}}){_END_NUM}", _prefixed("NL"), _context(_NL_CONTEXT),
          alone=True),
    _Rule("ReBEC", rf"RBR(?:-|[ \t]?[\-:#._/]?[ \t]?(?=[0-9A-Z]{{0,7}}\d))([0-9A-Z]{{6,8}}){_END}",
          lambda g: "RBR-" + g[0].lower()),
    _Rule("RPCEC", rf"RPCEC{_SEP}(\d{{8}}){_END}", _prefixed("RPCEC")),
    _Rule("SLCTR", rf"SLCTR{_SEP}(20\d{{2}}){_S1}(\d{{3}}){_END_NUM}", _joined("SLCTR/", "/")),
    _Rule("LBCTR", rf"LBCTR{_SEP}(20\d{{8}}){_END}", _prefixed("LBCTR")),
    # REPEC only hyphenated and in capitals ("per 100 000" is prose).
    _Rule("REPEC", rf"(?-i:PER)-(\d{{3}})-(\d{{2}}){_END_NUM}", _joined("PER-", "-")),
    _Rule("ITMCTR", rf"ITMCTR{_SEP}(\d{{10}}){_END}", _prefixed("ITMCTR")),
    _Rule("UTN", rf"U[ \t]?1111-(\d{{4}})-(\d{{4}}){_END_NUM}", _joined("U1111-", "-")),
    # A UTN without its "U" only next to "UTN" or "Universal Trial Number".
    _Rule("UTN", rf"1111-(\d{{4}})-(\d{{4}}){_END_NUM}", _joined("U1111-", "-"),
          _context(_UTN_CONTEXT)),
]

_FLAGS = re.IGNORECASE | re.ASCII
_RULE_PATTERNS = [re.compile(rule.pattern, _FLAGS) for rule in _RULES]
# One alternation, each rule in a named group (the named group closes last, so ``lastgroup`` names the rule).
# Identifiers start at a word boundary, or straight after ".gov" ("ClinicalTrials.govNCT04371744").
_SCANNER = re.compile(r"(?:(?<![A-Za-z0-9])|(?<=\.gov))(?:"
                      + "|".join(f"(?P<r{i}>{rule.pattern})" for i, rule in enumerate(_RULES)) + ")", _FLAGS)
# Where each rule's own groups sit among the scanner's groups: (number of the first, how many).
_GROUPS = [(_SCANNER.groupindex[f"r{i}"] + 1, pattern.groups) for i, pattern in enumerate(_RULE_PATTERNS)]


def find_identifiers(text: str) -> list[Found]:
    """Every registration identifier in ``text`` in order of appearance, once per canonical identifier
    (its first occurrence)."""
    prepared = _prepare(text)
    found: list[Found] = []
    seen: set[str] = set()
    memo: dict = {}
    position = 0
    while (m := _SCANNER.search(prepared, position)) is not None:
        index = int(m.lastgroup[1:])
        rule, (first, count) = _RULES[index], _GROUPS[index]
        start, end = m.span()
        if rule.check is not None and not rule.check(prepared, start, end, memo):
            position = start + 1  # rejected for want of context: look again from the next character
            continue
        position = end
        identifier = rule.build(m.groups()[first - 1:first - 1 + count])
        if identifier not in seen:
            seen.add(identifier)
            found.append(Found(identifier, rule.registry, start, end, text[start:end]))
    return found


def canonical(identifier: str) -> tuple[str, str] | None:
    """``(canonical form, registry code)`` for one identifier in any written form ("nct 04280705",
    "EUCTR2020-001909-22-FR", "JPRN-UMIN000040341", "ChiCTR-2000030261"), or None if it is not one.
    Idempotent: ``canonical(canonical(x)[0]) == canonical(x)``."""
    text = _prepare(identifier).strip()
    for rule, pattern in zip(_RULES, _RULE_PATTERNS, strict=True):
        m = pattern.fullmatch(text)
        if m and (rule.alone or rule.check is None or rule.check(text, 0, len(text), {})):
            return rule.build(m.groups()), rule.registry
    cleaned = _clean(text)
    registry = registry_of(cleaned)
    return (cleaned, registry) if registry else None


def _clean(identifier: str) -> str:
    """Case, spaces, dashes and ICTRP prefixes/suffixes of an identifier of no known written form."""
    text = _DASHES.sub("-", _SPACES.sub("", identifier.strip()))
    upper = text.upper()
    if upper.startswith("JPRN-"):
        text, upper = text[5:], upper[5:]
    if upper.startswith("EUCTR"):
        text = re.sub(r"-(?:[A-Z]{2}|3RD)$", "", upper[5:].lstrip("-"))
        return text
    for folded, written in _MIXED_CASE.items():
        if upper.startswith(folded):
            rest = text[len(folded):]
            if folded == "JRCT":
                return written + rest.lower()
            return written + rest.upper()
    if upper.startswith("RBR"):
        return "RBR" + text[3:].lower()
    return upper


def normalise(identifier: str) -> str:
    """The canonical written form of ``identifier`` (case, spaces, dashes, separators, ICTRP prefixes and
    suffixes); a string of no known form is only cleaned up (case, spaces, dashes, prefixes)."""
    found = canonical(identifier)
    return found[0] if found else _clean(identifier)


def registry_of(identifier: str) -> str | None:
    """The registry code whose canonical pattern matches ``identifier`` (already normalised), or None."""
    for code, pattern in CANONICAL_PATTERNS:
        if pattern.fullmatch(identifier):
            return code
    return None



# Registries whose record pages have a stable address built from the identifier alone; every other one
# (ChiCTR's pages are keyed by an internal number) is linked to its record in the WHO ICTRP search
# portal, which indexes every primary registry.
_RECORD_PAGES = {
    "ClinicalTrials.gov": "https://clinicaltrials.gov/study/{id}",
    "ISRCTN": "https://www.isrctn.com/{id}",
    "EudraCT": "https://www.clinicaltrialsregister.eu/ctr-search/search?query={id}",
    "DRKS": "https://drks.de/search/en/trial/{id}",
    "ANZCTR": "https://www.anzctr.org.au/{id}.aspx",
}
ICTRP_RECORD = "https://trialsearch.who.int/Trial2.aspx?TrialID={id}"


def registry_record_url(identifier: str | None) -> str | None:
    """The web page of the registry record ``identifier`` (any written form) names: the registry's own
    page where its address follows from the identifier, else the WHO ICTRP record; None for a string
    that is no registration identifier."""
    found = canonical(identifier or "")
    if found is None:
        return None
    ident, registry = found
    template = _RECORD_PAGES.get(registry, ICTRP_RECORD)
    return template.format(id=quote(ident, safe=""))
