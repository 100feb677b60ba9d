"""FHIR R4 (4.0.1) representations of the register's records, as plain dicts (README "FHIR").

A study is a ``ResearchStudy``; a reference (a report) is a ``DocumentReference``: R4 has no
``Citation`` (it came in R4B as trial use and in R5), and one FHIR version throughout lets an R4 client
or server read every resource we serve. The builders take the records exactly as the JSON API serves
them (``StudySchema``/``ReferenceSchema`` dumps: dates as strings) and ``base``, the register's URL
prefix (PUBLIC_URL, or "" for links relative to the host), for the resources' URLs and the register's
own code systems (``<base>/vocabularies/<name>``, where the vocabulary is served).
"""

from __future__ import annotations

import base64

from ..identifiers import canonical

# Identifier systems: each registry's own site, as ClinicalTrials.gov and the HL7 examples use it for
# NCT numbers; a registry not listed falls back to the WHO ICTRP search portal, which holds them all.
REGISTRY_SYSTEMS = {
    "ClinicalTrials.gov": "https://clinicaltrials.gov",
    "ChiCTR": "http://www.chictr.org.cn",
    "ISRCTN": "https://www.isrctn.com",
    "EudraCT": "https://www.clinicaltrialsregister.eu",
    "CTIS": "https://euclinicaltrials.eu",
    "DRKS": "https://drks.de",
    "IRCT": "https://irct.behdasht.gov.ir",
    "CTRI": "https://ctri.nic.in",
    "ANZCTR": "https://www.anzctr.org.au",
    "CRiS": "https://cris.nih.go.kr",
    "UMIN-CTR": "https://www.umin.ac.jp/ctr",
    "jRCT": "https://jrct.niph.go.jp",
    "JapicCTI": "https://www.clinicaltrials.jp",
    "TCTR": "https://www.thaiclinicaltrials.org",
    "PACTR": "https://pactr.samrc.ac.za",
    "NTR": "https://onderzoekmetmensen.nl",
    "ReBEC": "https://ensaiosclinicos.gov.br",
    "RPCEC": "https://rpcec.sld.cu",
    "SLCTR": "https://slctr.lk",
    "LBCTR": "https://lbctr.moph.gov.lb",
    "REPEC": "https://ensayosclinicos-repec.ins.gob.pe",
    "ITMCTR": "http://itmctr.ccebtcm.org.cn",
    "UTN": "https://www.who.int/tools/clinical-trials-registry-platform/network/universal-trial-number-utn",
}
ICTRP_SYSTEM = "https://trialsearch.who.int"
DOI_SYSTEM = "https://doi.org"
PMID_SYSTEM = "https://pubmed.ncbi.nlm.nih.gov"
COUNTRY_SYSTEM = "urn:iso:std:iso:3166"
PHASE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-phase"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

# recruitment_status -> ResearchStudy.status (R4 value set research-study-status, required binding).
# `Unknown` and `Unclear` have no R4 code: the status is then absent with data-absent-reason `unknown`.
STATUS = {
    "Not yet recruiting": "approved",
    "Recruiting": "active",
    "Enrolling by invitation": "active",
    "Active, not recruiting": "closed-to-accrual",
    "Not recruiting": "closed-to-accrual",  # ICTRP: not yet, or no longer; either way not accruing
    "Suspended": "temporarily-closed-to-accrual",
    "Terminated": "administratively-completed",
    "Completed": "completed",
    "Withdrawn": "withdrawn",
}
# phase -> research-study-phase code (`Unclear`: no phase element).
PHASES = {
    "Early phase 1": "early-phase-1",
    "Phase 1": "phase-1",
    "Phase 1/2": "phase-1-phase-2",
    "Phase 2": "phase-2",
    "Phase 2/3": "phase-2-phase-3",
    "Phase 3": "phase-3",
    "Phase 4": "phase-4",
    "Not applicable": "n-a",
}
# study_aim -> research-study-prim-purp-type code, where one fits.
PURPOSES = {
    "Treatment and Management": "treatment",
    "Prevention": "prevention",
    "Diagnosis": "diagnostic",
    "Health Services and Policy": "health-services-research",
}
CATEGORY_FACETS = ("study_type", "study_aim", "study_design", "intervention_assignment")
PRELIMINARY_TYPES = {"preprint", "journal_pre_proof"}  # DocumentReference.docStatus preliminary


def code_system(base: str, vocabulary: str) -> str:
    """The register's own code system for a vocabulary: where `GET /vocabularies/{name}` serves it."""
    return f"{base}/vocabularies/{vocabulary}"


def registry_system(registry: str | None) -> str:
    return REGISTRY_SYSTEMS.get(registry or "", ICTRP_SYSTEM)


def _coding(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _concept(*codings: dict, text: str | None = None) -> dict:
    concept: dict = {"coding": list(codings)}
    if text:
        concept["text"] = text
    return concept


def _instant(value: str | None) -> str | None:
    """Our instants (`2022-07-04T00:00:00Z`) are FHIR instants already; None stays None."""
    return value or None


def doi_url(doi: str) -> str:
    return f"https://doi.org/{doi}"


def study_url(base: str, study_id: int) -> str:
    return f"{base}/studies/{study_id}"


def reference_url(base: str, reference_id: int) -> str:
    return f"{base}/references/{reference_id}"


def _citation_text(reference: dict) -> str:
    """A one-line citation: authors. Title. Source. Year;Volume(Issue):Pages. doi:..."""
    authors = [a for a in reference.get("authors") or [] if a and a.strip()]
    parts = []
    if authors:
        parts.append(", ".join(authors[:6]) + (", et al" if len(authors) > 6 else ""))
    parts.append(reference["title"].rstrip("."))
    if reference.get("source"):
        parts.append(reference["source"])
    where = str(reference["year"]) if reference.get("year") else ""
    if reference.get("volume"):
        where += f";{reference['volume']}"
        if reference.get("issue"):
            where += f"({reference['issue']})"
    if reference.get("pages"):
        where += f":{reference['pages']}"
    if where:
        parts.append(where)
    text = ". ".join(parts) + "."
    if reference.get("doi"):
        text += f" doi:{reference['doi']}"
    return text


def related_artifact(reference: dict, base: str) -> dict:
    """A report as a ResearchStudy.relatedArtifact: its citation, its DOI (or source) URL, and the
    DocumentReference the register serves for it."""
    artifact = {"type": "citation", "label": reference.get("type_label") or reference["type"],
                "display": reference["title"], "citation": _citation_text(reference),
                "document": {"contentType": "application/fhir+json",
                             "url": reference_url(base, reference["id"]),
                             "title": f"DocumentReference {reference['id']}"}}
    url = doi_url(reference["doi"]) if reference.get("doi") else reference.get("url")
    if url:
        artifact["url"] = url
    return artifact


def research_study(study: dict, base: str) -> dict:
    """A study (as `GET /studies/{id}` serves it, with `references`) as an R4 ResearchStudy."""
    resource: dict = {"resourceType": "ResearchStudy", "id": str(study["id"])}
    if study.get("updated"):
        resource["meta"] = {"lastUpdated": _instant(study["updated"])}
    identifiers = []
    for position, registration in enumerate(study.get("registrations") or []):
        identifiers.append({"use": "official" if position == 0 else "secondary",
                            "system": registry_system(registration.get("registry")),
                            "value": registration["identifier"]})
    identifiers.append({"use": "usual", "system": f"{base}/studies", "value": str(study["id"])})
    resource["identifier"] = identifiers
    resource["title"] = study["title"]
    status = STATUS.get(study.get("recruitment_status") or "")
    if status:
        resource["status"] = status
    else:
        resource["_status"] = {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}
    aim = study.get("study_aim")
    if aim in PURPOSES:
        resource["primaryPurposeType"] = _concept(
            _coding(PURPOSE_SYSTEM, PURPOSES[aim]), _coding(code_system(base, "study_aim"), aim, aim),
            text=aim)
    phase = study.get("phase")
    if phase in PHASES:
        resource["phase"] = _concept(_coding(PHASE_SYSTEM, PHASES[phase]), text=phase)
    categories = [
        _concept(_coding(code_system(base, facet), study[facet], study[facet]), text=study[facet])
        for facet in CATEGORY_FACETS if study.get(facet)]
    if categories:  # FHIR JSON has no empty arrays
        resource["category"] = categories
    related = [related_artifact(reference, base) for reference in study.get("references") or []]
    if related:
        resource["relatedArtifact"] = related
    period = {}
    if study.get("start_date"):
        period["start"] = study["start_date"]
    if study.get("primary_completion_date"):
        period["end"] = study["primary_completion_date"]
    if period:
        resource["period"] = period
    if study.get("sponsor"):
        resource["sponsor"] = {"display": study["sponsor"]}
    locations = [_concept(_coding(COUNTRY_SYSTEM, c["code"], c.get("name")), text=c.get("name"))
                 for c in study.get("countries") or []]
    if locations:
        resource["location"] = locations
    return resource


def _text_attachment(text: str, title: str) -> dict:
    return {"contentType": "text/plain; charset=utf-8",
            "data": base64.b64encode(text.encode()).decode("ascii"), "title": title}


def document_reference(reference: dict, base: str) -> dict:
    """A reference (as `GET /references/{id}` serves it) as an R4 DocumentReference.

    A registry record's own identifier takes its registry's system (the registry told from the
    identifier's pattern; the ICTRP system when it cannot be told).
    """
    resource: dict = {"resourceType": "DocumentReference", "id": str(reference["id"])}
    if reference.get("updated"):
        resource["meta"] = {"lastUpdated": _instant(reference["updated"])}
    identifiers = []
    if reference.get("doi"):
        resource["masterIdentifier"] = {"system": DOI_SYSTEM, "value": reference["doi"]}
        identifiers.append({"use": "official", "system": DOI_SYSTEM, "value": reference["doi"]})
    if reference.get("pmid"):
        identifiers.append({"use": "secondary", "system": PMID_SYSTEM, "value": reference["pmid"]})
    if reference.get("registration_id"):
        known = canonical(reference["registration_id"])
        registry = known[1] if known else None
        identifiers.append({"use": "official", "system": registry_system(registry),
                            "value": reference["registration_id"]})
    identifiers.append({"use": "usual", "system": f"{base}/references", "value": str(reference["id"])})
    resource["identifier"] = identifiers
    resource["status"] = "current"
    resource["docStatus"] = "preliminary" if reference["type"] in PRELIMINARY_TYPES else "final"
    label = reference.get("type_label") or reference["type"]
    resource["type"] = _concept(_coding(code_system(base, "reference_type"), reference["type"], label),
                                text=label)
    results = "Report Results" if reference.get("has_results") else "No Results"
    resource["category"] = [_concept(_coding(code_system(base, "results"), results, results), text=results)]
    authors = [{"display": a} for a in reference.get("authors") or [] if a and a.strip()]
    if authors:
        resource["author"] = authors
    resource["description"] = _citation_text(reference)
    main = {"title": reference["title"]}
    url = doi_url(reference["doi"]) if reference.get("doi") else reference.get("url")
    if url:
        main["url"] = url
    if reference.get("published") or reference.get("year"):
        main["creation"] = reference.get("published") or str(reference["year"])
    content = [{"attachment": main}]
    if reference.get("abstract"):
        content.append({"attachment": _text_attachment(reference["abstract"], "Abstract")})
    resource["content"] = content
    studies = [{"reference": study_url(base, study_id), "type": "ResearchStudy"}
               for study_id in reference.get("study_ids") or []]
    if studies:
        resource["context"] = {"related": studies}
    return resource


def bundle_entry(resource: dict, url: str, *, search_mode: str | None = None) -> dict:
    entry: dict = {"fullUrl": url, "resource": resource}
    if search_mode:
        entry["search"] = {"mode": search_mode}
    return entry


def searchset(entries: list[dict], self_url: str) -> dict:
    """A whole searchset Bundle of ``entries`` (``bundle_entry`` dicts, mode `match`)."""
    bundle = bundle_head(len(entries), self_url)
    if entries:
        bundle["entry"] = entries
    return bundle


def bundle_head(total: int, self_url: str, *, kind: str = "searchset") -> dict:
    """A Bundle without its entries (a stream writes them after this head; FHIR JSON has no empty
    arrays, so a Bundle of no entry is this head alone)."""
    return {"resourceType": "Bundle", "type": kind, "total": total,
            "link": [{"relation": "self", "url": self_url}]}
