"""The `articles-csv` format through the CLI and POST /imports, on excerpts of the real article files
(fixtures/make_article_fixtures.py): values mapped from specific real rows, links to studies imported
before, idempotency, rows merged and rejected, and unknown headers refused."""

from __future__ import annotations

import gzip
import io
import json

from service.db import database
from service.formats import AddedLines
from service.formats.articles import authors, pubmed_abstract, python_list
from service.identifiers import find_identifiers
from service.models import Reference, StudyReference
from tests.conftest import assert_problem
from tests.test_imports import FIXTURES, TRIALSTRACKER, counts, run_import

REGCOVID = FIXTURES / "articles_regcovid_int.csv"
REGCOVID_OBS = FIXTURES / "articles_regcovid_obs.csv"
LITCOVID = FIXTURES / "articles_litcovid.csv"
LITCOVID_TRIALS = FIXTURES / "ictrp_direcct_litcovid.csv"
HITS = FIXTURES / "articles_direcct_hits.csv"


def article(pmid=None, doi=None) -> dict:
    with database.connection_context():
        query = Reference.select().where(Reference.type != "trial_registry_record")
        query = query.where(Reference.pmid == pmid) if pmid else query.where(Reference.doi == doi)
        [row] = list(query.dicts())
        row["studies"] = sorted(s.study.name for s in StudyReference.select().where(
            StudyReference.reference == row["id"]))
    return row


def updated_dates(client) -> dict:
    items = client.get("/references?page_size=100").get_json()["items"]
    return {r["id"]: r["updated"] for r in items}


# -- regCOVID PubMed lists ----------------------------------------------------------------------------------

def test_regcovid_rows_of_one_pmid_make_one_linked_reference(runner, client):
    run_import(runner, TRIALSTRACKER)
    report = run_import(runner, REGCOVID, "articles-csv")
    # 20 rows: PMID 32445440 on 4 rows (lines 7, 18, 19, 21), 34534511 and 33264556 on 2 each.
    assert report["layout"] == "regcovid-publications"
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (15, 15, [], [])
    # 9 articles name NCT04280705, NCT04292899, NCT04315948 or NCT04322682 in `nct_id`; the WHO Solidarity
    # results also cite ISRCTN83971151 in their abstract.
    assert report["linked"] == 10
    assert article(pmid="33264556")["studies"] == ["ISRCTN83971151", "NCT04315948"]
    actt = article(pmid="32445440")
    assert actt["title"] == "Remdesivir for the Treatment of Covid-19 - Final Report."
    assert actt["source"] == "The New England journal of medicine"
    assert (actt["published"], actt["year"], actt["type"]) == ("2020-12-01", 2020, "journal_article")
    assert actt["doi"] is None and actt["authors"] == "[]"
    assert actt["notes"] == (
        "ClinicalTrials.gov identifiers in this article's PubMed record: NCT04280705.\n"
        "ClinicalTrials.gov records listing this article: NCT04970719, NCT04533347, NCT04647695.")
    assert actt["studies"] == ["NCT04280705"]  # the other three trials are not in the register
    # The abstract: PubMed XML as labelled paragraphs, without the copyright statement.
    assert actt["abstract"].startswith("BACKGROUND: Although several therapeutic agents have been evaluated")
    assert "\nMETHODS: We conducted a double-blind, randomized, placebo-controlled trial" in actt["abstract"]
    assert "<AbstractText" not in actt["abstract"] and "Copyright" not in actt["abstract"]
    assert "P<0.001, by a log-rank test" in actt["abstract"]  # &lt; in the XML
    assert actt["abstract"].endswith("ACTT-1 ClinicalTrials.gov number, NCT04280705.).")
    # The reference is shown on its study.
    study = client.get("/registrations/NCT04280705").get_json()
    assert any(r["pmid"] == "32445440" and r["link"] == "auto" for r in study["references"])


def test_regcovid_types_and_mojibake(runner):
    run_import(runner, REGCOVID, "articles-csv")
    assert article(pmid="33972949")["type"] == "preprint"  # ArticleType "Preprint"
    assert article(pmid="33225989")["type"] == "letter"    # "Letter|Randomized Controlled Trial"
    assert article(pmid="32958495")["type"] == "journal_article"
    # The file has "hazard ratio 1Â·54" (UTF-8 read as Windows-1252 upstream): repaired by ftfy.
    lenzilumab = article(pmid="34863332")["abstract"]
    assert "1·54; 95% CI 1·02-2·32" in lenzilumab and "Â" not in lenzilumab


def test_regcovid_import_twice_changes_nothing(runner, client):
    run_import(runner, TRIALSTRACKER)
    run_import(runner, REGCOVID, "articles-csv")
    before, dates = counts(), updated_dates(client)
    again = run_import(runner, REGCOVID, "articles-csv")
    assert (again["created"], again["updated"], again["unchanged"], again["linked"]) == (0, 0, 15, 0)
    assert counts() == before and updated_dates(client) == dates


def test_an_article_in_two_files_keeps_the_trials_of_both(runner):
    run_import(runner, REGCOVID, "articles-csv")
    report = run_import(runner, REGCOVID_OBS, "articles-csv")
    assert (report["created"], report["updated"]) == (3, 1)
    # PMID 33591017: NCT04401293 in the interventional file, NCT04343898 in the observational one.
    assert article(pmid="33591017")["notes"] == (
        "ClinicalTrials.gov identifiers in this article's PubMed record: NCT04401293.\n"
        "ClinicalTrials.gov records listing this article: NCT04343898.")
    assert article(pmid="33591017")["studies"] == []
    # Importing either file again changes nothing: their lines are there already.
    assert run_import(runner, REGCOVID, "articles-csv")["updated"] == 0
    assert run_import(runner, REGCOVID_OBS, "articles-csv")["updated"] == 0


# -- LitCovid ------------------------------------------------------------------------------------------------

def test_litcovid_values_both_author_formats_and_links(runner):
    run_import(runner, LITCOVID_TRIALS)
    report = run_import(runner, LITCOVID, "articles-csv")
    assert report["layout"] == "litcovid-doc-info"
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (19, 19, [], [])
    assert report["linked"] == 4  # the four abstracts naming a trial of the DIRECCT list
    pecos = article(pmid="42070008")
    assert pecos["doi"] == "10.1038/s41390-026-05002-7"
    assert pecos["source"] == "Pediatr Res"  # `journal` is a citation: "Pediatr Res;2026May02. doi:..."
    assert (pecos["published"], pecos["year"], pecos["type"]) == ("2026-05-02", 2026, "journal_article")
    assert pecos["title"].startswith("Pediatric SARS-CoV-2 outcomes study (PECOS): 12-month longitudinal")
    assert pecos["abstract"].startswith("BACKGROUND: The goal of this study was to identify symptoms")
    names = json.loads(pecos["authors"])
    assert names[:2] == ["Montealegre Sanchez GA", "Yonts AB"] and names[-1] == "PECOS Study Team"
    assert pecos["notes"] == "PMCID: PMC9226045"  # written 9226045 in the file
    listed = json.loads(article(pmid="42068900")["authors"])  # a Python-list string
    assert listed[0] == "Liira H" and "Venäläinen MS" in listed
    assert article(pmid="42066215")["abstract"] is None  # no abstract in the file
    assert article(pmid="41868855")["published"] == "2026"  # dated by year only
    linked = [article(pmid=p)["studies"] for p in ("42070008", "42069416")]
    assert linked == [[], []]
    with database.connection_context():
        assert StudyReference.select().join(Reference).where(
            Reference.type != "trial_registry_record").count() == 4
    again = run_import(runner, LITCOVID, "articles-csv")
    assert (again["created"], again["updated"], again["unchanged"], again["linked"]) == (0, 0, 19, 0)


# -- DIRECCT trial-id search hits ----------------------------------------------------------------------------

def test_direcct_hits_link_by_the_identifiers_found_and_reject_untitled_rows(bookkeeping, runner):
    run_import(runner, TRIALSTRACKER)
    report = run_import(runner, HITS, "articles-csv")
    assert report["layout"] == "direcct-trn-hits"
    # 25 rows: two pairs share a DOI (merged), two rows have no title at all.
    assert report["rejected"] == [{"line": 5, "reason": "has no title."},
                                  {"line": 6, "reason": "has no title."}]
    assert (report["rows"], report["created"], report["duplicates"]) == (23, 21, [])
    assert report["linked"] == 18
    hits = article(doi="10.1016/j.phrs.2020.104779")
    assert hits["notes"] == (  # the row of line 17
        "Trial identifiers found in the text by DIRECCT: ChiCTR2000029308, NCT04315948.\n"
        "CORD-19 uid: fxcv5feh")
    assert hits["studies"] == ["NCT04315948"] and hits["pmid"] == "32247821"
    assert hits["title"].startswith("3CL inhibitors as a potential therapeutic")
    assert hits["type"] == "journal_article" and hits["abstract"] is None
    preprint = article(doi="10.1101/2020.12.22.20248753")  # medRxiv DOI
    assert preprint["type"] == "preprint" and preprint["pmid"] is None
    assert "NCT04398004, 2020-001882-36." in preprint["notes"]  # a bare EudraCT number, as found
    # One Surviving Sepsis Campaign guideline in two journals: same title, two DOIs, two references.
    assert article(doi="10.1007/s00134-020-06022-5")["studies"] == ["NCT04280705"]
    assert article(doi="10.1097/ccm.0000000000004363")["studies"] == ["NCT04280705"]
    # Two rows with one DOI (lines 21 and 23, two PMIDs): one reference with the first row's PMID, the
    # title of the row that has one, and the trial of the row that names it.
    protocol = article(doi="10.1016/j.jpsychores.2020.110132")
    assert protocol["pmid"] == "32419703" and protocol["title"].startswith("Protocol for a partially nested")
    assert "NCT04335279" in protocol["notes"]


def test_direcct_hits_fill_but_do_not_overwrite_what_pubmed_gave(bookkeeping, runner):
    run_import(runner, REGCOVID, "articles-csv")
    report = run_import(runner, HITS, "articles-csv")
    assert (report["created"], report["updated"]) == (18, 3)  # PMIDs 32706859, 33225989, 33264556
    # DIRECCT's title (cut from the full text) and its default type do not replace PubMed's ...
    cohort = article(pmid="32706859")
    assert cohort["title"] == ("Remdesivir for Severe Coronavirus Disease 2019 (COVID-19) Versus a Cohort "
                               "Receiving Standard of Care.")
    letter = article(pmid="33225989")
    assert letter["type"] == "letter" and letter["title"].startswith("Letter to the editor: Study Summary")
    # ... but its DOI fills the empty one, and its trial identifiers are added to the notes.
    assert cohort["doi"] == "10.1093/cid/ciaa1041"
    assert cohort["notes"].startswith(
        "ClinicalTrials.gov identifiers in this article's PubMed record: NCT04292899.\n"
        "Trial identifiers found in the text by DIRECCT: NCT04292899.\nCORD-19 uid: ")
    # Either file imported again changes nothing.
    assert run_import(runner, REGCOVID, "articles-csv")["updated"] == 0
    assert run_import(runner, HITS, "articles-csv")["updated"] == 0


def test_direcct_hits_import_twice_changes_nothing(runner, client):
    run_import(runner, TRIALSTRACKER)
    run_import(runner, HITS, "articles-csv")
    before, dates = counts(), updated_dates(client)
    again = run_import(runner, HITS, "articles-csv")
    assert (again["created"], again["updated"], again["unchanged"], again["linked"]) == (0, 0, 21, 0)
    assert counts() == before and updated_dates(client) == dates


# -- refused files and rows ----------------------------------------------------------------------------------

def test_an_unknown_header_is_refused_naming_the_layouts_known(runner):
    result = run_import(runner, TRIALSTRACKER, "articles-csv", ok=False)
    assert "refused, nothing imported" in result.output and "'trialid'" in result.output
    for layout in ("regcovid-publications", "litcovid-doc-info", "direcct-trn-hits"):
        assert layout in result.output
    assert counts()["Reference"] == 0


def test_bad_rows_are_rejected_with_line_and_reason(runner, tmp_path):
    lines = HITS.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "hits.csv"
    # line 2: no DOI and no PMID; line 3: `id_hits` that is not a list; line 4: a PMID that is not a number.
    bad.write_text(lines[0] + lines[1].replace("10.1101/2020.09.17.20195867", "")
                   + lines[2].replace("['NCT04292730'", "__import__('os')#", 1)
                   + lines[7].replace("0790,32149772,", "0790,PMC123,", 1), encoding="utf-8")
    report = run_import(runner, bad, "articles-csv")
    assert [r["line"] for r in report["rejected"]] == [2, 3, 4]
    reasons = [r["reason"] for r in report["rejected"]]
    assert "has no DOI or PMID" in reasons[0] and "`id_hits` is not a list of strings" in reasons[1]
    assert reasons[2] == "PMID 'PMC123' is not a number."
    assert report["created"] == 0


def test_a_truncated_file_is_refused(runner, tmp_path):
    cut = tmp_path / "cut.csv"
    cut.write_bytes(REGCOVID.read_bytes()[:3000])
    result = run_import(runner, cut, "articles-csv", ok=False)
    assert "refused, nothing imported" in result.output
    assert counts()["Reference"] == 0


# -- POST /imports -------------------------------------------------------------------------------------------

def test_post_imports_reads_each_layout(client, auth):
    for path, layout, created in ((REGCOVID, "regcovid-publications", 15),
                                  (LITCOVID, "litcovid-doc-info", 19), (HITS, "direcct-trn-hits", 18)):
        upload = {"file": (io.BytesIO(gzip.compress(path.read_bytes())), path.name + ".gz")}
        response = client.post("/imports?format=articles-csv", headers=auth,
                               content_type="multipart/form-data", data=upload)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert (body["format"], body["layout"], body["created"]) == ("articles-csv", layout, created)
    # The DIRECCT hits name 3 PMIDs of the regCOVID excerpt: those references were updated, not created.
    assert body["updated"] == 3
    again = client.post("/imports?format=articles-csv", headers=auth, data=HITS.read_bytes(),
                        content_type="text/csv")
    assert again.status_code == 200 and again.get_json()["updated"] == 0


def test_post_imports_refuses_an_unknown_header(client, auth):
    body = assert_problem(client.post("/imports?format=articles-csv", headers=auth,
                                      data=TRIALSTRACKER.read_bytes(), content_type="text/csv"), 422)
    assert "direcct-trn-hits" in body["detail"]
    assert counts()["Reference"] == 0


# -- the pieces -------------------------------------------------------------------------------------------

def test_values_read_from_strings():
    assert authors("Tan C, Meng J, Dai X, Gao S, ") == ["Tan C", "Meng J", "Dai X", "Gao S"]
    assert authors("['Maeda T', 'Yohannes AM']") == ["Maeda T", "Yohannes AM"]
    assert python_list("NA", "id_hits") == []
    assert pubmed_abstract('<AbstractText Label="AIM">A &lt; B, CO<sub>2</sub>.</AbstractText>'
                           "<CopyrightInformation>© X</CopyrightInformation>") == "AIM: A < B, CO2."
    assert pubmed_abstract("Plain text, no markup.") == "Plain text, no markup."
    notes = AddedLines("Trial identifiers found in the text by DIRECCT: NCT04398004, 2020-001882-36.")
    assert notes.onto("written by hand") == "written by hand\n" + notes
    assert notes.onto(notes) == notes
    assert [f.identifier for f in find_identifiers(notes)] == ["NCT04398004", "2020-001882-36"]
