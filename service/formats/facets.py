"""Mapping what registries say about a study onto the register's four facets (VOCABULARIES.md §Mapping).

Every rule is explicit and tested (tests/test_facet_mapping.py); whatever no rule recognises is `Unclear`,
never a guess. ICTRP's free text (``Study type``, ``Study design``) goes through keyword rules;
ClinicalTrials.gov's structured enums map one to one.
"""

from __future__ import annotations

import re

from ..vocabularies import UNCLEAR

# ICTRP `Study type` (lower-cased, spaces collapsed) -> (study_type, study_aim). Registries put aims
# ("Prevention", "Treatment study", "Diagnostic test") in this column as often as types.
ICTRP_STUDY_TYPES: dict[str, tuple[str, str]] = {
    "interventional": ("Interventional", UNCLEAR),
    "interventional study": ("Interventional", UNCLEAR),
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
    "other": ("Other", UNCLEAR),
}

# Keyword rules over `Study design` text, first match wins. Phrases like "Cross over: no" are removed
# before matching (EU CTR writes every option with yes/no).
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
    (r"non[ -]?randomi[sz]|randomi[sz]ed: ?no\b|randomi[sz]ation: ?no\b|not randomi[sz]ed", "Non-randomised"),
    (r"randomi[sz]|allocation: ?random", "Randomised"),
    (r"allocation: ?n/?a\b", "Not applicable"),
]
# "Primary purpose: X" in CT.gov-derived design text, and CT.gov's primaryPurpose enum.
PURPOSES: dict[str, str] = {
    "treatment": "Treatment and Management",
    "supportive care": "Treatment and Management",
    "supportive_care": "Treatment and Management",
    "prevention": "Prevention",
    "diagnostic": "Diagnosis",
    "screening": "Diagnosis",
    "health services research": "Health Services and Policy",
    "health_services_research": "Health Services and Policy",
    "basic science": "Other",
    "basic_science": "Other",
    "other": "Other",
}
# TrialsTracker's `study_category` -> study_aim (only the categories that say the aim).
TRIALSTRACKER_CATEGORIES: dict[str, str] = {
    "prognosis": "Prognosis",
    "diagnostics": "Diagnosis",
    "drug (chemoprophylaxis)": "Prevention",
    "clinical presentation (epidemiology)": "Epidemiology",
    "health system": "Health Services and Policy",
}

_NEGATED = re.compile(r"[a-z][a-z /()-]{0,40}?:\s*no\b")
_PURPOSE = re.compile(r"primary purpose:\s*([a-z_ ]+?)\s*(?:[.,;]|$)")
_MARKUP = re.compile(r"<[^>]{0,20}>")


def _clean(text: str | None) -> str:
    return " ".join(_MARKUP.sub(" ", text or "").lower().split())


def ictrp_facets(study_type: str | None, design: str | None, category: str | None = None) -> dict[str, str]:
    """The four facets of an ICTRP record from its `Study type`, `Study design` and (TrialsTracker)
    `study_category` text."""
    kind, aim = ICTRP_STUDY_TYPES.get(_clean(study_type), (UNCLEAR, UNCLEAR))
    text = _clean(design)
    assignment = _first(ASSIGNMENT_RULES, text)
    positive = _NEGATED.sub(" ", text)
    study_design = _first(DESIGN_RULES, positive)
    purpose = _PURPOSE.search(text)
    if purpose and aim == UNCLEAR:
        aim = PURPOSES.get(purpose.group(1).strip(), UNCLEAR)
    if aim == UNCLEAR and category:
        aim = TRIALSTRACKER_CATEGORIES.get(_clean(category), UNCLEAR)
    if kind == "Observational" and assignment == UNCLEAR:
        assignment = "Not applicable"
    return {"study_type": kind, "study_aim": aim, "study_design": study_design,
            "intervention_assignment": assignment}


def _first(rules: list[tuple[str, str]], text: str) -> str:
    for pattern, value in rules:
        if re.search(pattern, text):
            return value
    return UNCLEAR


# ClinicalTrials.gov API v2 enums (VOCABULARIES.md lists the first four maps).
CTGOV_STUDY_TYPES = {"INTERVENTIONAL": "Interventional", "OBSERVATIONAL": "Observational",
                     "EXPANDED_ACCESS": "Other"}
CTGOV_ALLOCATIONS = {"RANDOMIZED": "Randomised", "NON_RANDOMIZED": "Non-randomised", "NA": "Not applicable"}
CTGOV_MODELS = {"PARALLEL": "Parallel/Crossover", "CROSSOVER": "Parallel/Crossover",
                "SINGLE_GROUP": "Single arm", "FACTORIAL": "Factorial"}
CTGOV_OBSERVATIONAL_MODELS = {"COHORT": "Cohort", "CASE_CONTROL": "Case-control", "CASE_ONLY": "Case series"}


def ctgov_facets(design: dict) -> dict[str, str]:
    """The four facets of a ClinicalTrials.gov study from its `protocolSection.designModule`."""
    info = design.get("designInfo") or {}
    kind = CTGOV_STUDY_TYPES.get(design.get("studyType") or "", UNCLEAR)
    aim = PURPOSES.get((info.get("primaryPurpose") or "").lower(), UNCLEAR)
    if kind == "Observational":
        study_design = CTGOV_OBSERVATIONAL_MODELS.get(info.get("observationalModel") or "", UNCLEAR)
        if study_design == UNCLEAR and "CROSS_SECTIONAL" in (info.get("timePerspective") or ""):
            study_design = "Cross-sectional"
        assignment = "Not applicable"
    else:
        study_design = CTGOV_MODELS.get(info.get("interventionModel") or "", UNCLEAR)
        assignment = CTGOV_ALLOCATIONS.get(info.get("allocation") or "", UNCLEAR)
    return {"study_type": kind, "study_aim": aim, "study_design": study_design,
            "intervention_assignment": assignment}
