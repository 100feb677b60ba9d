"""The facet mapping rules (VOCABULARIES.md §Mapping), table-driven: registry wording -> register facets."""

from __future__ import annotations

import pytest

from service.formats.facets import ctgov_facets, ictrp_facets

U = "Unclear"
FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment")


@pytest.mark.parametrize(("study_type", "design", "category", "expected"), [
    # Real `Study type` / `Study design` values of the WHO ICTRP export (2020-04-15).
    ("Interventional", "Allocation: Randomized. Intervention model: Parallel Assignment. Primary purpose: "
     "Treatment. Masking: None (Open Label).", None,
     ("Interventional", "Treatment and Management", "Parallel/Crossover", "Randomised")),
    ("Interventional", "Allocation: Non-Randomized. Intervention model: Parallel Assignment. Primary "
     "purpose: Prevention.", None, ("Interventional", "Prevention", "Parallel/Crossover", "Non-randomised")),
    ("Interventional", "Intervention model: Single Group Assignment. Primary purpose: Treatment. Masking: "
     "None (Open Label).", None, ("Interventional", "Treatment and Management", "Single arm", U)),
    ("Interventional study", "Parallel", None, ("Interventional", U, "Parallel/Crossover", U)),
    ("Interventional study", "Sequential", None, ("Interventional", U, U, U)),
    ("Interventional study", "Non randomized control", None, ("Interventional", U, U, "Non-randomised")),
    ("Interventional study", "Factorial", None, ("Interventional", U, "Factorial", U)),
    ("Interventional clinical trial of medicinal product",
     "Controlled: yes<br>Randomised: yes<br>Open: yes<br>Single blind: no<br>Double blind: no<br>"
     "Parallel group: yes<br>Cross over: no<br>Other: no", None,
     ("Interventional", U, "Parallel/Crossover", "Randomised")),
    ("Interventional clinical trial of medicinal product",
     "Controlled: no<br>Randomised: no<br>Open: yes<br>Parallel group: no<br>Cross over: no", None,
     ("Interventional", U, U, "Non-randomised")),
    ("Observational study", "Cohort study", None, ("Observational", U, "Cohort", "Not applicable")),
    ("Observational", "Case-Control study", None, ("Observational", U, "Case-control", "Not applicable")),
    ("Observational [Patient Registry]", "", None, ("Observational", U, U, "Not applicable")),
    ("Diagnostic test", "", None, ("Diagnostic", "Diagnosis", U, U)),
    ("Epidemilogical research", "", None, ("Observational", "Epidemiology", U, "Not applicable")),
    ("Health services reaserch", "", None, (U, "Health Services and Policy", U, U)),
    ("Treatment study", "Single arm", None,
     ("Interventional", "Treatment and Management", "Single arm", "Non-randomised")),
    ("Prevention", "", None, (U, "Prevention", U, U)),
    ("Basic Science", "", None, ("Other", "Other", U, U)),
    ("Expanded Access", "", None, ("Other", "Treatment and Management", U, U)),
    ("interventional", "", None, ("Interventional", U, U, U)),
    # TrialsTracker's study_category only fills an aim nothing else gave.
    ("Observational", None, "Prognosis", ("Observational", "Prognosis", U, "Not applicable")),
    ("Interventional", None, "Drug (Chemoprophylaxis)", ("Interventional", "Prevention", U, U)),
    ("Interventional", None, "Drug", ("Interventional", U, U, U)),
    # Nothing recognised: Unclear, never a guess.
    ("Unknown", "N/A", None, (U, U, U, U)),
    ("", "", None, (U, U, U, U)),
    (None, None, None, (U, U, U, U)),
])
def test_ictrp_wording_maps_onto_the_facets(study_type, design, category, expected):
    got = ictrp_facets(study_type, design, category)
    assert tuple(got[f] for f in FACETS) == expected


@pytest.mark.parametrize(("design", "expected"), [
    ({"studyType": "INTERVENTIONAL", "designInfo": {"allocation": "RANDOMIZED",
                                                    "interventionModel": "PARALLEL",
                                                    "primaryPurpose": "TREATMENT"}},
     ("Interventional", "Treatment and Management", "Parallel/Crossover", "Randomised")),
    ({"studyType": "INTERVENTIONAL", "designInfo": {"allocation": "NON_RANDOMIZED",
                                                    "interventionModel": "CROSSOVER",
                                                    "primaryPurpose": "SUPPORTIVE_CARE"}},
     ("Interventional", "Treatment and Management", "Parallel/Crossover", "Non-randomised")),
    ({"studyType": "INTERVENTIONAL", "designInfo": {"allocation": "NA", "interventionModel": "SINGLE_GROUP",
                                                    "primaryPurpose": "PREVENTION"}},
     ("Interventional", "Prevention", "Single arm", "Not applicable")),
    ({"studyType": "INTERVENTIONAL", "designInfo": {"interventionModel": "FACTORIAL",
                                                    "primaryPurpose": "DIAGNOSTIC"}},
     ("Interventional", "Diagnosis", "Factorial", U)),
    ({"studyType": "INTERVENTIONAL", "designInfo": {"interventionModel": "SEQUENTIAL",
                                                    "primaryPurpose": "SCREENING"}},
     ("Interventional", "Diagnosis", U, U)),
    ({"studyType": "INTERVENTIONAL", "designInfo": {"primaryPurpose": "HEALTH_SERVICES_RESEARCH"}},
     ("Interventional", "Health Services and Policy", U, U)),
    ({"studyType": "OBSERVATIONAL", "designInfo": {"observationalModel": "COHORT"}},
     ("Observational", U, "Cohort", "Not applicable")),
    ({"studyType": "OBSERVATIONAL", "designInfo": {"observationalModel": "OTHER",
                                                   "timePerspective": "CROSS_SECTIONAL"}},
     ("Observational", U, "Cross-sectional", "Not applicable")),
    ({"studyType": "EXPANDED_ACCESS"}, ("Other", U, U, U)),
    ({}, (U, U, U, U)),
])
def test_ctgov_enums_map_directly(design, expected):
    got = ctgov_facets(design)
    assert tuple(got[f] for f in FACETS) == expected
