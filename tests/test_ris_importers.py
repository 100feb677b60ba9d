"""The RIS export as real importers read it: citation-js (@citation-js/plugin-ris, run by node) parses the
export of the seeded register, and every record must come back with its authors split into family and
given names, its DOI, year, type (preprint or article) and study keyword. Plus the author-name splitting
(``formats.ris.split_name``) on the forms the sources use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from service.formats.ris import Name, ris_author, split_name
from tests.helpers import all_items, create_reference, create_study

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "ris-to-csl.js"

# What citation-js makes of each RIS type the export writes (plugin-ris spec/types.json).
CSL_TYPES = {"journal_article": "article-journal", "preprint": "manuscript",
             "trial_registry_record": "dataset", "journal_pre_proof": "article-journal",
             "conference_abstract": "article-journal", "report": "report", "other": "document"}


def citation_js(ris_text: str) -> list[dict]:
    """CSL-JSON items citation-js reads from ``ris_text`` (fails in CI when node or the package is absent)."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "@citation-js" / "plugin-ris").is_dir():
        message = "node or citation-js is not installed: run `make test` (npm ci --prefix tests/node)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run([node, str(SCRIPT)], input=ris_text, capture_output=True, text=True,
                          cwd=NODE_DIR, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _csl_name(name: Name) -> dict:
    if name.literal is not None:
        return {"literal": name.literal}
    return {k: v for k, v in (("family", name.family), ("given", name.given), ("suffix", name.suffix)) if v}


# ------------------------------------------------------------------------------------ name splitting

@pytest.mark.parametrize("stored, family, given, suffix", [
    ("Chu M", "Chu", "M", None),
    ("Chu MX", "Chu", "MX", None),
    ("Chu, Mingxing", "Chu", "Mingxing", None),
    ("Chu,Mingxing", "Chu", "Mingxing", None),
    ("Mingxing Chu", "Chu", "Mingxing", None),
    ("  Chu   M ", "Chu", "M", None),
    ("van der Horn HJ", "van der Horn", "HJ", None),
    ("de la Torre Ramos MÁ", "de la Torre Ramos", "MÁ", None),
    ("Montealegre Sanchez GA", "Montealegre Sanchez", "GA", None),
    ("Ludwig van der Berg", "van der Berg", "Ludwig", None),
    ("van der Berg, Ludwig", "van der Berg", "Ludwig", None),
    ("Hernáez Á", "Hernáez", "Á", None),
    ("Kaya İ", "Kaya", "İ", None),
    ("Balligand J-L", "Balligand", "J-L", None),
    ("Beijers RJHCG", "Beijers", "RJHCG", None),
    ("Chu M. X.", "Chu", "M. X.", None),
    ("M. X. Chu", "Chu", "M. X.", None),
    ("Ortiz GJ 4th", "Ortiz", "GJ", "4th"),
    ("Fischer WA 2nd", "Fischer", "WA", "2nd"),
    ("Mingxing Chu Jr", "Chu", "Mingxing", "Jr"),
    ("Chu, Mingxing, Jr.", "Chu", "Mingxing", "Jr."),
])
def test_persons_split_into_family_and_given(stored, family, given, suffix):
    assert split_name(stored) == Name(family=family, given=given, suffix=suffix)


@pytest.mark.parametrize("stored, literal", [
    ("PECOS Study Team", "PECOS Study Team"),
    ("RECOVER-Pediatrics Consortium", "RECOVER-Pediatrics Consortium"),
    ("OpenSAFELY Collaborative", "OpenSAFELY Collaborative"),
    ("the SURPRISE+ cohort", "the SURPRISE+ cohort"),
    ("CoCo-Fakt-Group", "CoCo-Fakt-Group"),
    ("REVIVE Investigators", "REVIVE Investigators"),
    ("7T MRI COVID Consortium", "7T MRI COVID Consortium"),
    ("Amsterdam UMC COVID-19 biobank", "Amsterdam UMC COVID-19 biobank"),
    ("Department of Health, Wales", "Department of Health Wales"),  # no comma: importers split at one
    ("RECOVER‐Adult", "RECOVER‐Adult"),
    ("WHO", "WHO"),
    ("van der Berg", "van der Berg"),  # a family name alone: one field
    ("Chu Jr", "Chu Jr"),
    ("COVID Human Genetic Effort+", "COVID Human Genetic Effort+"),
    ("pour le Groupe canadien de recherche en soins intensifs",
     "pour le Groupe canadien de recherche en soins intensifs"),
])
def test_group_authors_stay_one_literal_without_a_comma(stored, literal):
    assert split_name(stored) == Name(literal=literal)
    assert "," not in ris_author(stored)


def test_ris_author_values():
    assert ris_author("Chu M") == "Chu, M"
    assert ris_author("Ortiz GJ 4th") == "Ortiz, GJ, 4th"
    assert ris_author("Chu, Mingxing") == "Chu, Mingxing"
    assert ris_author("   ") is None and split_name("") is None and split_name(" , ") is None


# --------------------------------------------------------------------------------- through citation-js

def test_every_seeded_record_through_citation_js(client, seeded):
    response = client.get("/references?format=ris&sort=-updated")
    assert response.status_code == 200
    items = citation_js(response.get_data(as_text=True))
    expected = all_items(client, "/references?sort=-updated")
    assert len(items) == len(expected) == int(response.headers["X-Total-Count"]) > 100
    registrations = {s["id"]: [r["identifier"] for r in s["registrations"]]
                     for s in all_items(client, "/studies")}
    kinds = set()
    for item, ref in zip(items, expected, strict=True):
        where = f"reference {ref['id']}"
        kinds.add(ref["type"])
        assert item["type"] == CSL_TYPES[ref["type"]], where
        assert item["title"] == ref["title"], where
        # every author a person split into family and given (the seeds hold PubMed's "Chu M")
        assert item.get("author", []) == [_csl_name(split_name(a)) for a in ref["authors"]], where
        for author, stored in zip(item.get("author", []), ref["authors"], strict=True):
            assert f"{author['family']} {author['given']}" == stored, where
        assert item.get("DOI", "").lower() == (ref["doi"] or ""), where
        parts = item["issued"]["date-parts"][0] if "issued" in item else [None]
        assert parts[0] == ref["year"], where
        if ref["published"]:
            assert "-".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts)) == ref["published"]
        assert "accessed" not in item, where
        keywords = item["keyword"].split(",")
        studies = [f"study:{i}" for s in ref["study_ids"] for i in registrations[s]]
        assert keywords == studies + ["results:yes" if ref["has_results"] else "results:no"], where
        assert studies or not ref["study_ids"], where
        if ref["type"] == "preprint":
            database = ref["source"] or ("PubMed" if ref["pmid"] else None)
            assert item["genre"] == "Preprint" and item.get("source") == database, where
        if ref["type"] == "journal_article" and ref["source"]:
            assert item["container-title"] == ref["source"], where
        if ref["type"] == "trial_registry_record":
            assert item["source"] == ref["source"], where
        assert "PMCID" not in item, where  # C2 is PMCID's tag: the export leaves it alone
    assert kinds == {"journal_article", "preprint", "trial_registry_record"}
    assert sum(bool(r["authors"]) for r in expected) >= 1


def test_author_forms_and_several_registrations_through_citation_js(client, auth):
    study = create_study(client, auth, "NCT04280705",
                         registrations=[{"identifier": "NCT04280705"}, {"identifier": "ChiCTR2000030261"}])
    create_reference(client, auth, type="preprint", source="medRxiv", doi="10.1101/2020.04.08.20054551",
                     published="2020-04-12", has_results=False, study_ids=[study["id"]], authors=[
                         "Chu M", "Chu, Mingxing", "Mingxing Chu", "Chu MX", "van der Horn HJ",
                         "Ludwig van der Berg", "Ortiz GJ 4th", "Mingxing Chu Jr", "PECOS Study Team",
                         "Department of Health, Wales"])
    item, = citation_js(client.get("/references?format=ris").get_data(as_text=True))
    assert item["author"] == [
        {"family": "Chu", "given": "M"}, {"family": "Chu", "given": "Mingxing"},
        {"family": "Chu", "given": "Mingxing"}, {"family": "Chu", "given": "MX"},
        {"family": "van der Horn", "given": "HJ"}, {"family": "van der Berg", "given": "Ludwig"},
        {"family": "Ortiz", "given": "GJ", "suffix": "4th"},
        {"family": "Chu", "given": "Mingxing", "suffix": "Jr"},
        {"literal": "PECOS Study Team"}, {"literal": "Department of Health Wales"}]
    assert item["type"] == "manuscript" and item["genre"] == "Preprint"
    assert item["DOI"] == "10.1101/2020.04.08.20054551" and item["source"] == "medRxiv"
    assert item["issued"] == {"date-parts": [[2020, 4, 12]]}
    assert item["keyword"] == "study:NCT04280705,study:ChiCTR2000030261,results:no"


def test_registry_record_dates_are_not_read_as_accessed(client, auth):
    create_reference(client, auth, type="trial_registry_record", title="A registry record", authors=[],
                     source="ClinicalTrials.gov", registration_id="NCT04280705", published="2020-02",
                     url="https://clinicaltrials.gov/study/NCT04280705")
    item, = citation_js(client.get("/references?format=ris").get_data(as_text=True))
    assert item["type"] == "dataset" and item["source"] == "ClinicalTrials.gov"
    assert item["issued"] == {"date-parts": [[2020, 2]]} and "accessed" not in item


# ------------------------------------------------------------------------- what Zotero makes of it
# Zotero itself does not run here. These tables are what zotero/translators RIS.js (lastUpdated
# 2026-01-05) does with the RIS types and tags the export writes (`importTypeMap`, `fieldMap`,
# `degenerateImportFieldMap`), and the fields each item type has in Zotero's schema (zotero-schema
# version 41). RIS.js drops a value whose field the item type lacks (or, with its hidden preference
# `RIS.import.ignoreUnknown` off, files it in a "no corresponding Zotero field" child note).

ZOTERO_TYPES = {"JOUR": "journalArticle", "MANSCPT": "manuscript", "DBASE": "dataset",
                "INPR": "manuscript", "ABST": "journalArticle", "NEWS": "newspaperArticle", "RPRT": "report",
                "GEN": "journalArticle"}
_ANY = {"AB": "abstractNote", "AN": "archiveLocation", "DB": "archive", "DO": "DOI", "KW": "tags",
        "N1": "notes", "UR": "url", "ID": "__ignore", "AU": "creators", "TI": "title", "PY": "date",
        "DA": "date", "VL": "volume", "IS": "issue", "SP": "pages", "EP": "pages", "M2": "extra",
        "PB": "publisher"}  # SP of a manuscript is its number of pages: not a page range either
_BY_TYPE = {("T2", "journalArticle"): "publicationTitle", ("T2", "newspaperArticle"): "publicationTitle",
            ("T2", "report"): "seriesTitle", ("M3", "manuscript"): "manuscriptType",
            ("M3", "report"): "reportType", ("PB", "report"): "institution"}
ZOTERO_FIELDS = {
    "journalArticle": {"title", "abstractNote", "publicationTitle", "volume", "issue", "pages", "date", "DOI",
                       "url", "archive", "archiveLocation", "extra"},
    "manuscript": {"title", "abstractNote", "manuscriptType", "date", "DOI", "url", "archive",
                   "archiveLocation", "extra"},
    "dataset": {"title", "abstractNote", "date", "DOI", "url", "archive", "archiveLocation", "extra"},
    "newspaperArticle": {"title", "abstractNote", "publicationTitle", "volume", "issue", "pages", "date",
                         "DOI", "url", "archive", "archiveLocation", "extra"},
    "report": {"title", "abstractNote", "reportType", "institution", "date", "pages", "DOI", "url",
               "archive", "archiveLocation", "extra", "seriesTitle"},
}
_NOT_FIELDS = {"creators", "tags", "notes", "__ignore"}


def _zotero_field(tag: str, item_type: str) -> str | None:
    return _BY_TYPE.get((tag, item_type)) or (None if tag in ("T2", "M3") else _ANY.get(tag))


def test_every_tag_has_a_zotero_field(client, auth, seeded):
    for kind in ("journal_article", "preprint", "trial_registry_record", "journal_pre_proof",
                 "conference_abstract", "press_release", "report", "other", "letter"):
        create_reference(client, auth, type=kind, title=f"A {kind}", source="Somewhere", volume="3",
                         issue="2", pages="1-9", doi=f"10.1234/{kind}", pmid="32187464",
                         url="https://example.org/x", published="2020-05-06", notes="A note.",
                         registration_id="NCT04280705" if kind == "trial_registry_record" else None)
    text = client.get("/references?format=ris").get_data(as_text=True)
    records = [r for r in text.split("\r\nER  - \r\n") if r.strip()]
    assert len(records) == int(client.get("/references").get_json()["total"])
    seen = set()
    for record in records:
        lines = record.strip("\r\n").split("\r\n")
        item_type = ZOTERO_TYPES[lines[0].removeprefix("TY  - ")]
        for line in lines[1:]:
            tag = line[:2]
            field = _zotero_field(tag, item_type)
            assert field in _NOT_FIELDS or field in ZOTERO_FIELDS[item_type], (item_type, line)
            seen.add((item_type, tag))
    assert {t for t, _ in seen} == set(ZOTERO_FIELDS)
