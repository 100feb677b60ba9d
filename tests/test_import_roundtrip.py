"""Property (issue 13): a generated register (studies with registrations, references with identifiers in their
text and links made by hand, records changed again later in the file, in other batches) imported, exported
as the register's own NDJSON, and the export imported into an empty register gives the same records."""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.db import database
from service.domain import imports
from service.models import Reference, ReferenceIdentifier, Registration, Study, StudyReference
from tests.conftest import _reset

POOL = [f"NCT0{4280700 + n}" for n in range(8)] + [f"ChiCTR20000{30100 + n}" for n in range(4)]
WORDS = st.sampled_from(["remdesivir", "covid", "trial", "cohort", "outcome", "Ärzte", "ω-3", "plasma"])
TEXT = st.lists(WORDS, min_size=1, max_size=5).map(" ".join)
FACETS = {"study_type": ["Interventional", "Observational", "Unclear"],
          "study_aim": ["Treatment and Management", "Prevention", "Unclear"],
          "study_design": ["Parallel/Crossover", "Single arm", "Unclear"],
          "intervention_assignment": ["Randomised", "Not applicable", "Unclear"]}
BATCH = 3  # rows per batch: a record changed a few lines later is changed in another batch


@st.composite
def references(draw, number: int) -> dict:
    named = draw(st.lists(st.sampled_from(POOL), max_size=2, unique=True))
    reference = {"type": draw(st.sampled_from(["journal_article", "preprint", "letter"])),
                 "title": f"{draw(TEXT)} {number}",
                 "abstract": " ".join([draw(TEXT), *(f"Registered as {i}." for i in named)]),
                 "year": draw(st.integers(2019, 2023)), "has_results": draw(st.booleans())}
    if draw(st.booleans()):
        reference["authors"] = draw(st.lists(TEXT, max_size=3))
    if draw(st.booleans()):
        reference.update(source=draw(TEXT), volume=str(draw(st.integers(1, 99))), notes=draw(TEXT),
                         url=f"https://example.org/{number}")
    if draw(st.booleans()):
        reference["doi"] = f"10.5555/ref.{number}"
    if draw(st.booleans()):
        reference["pmid"] = str(33000000 + number)
    return reference


@st.composite
def registers(draw) -> list[str]:
    """The lines of a register NDJSON file: studies (registrations, facets, references linked by hand),
    references alone, and later lines changing records of earlier ones."""
    identifiers = draw(st.permutations(POOL))
    sizes = draw(st.lists(st.integers(1, 2), min_size=1, max_size=4))
    lines, studies, alone, start, number = [], [], [], 0, 0
    for size in sizes:
        owned = identifiers[start:start + size]
        start += size
        linked = []
        for _ in range(draw(st.integers(0, 2))):
            number += 1
            link = {"link": "manual"}
            if draw(st.booleans()):
                link.update(role=draw(st.sampled_from(["reports", "cites"])), role_curated=True)
            linked.append({**draw(references(number)), **link})
        facets = {name: draw(st.sampled_from(values)) for name, values in FACETS.items()}
        study = {"title": draw(TEXT), "registrations": [{"identifier": i} for i in owned],
                 "references": linked, **facets}
        studies.append(study)
        lines.append(study)
    for _ in range(draw(st.integers(0, 4))):
        number += 1
        reference = {**draw(references(number)), "study_ids": []}
        alone.append(reference)
        lines.append(reference)
    # Changes: a study's title and facets, a reference's text (and so the identifiers found in it).
    for study in draw(st.lists(st.sampled_from(studies), max_size=2, unique_by=id)):
        lines.append({**study, "title": draw(TEXT), "study_aim": draw(st.sampled_from(FACETS["study_aim"]))})
    linked = [r for s in studies for r in s["references"]]
    keyed = [r for r in [*alone, *linked] if r.get("doi") or r.get("pmid")]
    if keyed:
        for reference in draw(st.lists(st.sampled_from(keyed), max_size=3, unique_by=id)):
            extra = draw(st.sampled_from(POOL))
            changed = {name: value for name, value in reference.items()
                       if name not in ("link", "role", "role_curated")}
            lines.append({**changed, "abstract": f"{reference['abstract']} Also {extra}.", "study_ids": []})
    return [json.dumps(line, ensure_ascii=False) for line in lines]


def snapshot() -> dict:
    """Every study, registration, reference, link and identifier found, by natural keys (ids are local to a
    register): a study by its registrations, a reference by its fields."""
    with database.connection_context():
        registrations: dict[int, tuple] = {}
        for r in Registration.select().order_by(Registration.identifier):
            registrations[r.study_id] = (*registrations.get(r.study_id, ()), r.identifier)
        studies = {s.id: registrations.get(s.id, (s.name,)) for s in Study.select()}
        references = {ref.id: tuple((name, getattr(ref, name)) for name in (
            "type", "title", "authors", "abstract", "source", "year", "volume", "url", "doi", "pmid",
            "registration_id", "has_results", "publication_types", "notes", "first_published", "updated"))
            for ref in Reference.select()}
        return {
            "studies": sorted((studies[s.id], tuple((name, getattr(s, name)) for name in (
                "name", "title", *FACETS, "first_published", "updated", "curated")))
                for s in Study.select()),
            "references": sorted(references.values()),
            "links": sorted((studies[link.study_id], references[link.reference_id], link.link,
                             link.identifier or "", link.role, link.role_curated)
                            for link in StudyReference.select()),
            "identifiers_found": sorted((references[f.reference_id], f.identifier, f.registry)
                                        for f in ReferenceIdentifier.select()),
        }


def load(text: bytes) -> imports.ImportReport:
    with database.connection_context():
        return imports.import_file(io.BytesIO(text), fmt="ndjson", batch_size=BATCH, suggest=False)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=registers())
def test_an_export_imported_into_an_empty_register_gives_the_same_records(app, database_url, client, lines):
    # Two exports per example, more than RATE_LIMIT_EXPORTS allows one address in a minute.
    app.extensions["rate_limits"].enabled = False
    _reset(database_url)
    first = load(("\n".join(lines) + "\n").encode())
    assert first.rejected == [], first.rejected
    before = snapshot()
    assert before["studies"]

    studies = client.get("/studies?format=ndjson")
    assert studies.status_code == 200
    exported = studies.get_data()
    alone = client.get("/references?format=ndjson&linked=false")
    assert alone.status_code == 200
    exported_references = alone.get_data()

    _reset(database_url)
    again = [load(exported)] + ([load(exported_references)] if exported_references.strip() else [])
    assert [r.rejected for r in again] == [[]] * len(again)
    after = snapshot()
    for part in before:
        assert after[part] == before[part], part
