"""Imports never end in a 500 or a traceback (issue 13): records changing across batches, rows the database
would refuse, database errors, decompression bombs and hostile XML inside a workbook."""

from __future__ import annotations

import gzip
import io
import json
import time
import zipfile
from pathlib import Path

import peewee
import pytest

from service.config import ConfigError, load_config
from service.db import database
from service.domain import imports
from service.models import Reference, ReferenceIdentifier
from tests.conftest import assert_problem

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def reference_line(number: int, *, doi: str | None = None, abstract: str = "", **extra) -> str:
    return json.dumps({"type": "journal_article", "title": f"Generated article number {number}",
                       "doi": doi or f"10.5555/generated.{number}", "abstract": abstract,
                       "study_ids": [], **extra})


def lines_across_batches(count: int = 600) -> bytes:
    """``count`` reference lines where the first and the last (in different 500-row batches) are the same
    reference whose text changed, still naming the identifier it named."""
    lines = [reference_line(1, doi="10.5555/changing", abstract="Registered as NCT04280705.")]
    lines += [reference_line(n) for n in range(2, count)]
    lines.append(reference_line(1, doi="10.5555/changing",
                                abstract="Registered as NCT04280705 and NCT04315948."))
    return ("\n".join(lines) + "\n").encode()


def found_identifiers(doi: str) -> list[str]:
    with database.connection_context():
        reference = Reference.get(Reference.doi == doi)
        return [i for (i,) in ReferenceIdentifier.select(ReferenceIdentifier.identifier)
                .where(ReferenceIdentifier.reference == reference.id).tuples()]


def test_a_reference_changed_in_two_batches_is_imported(client, auth):
    """Point 5: the second change re-inserted the identifiers of a reference an earlier batch created."""
    response = client.post("/imports?format=ndjson", headers=auth, data=lines_across_batches(),
                           content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["rows"] == 600 and report["rejected"] == []
    assert report["references"] == {"created": 599, "updated": 1}
    assert found_identifiers("10.5555/changing") == ["NCT04280705", "NCT04315948"]


def test_the_cli_imports_a_reference_changed_in_two_batches(runner, tmp_path):
    path = tmp_path / "changing.ndjson"
    path.write_bytes(lines_across_batches())
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["references"] == {"created": 599, "updated": 1}
    assert found_identifiers("10.5555/changing") == ["NCT04280705", "NCT04315948"]


# -- rows the database would refuse are rejected rows ----------------------------------------------------

def ris_record(title: str, *, pmid: str = "", doi: str = "") -> str:
    return (f"TY  - JOUR\nTI  - {title}\nPY  - 2020\n" + (f"AN  - {pmid}\n" if pmid else "")
            + (f"DO  - {doi}\n" if doi else "") + "ER  - \n\n")


def test_rows_the_database_would_refuse_are_rejected_with_their_line(client, auth):
    padding = "A first article whose title is long enough to carry the rest past the sample. " * 60
    text = (ris_record(padding)                                              # lines 1-4: imported
            + ris_record("A title with a NUL \x00 inside")                   # line 6
            + ris_record("A stored title", pmid="1234567890123456789")       # line 11: pmid too long
            + ris_record("Another stored title", doi="10.1000/" + "x" * 400)  # line 17: doi too long
            + ris_record("The last article, imported"))
    response = client.post("/imports?format=ris", headers=auth, data=text.encode(),
                           content_type="application/x-research-info-systems")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["created"] == 2, report
    reasons = {row["line"]: row["reason"] for row in report["rejected"]}
    assert sorted(reasons) == [6, 11, 17], reasons
    assert "NUL" in reasons[6] and "`pmid`" in reasons[11] and "`doi`" in reasons[17]
    assert client.get("/references").get_json()["total"] == 2


def test_text_no_database_can_store_in_a_json_study_is_a_rejected_row(client, auth):
    page = json.loads((FIXTURES / "ctgov_page.json").read_text())
    page["studies"][0]["protocolSection"]["identificationModule"]["briefTitle"] = "Lone \ud800 surrogate"
    page["studies"][1]["protocolSection"]["identificationModule"]["briefTitle"] = "A NUL \u0000 here"
    body = json.dumps(page, ensure_ascii=True).encode()
    response = client.post("/imports?format=ctgov-json", headers=auth, data=body,
                           content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert len(report["rejected"]) == 2 and report["created"] == 1, report
    assert {"surrogate" in r["reason"] or "NUL" in r["reason"] for r in report["rejected"]} == {True}
    assert client.get("/studies").get_json()["total"] == 1


def test_a_value_too_long_for_its_column_is_a_rejected_row(client, auth):
    lines = [reference_line(1), reference_line(2, volume="1" * 60)]
    response = client.post("/imports?format=ndjson", headers=auth, data="\n".join(lines).encode(),
                           content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert [r["line"] for r in report["rejected"]] == [2] and "`volume`" in report["rejected"][0]["reason"]
    assert report["created"] == 1


# -- a database error: reported as such, nothing written ------------------------------------------------

@pytest.mark.parametrize(("error", "status"), [
    (peewee.IntegrityError("duplicate key value violates unique constraint"), 409),
    (peewee.DataError("value too long for type character varying(12)"), 422),
    (peewee.OperationalError("database is locked"), 503),
])
def test_a_database_error_is_reported_and_nothing_is_written(client, auth, runner, tmp_path, monkeypatch,
                                                             error, status):
    """The last batch's linking fails after the first batch was written: everything is rolled back."""
    real = imports._Engine._link
    calls = {"n": 0}

    def failing(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise error
        return real(self)

    monkeypatch.setattr(imports._Engine, "_link", failing)
    response = client.post("/imports?format=ndjson", headers=auth, data=lines_across_batches(),
                           content_type="application/x-ndjson")
    body = assert_problem(response, status)
    if status == 503:
        assert response.headers["Retry-After"]
    else:
        assert "nothing was imported" in body["detail"] and "line 600" in body["detail"]
    assert client.get("/references").get_json()["total"] == 0

    calls["n"] = 0
    path = tmp_path / "lines.ndjson"
    path.write_bytes(lines_across_batches())
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, peewee.DatabaseError)
    assert client.get("/references").get_json()["total"] == 0


# -- decompression bounded ---------------------------------------------------------------------------------

def gzip_bomb(unpacked: int = 64 << 20) -> bytes:
    """A record, then blank lines (which the NDJSON reader skips, so it reads on): about 1,000 times
    smaller packed."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as packed:
        packed.write(reference_line(1).encode() + b"\n")
        chunk = b"\n" * (1 << 20)
        for _ in range(unpacked >> 20):
            packed.write(chunk)
    return out.getvalue()


def test_a_gzip_bomb_is_refused_quickly_with_413(client, auth):
    bomb = gzip_bomb()
    assert len(bomb) < 100_000
    started = time.perf_counter()
    response = client.post("/imports?format=ndjson", headers=auth, data=bomb, content_type="application/gzip")
    elapsed = time.perf_counter() - started
    body = assert_problem(response, 413)
    assert "IMPORT_MAX_RATIO" in body["detail"] and "nothing was imported" in body["detail"]
    assert elapsed < 5, elapsed  # generous: about 0.1 s here; unbounded, the whole 64 MiB is read


def test_a_gzip_file_past_the_absolute_bound_is_refused(app, client, auth, runner, tmp_path):
    app.config["IMPORT_MAX_UNPACKED_BYTES"] = 1 << 20
    lines = b"\n".join(reference_line(n).encode() for n in range(1, 8000))  # about 1.2 MB, packs ~10x
    assert len(lines) > 1 << 20
    response = client.post("/imports?format=ndjson", headers=auth, data=gzip.compress(lines),
                           content_type="application/gzip")
    assert "IMPORT_MAX_UNPACKED_BYTES" in assert_problem(response, 413)["detail"]
    assert client.get("/references").get_json()["total"] == 0
    app.config["IMPORT_MAX_UNPACKED_BYTES"] = 1 << 30
    path = tmp_path / "bomb.ndjson.gz"
    path.write_bytes(gzip_bomb())
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", "--quiet"])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert "IMPORT_MAX_RATIO" in result.output
    assert result.output.count("\n") == 1, result.output


def test_a_small_gzip_file_that_packs_well_is_imported(client, auth):
    """Below the floor (1 MiB unpacked) any ratio is fine: a short file of blank lines and one record."""
    data = gzip.compress(reference_line(1).encode() + b"\n" * 500_000)
    assert len(data) * 100 < 500_000
    response = client.post("/imports?format=ndjson", headers=auth, data=data, content_type="application/gzip")
    assert response.status_code == 200 and response.get_json()["created"] == 1


def rewritten(workbook: bytes, replace: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(workbook))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for member in source.infolist():
            archive.writestr(member.filename, replace.get(member.filename, source.read(member.filename)))
        for name, content in replace.items():
            if name not in source.namelist():
                archive.writestr(name, content)
    return out.getvalue()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WORKBOOK = FIXTURES / "ictrp_who_7jul2020.xlsx"


def test_an_xlsx_bomb_is_refused_from_its_zip_directory(client, auth):
    bomb = rewritten(WORKBOOK.read_bytes(), {"xl/media/padding.bin": b"\0" * (32 << 20)})
    assert len(bomb) < WORKBOOK.stat().st_size + 100_000
    started = time.perf_counter()
    response = client.post("/imports?format=ictrp-xlsx", headers=auth, data=bomb, content_type=XLSX)
    body = assert_problem(response, 413)
    assert "padding.bin" in body["detail"] and time.perf_counter() - started < 5
    assert client.get("/studies").get_json()["total"] == 0


SHEET = "xl/worksheets/sheet1.xml"
CELL = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>%s</t></is></c></row></sheetData></worksheet>')
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
          + CELL % b"&lol3;")
EXTERNAL = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + CELL % b"&e;"


@pytest.mark.parametrize(("part", "content", "said"), [
    (SHEET, LAUGHS, "entities"),
    (SHEET, EXTERNAL, "entities"),
    ("xl/workbook.xml", EXTERNAL, "entities"),
    ("xl/styles.xml", b'<?xml version="1.0"?><styleSheet><fonts', "malformed"),
    ("[Content_Types].xml", b"<Types", "malformed"),
])
def test_hostile_or_broken_xml_in_a_workbook_is_a_422(client, auth, part, content, said):
    workbook = rewritten(WORKBOOK.read_bytes(), {part: content})
    response = client.post("/imports?format=ictrp-xlsx", headers=auth, data=workbook, content_type=XLSX)
    body = assert_problem(response, 422)
    assert said in body["detail"] and "root:" not in body["detail"]
    assert client.get("/studies").get_json()["total"] == 0


def test_a_worksheet_broken_after_its_header_is_a_422(client, auth):
    archive = zipfile.ZipFile(WORKBOOK)
    sheet = next(n for n in archive.namelist() if n.startswith("xl/worksheets/sheet"))
    xml = archive.read(sheet)
    cut = xml[: xml.index(b"</row>", xml.index(b"</row>") + 1) + len(b"</row>")] + b"<row><c"
    response = client.post("/imports?format=ictrp-xlsx", headers=auth,
                           data=rewritten(WORKBOOK.read_bytes(), {sheet: cut}), content_type=XLSX)
    assert "malformed" in assert_problem(response, 422)["detail"]
    assert client.get("/studies").get_json()["total"] == 0


# -- JSON the parser cannot take, numbers no column holds ---------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_json_lines_nested_too_deeply_or_with_huge_numbers_are_rejected_rows(client, auth):
    lines = [reference_line(1), '{"type": "journal_article", "title": "x", "abstract": ' + DEEP + "}",
             reference_line(3).replace('"abstract": ""', '"year": ' + "9" * 5000), reference_line(4)]
    response = client.post("/imports?format=ndjson", headers=auth, data="\n".join(lines).encode(),
                           content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert [r["line"] for r in report["rejected"]] == [2, 3] and report["created"] == 2
    assert "nested too deeply" in report["rejected"][0]["reason"]
    assert "4300 digits" in report["rejected"][1]["reason"]


def ctgov_study(identifier: str, **design) -> dict:
    return {"protocolSection": {"identificationModule": {"nctId": identifier, "briefTitle": "A trial"},
                                "designModule": design}}


@pytest.mark.parametrize("count", [3_000_000_000, 10**20])
def test_a_claim_too_large_for_its_study_column_is_a_rejected_row(client, auth, count):
    lines = [json.dumps(ctgov_study("NCT04280705")),
             json.dumps(ctgov_study("NCT04280706", enrollmentInfo={"count": count}))]
    response = client.post("/imports?format=ctgov-json", headers=auth, data="\n".join(lines).encode(),
                           content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert [r["line"] for r in report["rejected"]] == [2] and report["created"] == 1, report
    assert "target_size" in report["rejected"][0]["reason"]


def test_a_json_document_nested_too_deeply_is_refused_whole(client, auth):
    body = ('{"studies": ' + DEEP + "}").encode()
    response = client.post("/imports?format=ctgov-json", headers=auth, data=body,
                           content_type="application/json")
    assert "nested too deeply" in assert_problem(response, 422)["detail"]


def test_the_unpacking_bounds_are_read_from_the_environment():
    config = load_config({"IMPORT_MAX_UNPACKED_BYTES": str(8 << 20), "IMPORT_MAX_RATIO": "20"})
    assert (config["IMPORT_MAX_UNPACKED_BYTES"], config["IMPORT_MAX_RATIO"]) == (8 << 20, 20)
    default = load_config({})
    assert (default["IMPORT_MAX_UNPACKED_BYTES"], default["IMPORT_MAX_RATIO"]) == (1 << 30, 100)
    for bad in ({"IMPORT_MAX_RATIO": "1"}, {"IMPORT_MAX_UNPACKED_BYTES": "1000"}, {"IMPORT_MAX_RATIO": "x"}):
        with pytest.raises(ConfigError):
            load_config(bad)
