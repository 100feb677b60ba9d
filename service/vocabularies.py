"""The register's controlled vocabularies: facet values, reference types and registries, in display order."""

from __future__ import annotations

UNCLEAR = "Unclear"

STUDY_TYPE = {
    "Interventional": "Investigators assign participants to an intervention (a trial).",
    "Observational": "Participants are observed without an assigned intervention (cohort, ...).",
    "Diagnostic": "Evaluates the accuracy of a test or diagnostic strategy.",
    "Prognostic": "Identifies factors or models that predict outcomes.",
    "Qualitative": "Explores experiences, views or behaviour with qualitative methods.",
    "Modelling": "Projects outcomes with a mathematical or simulation model.",
    "Economic": "Compares costs and consequences of alternatives.",
    "Other": "A study type not covered by the other values.",
    UNCLEAR: "The records do not say clearly which type the study is.",
}

STUDY_AIM = {
    "Treatment and Management": "Treats the disease or manages patients who have it.",
    "Prevention": "Prevents infection or disease (vaccines, prophylaxis, public-health measures).",
    "Diagnosis": "Detects or screens for the disease.",
    "Prognosis": "Predicts the course or outcome of the disease.",
    "Epidemiology": "Describes the occurrence, spread or determinants of the disease.",
    "Health Services and Policy": "Studies the organisation, delivery or policy of care.",
    "Other": "An aim not covered by the other values.",
    UNCLEAR: "The records do not say clearly what the study aims at.",
}

STUDY_DESIGN = {
    "Parallel/Crossover": "Groups receive different interventions in parallel, or in sequence.",
    "Single arm": "All participants receive the same intervention; no comparison group.",
    "Cluster": "Groups (clusters) rather than individuals are allocated.",
    "Factorial": "Two or more interventions are combined in a factorial layout.",
    "Platform/Adaptive": "A master protocol adds or drops arms, or adapts as it runs.",
    "Cohort": "A group is followed over time.",
    "Case-control": "Cases with an outcome are compared with controls without it.",
    "Cross-sectional": "A population is observed at one point in time.",
    "Case series": "A description of a series of patients.",
    "Other": "A design not covered by the other values.",
    UNCLEAR: "The records do not say clearly which design the study has.",
}

INTERVENTION_ASSIGNMENT = {
    "Randomised": "Participants are allocated at random.",
    "Non-randomised": "Participants are allocated, but not at random.",
    "Not applicable": "No intervention is assigned (e.g. an observational study).",
    UNCLEAR: "The records do not say clearly how participants were allocated.",
}

# A trial's recruitment status, mapped from every registry's spelling (formats/trialdata.py).
RECRUITMENT_STATUS = {
    "Not yet recruiting": "Approved, but no participant enrolled yet.",
    "Recruiting": "Enrolling participants.",
    "Enrolling by invitation": "Enrolling participants chosen by the investigators.",
    "Active, not recruiting": "Under way (treating or following participants), no longer enrolling.",
    "Not recruiting": "The registry says only that the trial is not recruiting (WHO ICTRP's wording): "
                      "not yet, or no longer.",
    "Suspended": "Stopped for now; may start again.",
    "Terminated": "Stopped early; will not start again.",
    "Completed": "Ended normally.",
    "Withdrawn": "Stopped before its first participant was enrolled.",
    "Unknown": "The registry marks the status as unknown (not verified for a long time).",
    UNCLEAR: "No source states the trial's status.",
}

# A trial's phase (drug development), mapped from every registry's spelling.
PHASE = {
    "Early phase 1": "First-in-human, very small exploratory trials (phase 0).",
    "Phase 1": "Safety and dosage, usually in a small group.",
    "Phase 1/2": "A combined phase 1 and 2 trial.",
    "Phase 2": "Efficacy and side effects in a larger group.",
    "Phase 2/3": "A combined phase 2 and 3 trial.",
    "Phase 3": "Efficacy against standard treatment in a large group.",
    "Phase 4": "After marketing approval.",
    "Not applicable": "No phase applies (not a drug trial, or an observational study).",
    UNCLEAR: "No source states the trial's phase.",
}

# Where a study's results appeared (GET /studies?results_in=...).
RESULTS_IN = {
    "registry": "Summary results posted in a trial registry.",
    "article": "A journal article with results.",
    "preprint": "A preprint with results.",
    "none": "No results anywhere the register knows of.",
}

FACETS = {
    "study_type": STUDY_TYPE,
    "study_aim": STUDY_AIM,
    "study_design": STUDY_DESIGN,
    "intervention_assignment": INTERVENTION_ASSIGNMENT,
}
# The trial-status vocabularies, filtered and counted like the facets.
STATUS_VOCABULARIES = {
    "recruitment_status": RECRUITMENT_STATUS,
    "phase": PHASE,
}

# code -> (label, definition)
REFERENCE_TYPES = {
    "journal_article": ("Journal article", "An article published in a peer-reviewed journal."),
    "trial_registry_record": ("Trial registry record", "The study's record in a trial registry."),
    "preprint": ("Preprint", "A manuscript posted before peer review (medRxiv, bioRxiv, ...)."),
    "journal_pre_proof": ("Journal pre-proof", "An accepted article before its final typeset version."),
    "conference_abstract": ("Conference abstract", "An abstract presented at a conference."),
    "press_release": ("Press release", "A statement released to the press."),
    "retraction_notice": ("Retraction notice", "A notice retracting a report."),
    "expression_of_concern": ("Expression of concern", "An editor's notice of concern about a report."),
    "letter": ("Letter", "A letter or correspondence."),
    "report": ("Report", "A report that is not a journal article (e.g. a technical or agency report)."),
    "other": ("Other", "A reference type not covered by the other values."),
}

# `study_report_types` (kept by triggers, migrations/m0013): one bit per type of reference reporting a
# study (a "reports" link), and HAS_RESULTS_BIT when one of them has results. The facets `reference_type` and
# `has_results` count studies by it, without joining their references (domain/facets.py).
REPORT_TYPE_BITS = {name: 1 << position for position, name in enumerate(REFERENCE_TYPES)}
HAS_RESULTS_BIT = 1 << 16


# code -> (name, definition)
REGISTRIES = {
    "ClinicalTrials.gov": ("ClinicalTrials.gov (US)", "Identifiers NCT + 8 digits."),
    "ChiCTR": ("Chinese Clinical Trial Registry", "ChiCTR + 10 digits, or old ChiCTR-XXX-8 digits."),
    "ISRCTN": ("ISRCTN registry", "ISRCTN + 8 digits."),
    "EudraCT": ("EU Clinical Trials Register (EudraCT)",
                "YYYY-NNNNNN-CC, without EUCTR prefix or country suffix."),
    "CTIS": ("EU Clinical Trials Information System", "YYYY-5NNNNN-CC-NN."),
    "DRKS": ("German Clinical Trials Register", "DRKS + 8 digits."),
    "IRCT": ("Iranian Registry of Clinical Trials", "IRCT + digits + N + sequence."),
    "CTRI": ("Clinical Trials Registry - India", "CTRI/YYYY/MM(M)/NNNNNN."),
    "ANZCTR": ("Australian New Zealand Clinical Trials Registry", "ACTRN + 14 digits."),
    "CRiS": ("Clinical Research Information Service (Korea)", "KCT + 7 digits."),
    "UMIN-CTR": ("UMIN Clinical Trials Registry (Japan)", "UMIN + 9 digits."),
    "jRCT": ("Japan Registry of Clinical Trials", "jRCT + optional letter + 9-10 digits."),
    "JapicCTI": ("Japic Clinical Trials Information", "JapicCTI-NNNNNN."),
    "TCTR": ("Thai Clinical Trials Registry", "TCTR + 11 digits."),
    "PACTR": ("Pan African Clinical Trials Registry", "PACTR + 15-16 digits."),
    "NTR": ("Netherlands Trial Register / OMON", "NTR or NL + digits, or NL-OMON + 5 digits."),
    "ReBEC": ("Brazilian Clinical Trials Registry", "RBR- + 6-8 letters and digits."),
    "RPCEC": ("Cuban Public Registry of Clinical Trials", "RPCEC + 8 digits."),
    "SLCTR": ("Sri Lanka Clinical Trials Registry", "SLCTR/YYYY/NNN."),
    "LBCTR": ("Lebanon Clinical Trials Registry", "LBCTR + 10 digits."),
    "REPEC": ("Peruvian Clinical Trials Registry", "PER-NNN-YY."),
    "ITMCTR": ("International Traditional Medicine Clinical Trial Registry", "ITMCTR + 10 digits."),
    "UTN": ("WHO Universal Trial Number", "U1111-NNNN-NNNN (secondary identifier only)."),
}


def canonical_value(vocabulary, value: str) -> str | None:
    """The vocabulary's own spelling of ``value`` matched case-insensitively, or None."""
    folded = value.strip().casefold()
    for known in vocabulary:
        if known.casefold() == folded:
            return known
    return None


def type_label(code: str) -> str:
    return REFERENCE_TYPES[code][0]
