"""Trial registration numbers: canonical patterns per registry and normalising written forms (stdlib only)."""

from __future__ import annotations

import re

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


def normalise(identifier: str) -> str:
    """The canonical written form of ``identifier`` (case, spaces, dashes, ICTRP prefixes/suffixes)."""
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


def registry_of(identifier: str) -> str | None:
    """The registry code whose canonical pattern matches ``identifier`` (already normalised), or None."""
    for code, pattern in CANONICAL_PATTERNS:
        if pattern.fullmatch(identifier):
            return code
    return None


def matching_key(identifier: str) -> str:
    """The case-insensitive key under which an identifier is unique and looked up."""
    return normalise(identifier).upper()
