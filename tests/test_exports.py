"""Exports through HTTP: `format=csv|ndjson` on /studies and /references, `format=ris` on /references."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import rispy
from playhouse.test_utils import count_queries

from service.db import database
from service.domain import exports
from service.formats import fields, ris
from tests.conftest import assert_problem
from tests.helpers import all_items, create_reference, create_study

DISPOSITION = re.compile(r'attachment; filename="(studies|references)-\d{8}\.(csv|ndjson|ris)"')


def _export(client, path: str, content_type: str):
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == content_type
    match = DISPOSITION.fullmatch(response.headers["Content-Disposition"])
    assert match and path.startswith(f"/{match[1]}?") and f"format={match[2]}" in path
    return response


def _ndjson(client, path: str) -> tuple[list[dict], int]:
    response = _export(client, path, "application/x-ndjson")
    text = response.get_data(as_text=True)
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()], int(response.headers["X-Total-Count"])


def _csv(client, path: str) -> tuple[list[str], list[dict], int]:
    response = _export(client, path, "text/csv; charset=utf-8")
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True), newline=""))
    rows = list(reader)
    return reader.fieldnames, rows, int(response.headers["X-Total-Count"])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return str(value)


# ----------------------------------------------------------------------------------------- NDJSON

def test_study_ndjson_lines_are_the_single_study_records(client, seeded):
    lines, total = _ndjson(client, "/studies?format=ndjson")
    assert total == len(lines) == client.get("/studies").get_json()["total"] > 30
    assert [s["id"] for s in lines] == sorted(s["id"] for s in lines)
    for line in lines:
        assert line == client.get(f"/studies/{line['id']}").get_json()
    assert any(len(line["references"]) > 1 for line in lines)
    assert all({"link", "link_identifier"} <= set(r) for line in lines for r in line["references"])


def test_reference_ndjson_lines_are_the_list_items(client, seeded):
    lines, total = _ndjson(client, "/references?format=ndjson")
    assert lines == all_items(client, "/references")
    assert total == len(lines) > 100


def test_filters_and_sort_apply_to_exports(client, seeded):
    for path in ("/references?type=preprint&type=trial_registry_record&sort=-first_published",
                 "/references?has_results=true&year_from=2021&sort=title",
                 "/references?linked=true&sort=-updated"):
        lines, total = _ndjson(client, path + "&format=ndjson")
        expected = all_items(client, path)
        assert [r["id"] for r in lines] == [r["id"] for r in expected] and total == len(expected) > 0
    for path in ("/studies?registry=ChiCTR&sort=-name", "/studies?has_results=true&sort=updated",
                 "/studies?study_design=Parallel/Crossover&sort=-first_published"):
        lines, total = _ndjson(client, path + "&format=ndjson")
        expected = all_items(client, path)
        assert [s["id"] for s in lines] == [s["id"] for s in expected] and total == len(expected) > 0


# -------------------------------------------------------------------------------------------- CSV

def test_study_csv_one_row_per_study(client, seeded):
    columns, rows, total = _csv(client, "/studies?format=csv&sort=-updated")
    assert columns == ["id", "name", "title", "registrations", "registries", "study_type", "study_aim",
                       "study_design", "intervention_assignment", "reference_count", "reference_ids",
                       "cited_by_count", "first_published", "updated"]
    expected = all_items(client, "/studies?sort=-updated")
    assert [int(r["id"]) for r in rows] == [s["id"] for s in expected] and total == len(rows)
    for row, study in zip(rows, expected, strict=True):
        full = client.get(f"/studies/{study['id']}").get_json()
        assert row["registrations"] == "|".join(r["identifier"] for r in study["registrations"])
        assert row["registries"] == "|".join(r["registry"] for r in study["registrations"])
        assert row["reference_ids"] == "|".join(str(i) for i in sorted(r["id"] for r in full["references"]))
        for name in ("name", "title", "study_type", "study_aim", "study_design",
                     "intervention_assignment", "reference_count", "cited_by_count", "first_published",
                     "updated"):
            assert row[name] == _cell(study[name]), name


def test_reference_csv_study_ids_first_and_fields_as_the_api(client, seeded):
    columns, rows, total = _csv(client, "/references?format=csv")
    assert columns[:2] == ["study_ids", "id"]
    expected = all_items(client, "/references")
    assert total == len(rows) == len(expected)
    for row, ref in zip(rows, expected, strict=True):
        assert row == {name: _cell(ref[name]) for name in columns}
    assert any("|" in row["authors"] for row in rows)


def test_csv_quotes_commas_quotes_and_line_breaks(client, auth):
    s1, s2 = create_study(client, auth, "NCT04280705"), create_study(client, auth, "NCT04292899")
    tricky = 'A "quoted", comma\'d title; with = and | signs'
    ref = create_reference(client, auth, title=tricky, abstract="Line one.\r\nLine two,\n\"three\"",
                           notes="=1+1", authors=["Müller K", "O'Brien, P"],
                           study_ids=[s2["id"], s1["id"]])
    _, rows, _ = _csv(client, "/references?format=csv")
    row = next(r for r in rows if r["id"] == str(ref["id"]))
    assert row["title"] == tricky and row["abstract"] == ref["abstract"]
    assert row["notes"] == "=1+1"  # written as stored: no formula escaping
    assert row["authors"] == "Müller K|O'Brien, P"
    assert row["study_ids"] == f"{s1['id']}|{s2['id']}"


def test_empty_exports_keep_their_header(client, seeded):
    columns, rows, total = _csv(client, "/studies?format=csv&registration=NCT00000000")
    assert columns[0] == "id" and rows == [] and total == 0
    columns, rows, total = _csv(client, "/references?format=csv&pmid=1")
    assert columns[0] == "study_ids" and rows == [] and total == 0
    assert _ndjson(client, "/references?format=ndjson&pmid=1") == ([], 0)
    response = _export(client, "/references?format=ris&pmid=1", "application/x-research-info-systems")
    assert response.data == b"" and response.headers["X-Total-Count"] == "0"


# -------------------------------------------------------------------------------------------- RIS

RIS_TYPES = {"journal_article": "JOUR", "trial_registry_record": "DBASE", "preprint": "MANSCPT"}


def _from_ris(entry: dict) -> dict:
    """The API's fields as a reference manager would read them back from our RIS (README "RIS export")."""
    pages = entry.get("start_page")
    if pages and entry.get("end_page"):
        pages += "-" + entry["end_page"]
    trial = entry["type_of_reference"] == "DBASE"
    in_db = entry["type_of_reference"] in ("DBASE", "MANSCPT")
    date = entry.get("year") if trial else entry.get("date")
    keywords = entry.get("keywords", [])
    source = entry.get("name_of_database" if in_db else "secondary_title")
    return {
        "id": int(entry["id"]),
        "title": entry["title"],
        "year": int(entry["year"][:4]) if "year" in entry else None,
        "published": fields.partial_date(date) if date and "/" in date else None,
        "source": None if source == "PubMed" and not trial else source,
        "volume": entry.get("volume"),
        "issue": entry.get("number"),
        "pages": pages,
        "abstract": entry.get("abstract"),
        "doi": entry.get("doi"),
        "url": entry["urls"][0] if "urls" in entry else None,
        "pmid": None if trial else entry.get("accession_number") or _extra_pmid(entry),
        "registration_id": entry.get("accession_number") if trial else None,
        "notes": " ".join(entry.get("notes", [])) or None,
        "has_results": "results:yes" in keywords,
    }


def _extra_pmid(entry: dict) -> str | None:
    """A preprint's PMID, in `M2  - PMID: n` (Zotero's Extra) as its `DB` is its server."""
    extra = entry.get("unknown_tag", {}).get("M2", [])
    assert extra in ([], [f"PMID: {extra[0][6:]}"] if extra else [])
    return extra[0].removeprefix("PMID: ") if extra else None


def _study_keywords(client, ref: dict) -> list[str]:
    return [f"study:{r['identifier']}" for s in ref["study_ids"]
            for r in client.get(f"/studies/{s}").get_json()["registrations"]]


def test_ris_round_trips_through_rispy(client, seeded):
    response = _export(client, "/references?format=ris&sort=-updated",
                       "application/x-research-info-systems")
    text = response.get_data(as_text=True)
    lines = text.split("\r\n")
    assert "\n" not in text.replace("\r\n", "")  # CRLF everywhere
    assert all(line == "" or re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line) for line in lines)
    assert not any(line.startswith(("C1 ", "C2 ", "JO ")) for line in lines)
    entries = rispy.loads(text)
    expected = all_items(client, "/references?sort=-updated")
    assert len(entries) == len(expected) == int(response.headers["X-Total-Count"])
    for entry, ref in zip(entries, expected, strict=True):
        assert entry["type_of_reference"] == RIS_TYPES[ref["type"]]
        assert _from_ris(entry) == {name: ref[name] for name in _from_ris(entry)}, ref["id"]
        assert entry.get("authors", []) == [ris.ris_author(a) for a in ref["authors"]]
        assert all(", " in a for a in entry.get("authors", []))  # the seeds' authors are persons
        assert entry["keywords"] == [*_study_keywords(client, ref),
                                     "results:yes" if ref["has_results"] else "results:no"], ref["id"]
        assert entry.get("type_of_work") == ("Preprint" if ref["type"] == "preprint" else None)
        if ref["pmid"] and ref["type"] != "trial_registry_record" and not (
                ref["type"] == "preprint" and ref["source"]):
            assert entry["name_of_database"] == "PubMed"


def test_ris_several_studies_line_breaks_and_other_types(client, auth):
    s1, s2 = create_study(client, auth, "NCT04280705"), create_study(client, auth, "NCT04292899")
    ref = create_reference(client, auth, type="journal_pre_proof", notes="First line.\nSecond line.",
                           abstract="Para one.\r\n\r\nPara two.", pages="e0241955",
                           published="2020-10", url="https://example.org/a?x=1",
                           study_ids=[s2["id"], s1["id"]])
    create_reference(client, auth, type="press_release", title="Press", authors=[], has_results=False)
    create_reference(client, auth, type="report", title="A report", source="WHO", volume="3",
                     has_results=False)
    text = client.get("/references?format=ris").get_data(as_text=True)
    pre_proof, press, report = rispy.loads(text)
    assert pre_proof["type_of_reference"] == "JOUR" and "type_of_work" not in pre_proof
    assert pre_proof["keywords"] == ["study:NCT04280705", "study:NCT04292899", "results:yes"]
    assert pre_proof["notes"] == ["First line. Second line."]
    assert pre_proof["abstract"] == "Para one. Para two."
    assert pre_proof["start_page"] == "e0241955" and "end_page" not in pre_proof
    assert pre_proof["date"] == "2020/10//" and pre_proof["year"] == "2020"
    assert pre_proof["urls"] == [ref["url"]]
    assert press["type_of_reference"] == "NEWS" and "authors" not in press
    assert press["keywords"] == ["results:no"]
    assert report["type_of_reference"] == "RPRT" and report["type_of_work"] == "Report"
    assert report["publisher"] == "WHO" and "volume" not in report  # Zotero's report has no volume


def test_ris_import_reads_the_export_back(client, auth, seeded):
    """What the register writes, its own RIS import reads as the same references."""
    create_reference(client, auth, type="preprint", title="A preprint with a PMID", source="medRxiv",
                     pmid="32187464", authors=["Ortiz GJ 4th", "Chu, Mingxing", "PECOS Study Team"])
    text = client.get("/references?format=ris").get_data(as_text=True)
    rows = list(ris.parse(io.StringIO(text), {}))
    expected = all_items(client, "/references")
    assert len(rows) == len(expected) > 100
    names = ("type", "title", "authors", "source", "year", "published", "volume", "issue", "doi", "pmid",
             "url", "registration_id", "notes")
    for row, ref in zip(rows, expected, strict=True):
        got = row.record.reference
        assert {n: got.get(n) for n in names} == {n: ref[n] for n in names}, ref["id"]
        assert got.get("has_results", False) == ref["has_results"], ref["id"]


# ------------------------------------------------------------------------------------------- 422s

def test_ris_is_for_references_only(client):
    body = assert_problem(client.get("/studies?format=ris"), 422, "format")
    assert "json, csv, ndjson" in body["detail"]
    assert_problem(client.get("/references?format=xml"), 422, "format")
    assert_problem(client.get("/references?format=CSV"), 422, "format")


@pytest.mark.parametrize("param", ["page=2", "page_size=50", "cursor=*"])
@pytest.mark.parametrize("resource, fmt", [("studies", "csv"), ("references", "ris"),
                                           ("references", "ndjson")])
def test_exports_are_not_paged(client, resource, fmt, param):
    body = assert_problem(client.get(f"/{resource}?format={fmt}&{param}"), 422, param.split("=")[0])
    assert "not paged" in body["detail"]


def test_bad_filters_still_422_on_exports(client):
    assert_problem(client.get("/references?format=csv&year_from=abc"), 422, "year_from")
    assert_problem(client.get("/studies?format=ndjson&colour=red"), 422, "colour")
    assert_problem(client.get("/studies?format=ndjson&sort=colour"), 422, "sort")


# ---------------------------------------------------------------------------------------- batches

@pytest.mark.parametrize("size", [1, 7, 50])
def test_batches_keep_order_without_duplicates(client, seeded, monkeypatch, size):
    monkeypatch.setattr(exports, "BATCH_SIZE", size)
    for path in ("/references?sort=-updated", "/references?sort=title", "/studies?sort=-first_published",
                 "/studies?sort=name"):
        lines, total = _ndjson(client, path + "&format=ndjson")
        ids = [r["id"] for r in lines]
        assert ids == [r["id"] for r in all_items(client, path)] and len(set(ids)) == len(ids) == total


def test_ties_across_batch_boundaries(client, auth, monkeypatch):
    for i in range(11):
        create_reference(client, auth, title="Same title", published="2021", notes=str(i))
    create_reference(client, auth, title="Another title")
    monkeypatch.setattr(exports, "BATCH_SIZE", 3)
    for sort in ("title", "-title"):
        lines, _ = _ndjson(client, f"/references?format=ndjson&sort={sort}")
        assert [r["id"] for r in lines] == [r["id"] for r in all_items(client, f"/references?sort={sort}")]
        assert len({r["id"] for r in lines}) == 12


def _queries(client, path: str) -> int:
    with count_queries() as counter:
        response = client.get(path)
        assert response.status_code == 200
        response.get_data()  # the stream runs its batches as the body is read
    return counter.count


@pytest.mark.parametrize("path, per_batch", [
    ("/references?format=ndjson", 3),  # rows, their study ids, identifiers found
    ("/references?format=ris", 4),  # + the registrations of their studies (study keywords)
    ("/references?format=csv", 3),
    ("/studies?format=csv", 3),  # rows, registrations, reference ids
    ("/studies?format=ndjson", 5),  # rows, registrations, references, their study ids, identifiers
])
def test_queries_per_batch_are_fixed(client, seeded, monkeypatch, path, per_batch, backend):
    total = int(client.get(path).headers["X-Total-Count"])
    declare = 1 if backend == "postgres" else 0  # Postgres: the server-side cursor's DECLARE, then FETCHes
    for size in (4, 10, total):
        monkeypatch.setattr(exports, "BATCH_SIZE", size)
        full, rest = divmod(total, size)
        # the count, then per full batch its queries, then the short last batch (or an empty query)
        assert _queries(client, path) == 1 + declare + per_batch * full + (per_batch if rest else 1), size


# ------------------------------------------------------------------------------------ connections

def test_connection_is_given_back_after_an_export(client, auth, seeded):
    client.get("/references?format=csv").get_data()
    assert database.is_closed()
    create_reference(client, auth, title="Written after an export")
    _, rows, total = _csv(client, "/references?format=csv&type=journal_article")
    assert any(r["title"] == "Written after an export" for r in rows)


def test_abandoned_export_gives_its_connection_back(client, auth, seeded, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 5)
    response = client.get("/references?format=ndjson", buffered=False)
    first = next(iter(response.response))
    assert first.count(b"\n") == 5
    assert not database.is_closed()  # the stream holds it while the client reads
    response.close()  # the client goes away half-way
    assert database.is_closed()
    create_reference(client, auth, title="Not blocked by the abandoned export")


# ----------------------------------------------------------------------------- CSV for spreadsheets

def test_csv_bom_only_when_asked(client, seeded):
    plain = client.get("/references?format=csv").data
    assert plain.startswith(b'"study_ids","id",')  # default: no BOM, what scripts expect
    response = client.get("/references?format=csv&bom=true")
    assert response.status_code == 200 and response.data.startswith(b"\xef\xbb\xbf")
    assert response.data[3:] == plain  # the same export after the mark
    reader = csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"), newline=""))
    assert reader.fieldnames[0] == "study_ids" and len(list(reader)) == len(list(csv.reader(
        io.StringIO(plain.decode(), newline="")))) - 1
    assert client.get("/studies?format=csv&bom=true").data.startswith(b'\xef\xbb\xbf"id",')
    assert client.get("/studies?format=csv&bom=false").data.startswith(b'"id",')


def test_csv_bom_is_for_csv_only(client):
    assert_problem(client.get("/references?format=ris&bom=true"), 422, "bom")
    assert_problem(client.get("/references?bom=true"), 422, "bom")
    assert_problem(client.get("/studies?format=csv&bom=maybe"), 422, "bom")


def test_csv_identifiers_are_quoted_text_counts_bare(client, auth):
    study = create_study(client, auth, "NCT04280705")
    create_reference(client, auth, pmid="32187464", year=2020, study_ids=[study["id"]])
    create_reference(client, auth, title="No PMID", year=2021)
    text = client.get("/references?format=csv").get_data(as_text=True)
    first, second = text.splitlines()[1:]
    assert f'"{study["id"]}",' in first and ',"32187464",' in first and ",2020," in first
    assert second.startswith('"","') and ',"",' in second and ",2021," in second
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["pmid"] for r in rows] == ["32187464", ""] and [r["year"] for r in rows] == ["2020", "2021"]
    studies = client.get("/studies?format=csv").get_data(as_text=True).splitlines()[1]
    assert studies.startswith(f'"{study["id"]}","NCT04280705",')
    assert ',"NCT04280705","ClinicalTrials.gov",' in studies
