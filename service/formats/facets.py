"""Mapping what registries say about a study onto the register's four facets (VOCABULARIES.md §Mapping),
as claims (formats.Claim): the value, the column it was read from, and how strongly it was stated.

Every rule is explicit and tested (tests/test_facet_mapping.py, tests/test_trial_claims.py); whatever no
rule recognises makes no claim (the facet stays `Unclear`), never a guess.

* ClinicalTrials.gov's enums map one to one (STRUCTURED).
* ICTRP's `Study type` maps by a table (TABLE); registries put aims there ("Prevention", "Treatment
  study", "Diagnostic test") as often as types.
* ICTRP's `Study design` is read in two passes. First its labelled fields, in every registry's spelling
  (`Allocation: Randomized`, `Randomization: Not randomized`, `Randomised: yes`, `Purpose: Prevention`,
  `Study design purpose: Diagnostic`, `Assignment: Single group`, `Intervention Model : Parallel`, ISRCTN's
  closing `(Treatment)`) map by tables (TABLE). Then keyword rules run over the words that are not such a
  field's value (TEXT), with free-text fields (`Randomization description: ...`, `Other design
  features: ...`, `Method of generating randomization sequence: ...`) and EU CTR's `...: no` options left
  out, so a description mentioning clusters or randomly drawn envelopes states no design.
* A record that contradicts itself (`Randomized: No ... Type: 2 or more arms, randomized`) claims neither.
* Designs follow the study type: an observational study (or a diagnostic or prognostic one) never claims
  an interventional design, an interventional one never an observational design (ChiCTR writes `Factorial`,
  `Single arm`, `Sequential` in the design of observational studies, and `Cohort study` in interventional
  ones: those say nothing); an observational study's assignment is `Not applicable`.
"""

from __future__ import annotations

import re

from ..vocabularies import UNCLEAR
from . import STRUCTURED, TABLE, TEXT, Claim

FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment")

# ICTRP `Study type` (lower-cased, spaces collapsed) -> (study_type, study_aim).
ICTRP_STUDY_TYPES: dict[str, tuple[str, str]] = {
    "interventional": ("Interventional", UNCLEAR),
    "interventional study": ("Interventional", UNCLEAR),
    "intervention": ("Interventional", UNCLEAR),
    "interventional clinical trial of medicinal product": ("Interventional", UNCLEAR),
    "treatment study": ("Interventional", "Treatment and Management"),
    "observational": ("Observational", UNCLEAR),
    "observational study": ("Observational", UNCLEAR),
    "observational [patient registry]": ("Observational", UNCLEAR),
    "observational non invasive": ("Observational", UNCLEAR),
    "epidemiological research": ("Observational", "Epidemiology"),
    "epidemilogical research": ("Observational", "Epidemiology"),
    "diagnostic test": ("Diagnostic", "Diagnosis"),
    "prognosis": ("Prognostic", "Prognosis"),
    "prognosis study": ("Prognostic", "Prognosis"),
    "prevention": (UNCLEAR, "Prevention"),
    "screening": (UNCLEAR, "Diagnosis"),
    "health services research": (UNCLEAR, "Health Services and Policy"),
    "health services reaserch": (UNCLEAR, "Health Services and Policy"),
    "basic science": ("Other", "Other"),
    "expanded access": ("Other", "Treatment and Management"),
    "others,meta-analysis etc": ("Other", UNCLEAR),
    "other": ("Other", UNCLEAR),
}

INTERVENTIONAL_DESIGNS = frozenset({"Parallel/Crossover", "Single arm", "Cluster", "Factorial",
                                    "Platform/Adaptive"})
OBSERVATIONAL_DESIGNS = frozenset({"Cohort", "Case-control", "Cross-sectional", "Case series"})
# Study types whose studies assign no intervention: no interventional design, no randomisation.
NOT_INTERVENTIONAL = frozenset({"Observational", "Diagnostic", "Prognostic"})

# A registry's purpose words (lower-cased) -> study_aim: CT.gov's `Primary purpose` (text and enum),
# ANZCTR/IRCT/RPCEC/LBCTR/CRIS `Purpose`, DRKS `Study design purpose`, ISRCTN's closing `(...)`, JPRN's
# `treatment purpose`.
PURPOSES: dict[str, str] = {
    "treatment": "Treatment and Management", "supportive care": "Treatment and Management",
    "supportive_care": "Treatment and Management", "supportive": "Treatment and Management",
    "prevention": "Prevention", "prophylaxis": "Prevention",
    "diagnostic": "Diagnosis", "diagnosis": "Diagnosis", "screening": "Diagnosis",
    "prognosis": "Prognosis",
    "health services research": "Health Services and Policy",
    "health service research": "Health Services and Policy",
    "health_services_research": "Health Services and Policy",
    "health care system": "Health Services and Policy",
    "health economics": "Health Services and Policy",
    "natural history": "Epidemiology",
    "basic science": "Other", "basic_science": "Other", "basic research/physiological study": "Other",
    "device feasibility": "Other", "device_feasibility": "Other",
    "educational / counselling / training": "Other",
    "education/guidance": "Other", "psychosocial": "Other", "quality of life": "Other", "other": "Other",
}

# Labelled fields of `Study design` text, by what they state. Values are matched after lower-casing.
ASSIGNMENT_KEYS = ("allocation", "randomization", "randomisation", "randomized", "randomised")
DESIGN_KEYS = ("assignment", "intervention model", "observational study model", "type", "selection",
               "duration")
PURPOSE_KEYS = ("primary purpose", "study design purpose", "purpose")
# Fields whose value is the registry's free text or states no facet: left out of the keyword pass.
OTHER_KEYS = ("randomization description", "blinding description", "other design features",
              "method of generating randomization sequence", "method of allocation concealment",
              "blinding and masking", "blinding/masking", "masking", "blinding", "control group", "control",
              "placebo", "type of endpoint", "time perspective", "timing", "group", "enrollment",
              "biospecimen retention", "if controlled, specify comparator, other medicinial product",
              "controlled", "open", "single blind", "double blind", "parallel group", "cross over", "other")
_KEYS = sorted(ASSIGNMENT_KEYS + DESIGN_KEYS + PURPOSE_KEYS + OTHER_KEYS, key=len, reverse=True)
_FIELD = re.compile(r"(?<![a-z])(" + "|".join(re.escape(k) for k in _KEYS) + r")\s*:", re.I)

# Labelled assignment values, first match wins.
ASSIGNMENT_VALUES: list[tuple[str, str]] = [
    (r"^(?:non|not|quasi)[ -]?randomi[sz]|^no\b|single arm", "Non-randomised"),
    (r"^n/?a\b", "Not applicable"),
    (r"randomi[sz]|^rct\b|^yes\b", "Randomised"),
]
# Labelled design values, first match wins (`Sequential`, `Other`, `Longitudinal` state none).
DESIGN_VALUES: list[tuple[str, str]] = [
    (r"factorial", "Factorial"),
    (r"cluster", "Cluster"),
    (r"^single\b|single[ -]?(?:group|arm)", "Single arm"),
    (r"parallel|cross[ -]?over|2 or more arms", "Parallel/Crossover"),
    (r"case[ -]?control", "Case-control"),
    (r"cross[ -]?sectional", "Cross-sectional"),
    (r"case[ -]?only|case series", "Case series"),
    (r"cohort", "Cohort"),
]
# Keyword rules over the rest of the design text, first match wins.
DESIGN_RULES: list[tuple[str, str]] = [
    (r"platform|adaptive", "Platform/Adaptive"),
    (r"factorial", "Factorial"),
    (r"cluster", "Cluster"),
    (r"single[ -]?(?:group|arm)", "Single arm"),
    (r"parallel|cross[ -]?over", "Parallel/Crossover"),
    (r"case[ -]control", "Case-control"),
    (r"cross[ -]?sectional", "Cross-sectional"),
    (r"case series|case[ -]only", "Case series"),
    (r"cohort", "Cohort"),
]
ASSIGNMENT_RULES: list[tuple[str, str]] = [
    (r"(?:non|not|quasi)[ -]?randomi[sz]|nonrandomi[sz]|single[ -]?arm", "Non-randomised"),
    (r"randomi[sz]|\brct\b", "Randomised"),
]
# Purpose stated in running text: ReBEC's "Clinical trial of treatment", "Prevention randomized
# controlled trial"; JPRN's "treatment purpose"; ChiCTR's "Diagnostic test for accuracy".
PURPOSE_RULES: list[tuple[str, str]] = [
    (r"\b(treatment|prevention|diagnostic|screening|prognosis) purpose\b", ""),
    (r"\btrial (?:of )?(treatment|prevention|diagnosis)\b", ""),
    (r"^(treatment|prevention) (?:clinical |randomi[sz]ed )?(?:controlled )?trial\b", ""),
    (r"^(diagnostic) test for accuracy\b", ""),
]

_NEGATED = re.compile(r"[a-z][a-z /()-]{0,40}?:\s*no\b")
_MARKUP = re.compile(r"<[^>]{0,20}>")
_CLOSING = re.compile(r"\(([a-z /]+)\)\s*$")


def _clean(text: str | None) -> str:
    return " ".join(_MARKUP.sub(" ", text or "").lower().split())


def _first(rules: list[tuple[str, str]], text: str) -> tuple[str, str] | None:
    for pattern, value in rules:
        m = re.search(pattern, text)
        if m:
            return value, m.group(0)
    return None


def _fields(text: str) -> tuple[list[tuple[str, str]], str]:
    """The labelled fields of design text (key, value) and the words outside them."""
    found = list(_FIELD.finditer(text))
    pairs = []
    for m, following in zip(found, [*found[1:], None], strict=False):
        end = following.start() if following else len(text)
        pairs.append((m.group(1).lower(), text[m.end():end].strip(" .;,")))
    return pairs, text[: found[0].start()] if found else text


def design_claims(kind: str, design: str | None, column: str = "Study design") -> dict[str, Claim]:
    """Claims of aim, design and assignment from ICTRP `Study design` text, for a study of type ``kind``."""
    text = _clean(design)
    claims: dict[str, Claim] = {}
    if not text or text in ("n/a", "not selected not selected"):
        return claims
    pairs, rest = _fields(text)
    assignments: dict[str, str] = {}
    for key, value in pairs:
        if key in ASSIGNMENT_KEYS:
            found = _first(ASSIGNMENT_VALUES, value)
            if found:
                assignments.setdefault(found[0], f"{key}: {value}"[:80])
        elif key in PURPOSE_KEYS and "study_aim" not in claims:
            aim = PURPOSES.get(value.strip())
            if aim:
                claims["study_aim"] = Claim(aim, column, TABLE, rule=f"{key} field", span=f"{key}: {value}")
        elif key in DESIGN_KEYS or (key in ("parallel group", "cross over") and value.startswith("yes")):
            found = _first(DESIGN_VALUES, value if key in DESIGN_KEYS else key)
            if found and _fits(kind, found[0]) and "study_design" not in claims:
                claims["study_design"] = Claim(found[0], column, TABLE, rule=f"{key} field",
                                               span=f"{key}: {value}"[:80])
            if key == "type":  # NTR's `Type: 2 or more arms, randomized`
                found = _first(ASSIGNMENT_RULES, value)
                if found:
                    assignments.setdefault(found[0], f"{key}: {value}"[:80])
    if len(assignments) == 1:
        (value, span), = assignments.items()
        claims["intervention_assignment"] = Claim(value, column, TABLE, rule="allocation field", span=span)
    closing = _CLOSING.search(text)
    if closing and "study_aim" not in claims and closing.group(1).strip() in PURPOSES:
        claims["study_aim"] = Claim(PURPOSES[closing.group(1).strip()], column, TABLE,
                                    rule="purpose in brackets at the end", span=closing.group(0))
    # The keyword pass: the words outside labelled fields.
    words = _NEGATED.sub(" ", rest)
    if "study_design" not in claims:
        for pattern, value in DESIGN_RULES:
            m = re.search(pattern, words)
            if m and _fits(kind, value):
                claims["study_design"] = Claim(value, column, TEXT, rule=f"design text says {m.group(0)}",
                                               span=m.group(0))
                break
    if "intervention_assignment" not in claims and not assignments:
        found = _first(ASSIGNMENT_RULES, words)
        if found:
            claims["intervention_assignment"] = Claim(found[0], column, TEXT,
                                                      rule=f"design text says {found[1]}", span=found[1])
    if "study_aim" not in claims:
        for pattern, _ in PURPOSE_RULES:
            m = re.search(pattern, text)
            if m and PURPOSES.get(m.group(1)):
                claims["study_aim"] = Claim(PURPOSES[m.group(1)], column, TEXT,
                                            rule=f"design text says {m.group(0)}", span=m.group(0))
                break
    return claims


def _fits(kind: str, design: str) -> bool:
    """Whether a study of type ``kind`` can have ``design`` (see the module's rules)."""
    if design in INTERVENTIONAL_DESIGNS:
        return kind not in NOT_INTERVENTIONAL and kind != "Other"
    if design in OBSERVATIONAL_DESIGNS:
        return kind != "Interventional"
    return True


def ictrp_claims(study_type: str | None, design: str | None, category: str | None = None, *,
                 type_column: str = "Study type", design_column: str = "Study design",
                 category_column: str = "study_category") -> dict[str, Claim]:
    """The facet claims of an ICTRP record from its `Study type`, `Study design` and (TrialsTracker)
    `study_category` text."""
    claims: dict[str, Claim] = {}
    written = _clean(study_type)
    kind, aim = ICTRP_STUDY_TYPES.get(written, (UNCLEAR, UNCLEAR))
    if kind != UNCLEAR:
        claims["study_type"] = Claim(kind, type_column, TABLE, span=study_type)
    if aim != UNCLEAR:
        claims["study_aim"] = Claim(aim, type_column, TABLE, rule="study type names the aim", span=study_type)
    for name, claim in design_claims(kind, design, design_column).items():
        if name not in claims:
            claims[name] = claim
    if "study_aim" not in claims and category:
        aim = TRIALSTRACKER_CATEGORIES.get(_clean(category))
        if aim:
            claims["study_aim"] = Claim(aim, category_column, TABLE,
                                        rule="TrialsTracker category names the aim",
                                        span=category)
    if kind in ("Observational",):
        claims["intervention_assignment"] = Claim("Not applicable", type_column, TABLE,
                                                  rule="an observational study assigns no intervention",
                                                  span=study_type)
    return claims


# TrialsTracker's `study_category` -> study_aim (only the categories that say the aim).
TRIALSTRACKER_CATEGORIES: dict[str, str] = {
    "prognosis": "Prognosis",
    "diagnostics": "Diagnosis",
    "drug (chemoprophylaxis)": "Prevention",
    "clinical presentation (epidemiology)": "Epidemiology",
    "health system": "Health Services and Policy",
}


def values(claims: dict[str, Claim]) -> dict[str, str]:
    """The four facet values the claims state, `Unclear` where none does."""
    return {name: claims[name].value if name in claims else UNCLEAR for name in FACETS}


def without_titles(claims: dict[str, Claim]) -> dict[str, Claim]:
    """The claims not read from a title: a record's own facets (``RegistryRecord.study``) come from its
    type and design fields only; the titles' claims are weighed with every source's (domain)."""
    return {name: claim for name, claim in claims.items() if not (claim.rule or "").startswith("title says")}


def ictrp_facets(study_type: str | None, design: str | None, category: str | None = None) -> dict[str, str]:
    """The four facets of an ICTRP record (the values of ``ictrp_claims``)."""
    return values(ictrp_claims(study_type, design, category))


# ClinicalTrials.gov API v2 enums (VOCABULARIES.md lists the first four maps).
CTGOV_STUDY_TYPES = {"INTERVENTIONAL": "Interventional", "OBSERVATIONAL": "Observational",
                     "EXPANDED_ACCESS": "Other"}
CTGOV_ALLOCATIONS = {"RANDOMIZED": "Randomised", "NON_RANDOMIZED": "Non-randomised", "NA": "Not applicable"}
CTGOV_MODELS = {"PARALLEL": "Parallel/Crossover", "CROSSOVER": "Parallel/Crossover",
                "SINGLE_GROUP": "Single arm", "FACTORIAL": "Factorial"}
CTGOV_OBSERVATIONAL_MODELS = {"COHORT": "Cohort", "CASE_CONTROL": "Case-control", "CASE_ONLY": "Case series"}


def ctgov_claims(design: dict, names: dict[str, str] | None = None) -> dict[str, Claim]:
    """The facet claims of a ClinicalTrials.gov study from its `protocolSection.designModule`; ``names``
    renames the JSON paths (`designModule.studyType`) to the columns of another layout (AACT)."""
    names = names or {}

    def path(name: str) -> str:
        return names.get(name, name)

    info = design.get("designInfo") if isinstance(design.get("designInfo"), dict) else {}
    claims: dict[str, Claim] = {}

    def enum(key: str, where: dict, table: dict, field: str, prefix: str) -> None:
        raw = where.get(key)
        if isinstance(raw, str) and table.get(raw.upper()):
            claims[field] = Claim(table[raw.upper()], path(f"{prefix}.{key}"), STRUCTURED, span=raw)

    enum("studyType", design, CTGOV_STUDY_TYPES, "study_type", "designModule")
    enum("primaryPurpose", info, {k.upper(): v for k, v in PURPOSES.items()}, "study_aim",
         "designModule.designInfo")
    kind = claims["study_type"].value if "study_type" in claims else UNCLEAR
    if kind == "Observational":
        enum("observationalModel", info, CTGOV_OBSERVATIONAL_MODELS, "study_design",
             "designModule.designInfo")
        if "study_design" not in claims and "CROSS_SECTIONAL" in str(info.get("timePerspective") or ""):
            claims["study_design"] = Claim("Cross-sectional", path("designModule.designInfo.timePerspective"),
                                           STRUCTURED, span=str(info.get("timePerspective")))
        claims["intervention_assignment"] = Claim("Not applicable", path("designModule.studyType"),
                                                  STRUCTURED,
                                                  rule="an observational study assigns no intervention",
                                                  span=design.get("studyType"))
    else:
        enum("interventionModel", info, CTGOV_MODELS, "study_design", "designModule.designInfo")
        enum("allocation", info, CTGOV_ALLOCATIONS, "intervention_assignment", "designModule.designInfo")
    return claims


def ctgov_facets(design: dict) -> dict[str, str]:
    """The four facets of a ClinicalTrials.gov study from its `protocolSection.designModule`."""
    return values(ctgov_claims(design))
