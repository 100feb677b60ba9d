"""Importing the register's own NDJSON export with `study-register import`: round trip, idempotence,
rejected lines, refused files, dry runs — on both databases."""

from __future__ import annotations

import json

from tests.conftest import _reset


def _export(client) -> tuple[list[dict], list[dict]]:
    studies = [json.loads(line) for line in
               client.get("/studies?format=ndjson").get_data(as_text=True).splitlines()]
    unlinked = [json.loads(line) for line in
                client.get("/references?format=ndjson&linked=false").get_data(as_text=True).splitlines()]
    return studies, unlinked


def _without_ids(study: dict) -> dict:
    study = {k: v for k, v in study.items() if k != "id"}
    study["references"] = sorted(({k: v for k, v in r.items() if k not in ("id", "study_ids")}
                                  for r in study["references"]), key=lambda r: r["title"])
    return study


def _write(path, records) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def _import(runner, path, *extra):
    result = runner.invoke(args=["import", str(path), "--format", "ndjson", *extra])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def test_export_then_import_into_an_empty_register_reproduces_it(client, runner, seeded, database_url,
                                                                 tmp_path):
    studies, unlinked = _export(client)
    assert len(studies) == 36
    before = client.get("/stats").get_json()
    _reset(database_url)
    assert client.get("/studies").get_json()["total"] == 0
    result, report = _import(runner, _write(tmp_path / "studies.ndjson", studies))
    assert result.exit_code == 0, result.output
    assert report["studies"]["created"] == 36 and report["rejected"] == []
    _import(runner, _write(tmp_path / "refs.ndjson", unlinked))
    again, again_unlinked = _export(client)
    key = lambda s: s["name"]  # noqa: E731
    assert [_without_ids(s) for s in sorted(again, key=key)] == \
        [_without_ids(s) for s in sorted(studies, key=key)]
    assert len(again_unlinked) == len(unlinked)
    after = client.get("/stats").get_json()
    assert {k: v for k, v in after.items()} == before
    # the search index was built as the records came in
    assert [s["name"] for s in client.get("/studies?q=nebulization%20exosomes").get_json()["items"]] \
        == ["ChiCTR2000030261"]


def test_importing_the_same_file_twice_changes_nothing(client, runner, seeded, tmp_path):
    studies, _ = _export(client)
    path = _write(tmp_path / "studies.ndjson", studies)
    result, report = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert report["studies"] == {"created": 0, "updated": 0, "unchanged": 36}
    assert report["linked"] == 0
    again, _ = _export(client)
    assert again == studies  # same records, same `updated`


def test_a_newer_version_updates_the_record_and_its_index(client, runner, seeded, tmp_path):
    studies, _ = _export(client)
    chictr = next(s for s in studies if s["name"] == "ChiCTR2000030261")
    chictr["title"] = "Wombat nebulisation in COVID-19"
    chictr["updated"] = "2024-01-02T03:04:05Z"
    result, report = _import(runner, _write(tmp_path / "one.ndjson", [chictr]))
    assert result.exit_code == 0, result.output
    assert report["studies"] == {"created": 0, "updated": 1, "unchanged": 0}
    stored = client.get(f"/studies/{chictr['id']}").get_json()
    assert stored["title"] == chictr["title"] and stored["updated"] == "2024-01-02T03:04:05Z"
    assert [s["name"] for s in client.get("/studies?q=wombat").get_json()["items"]] == ["ChiCTR2000030261"]


def test_bad_lines_are_rejected_with_their_number_and_the_rest_imported(client, runner, tmp_path):
    good = {"name": "ISRCTN12345678", "title": "A good study",
            "registrations": [{"identifier": "ISRCTN12345678"}]}
    bad_facet = dict(good, name="other", title="x", study_type="Sideways", registrations=[])
    path = tmp_path / "mixed.ndjson"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad_facet) + "\n{not json\n[1, 2]\n",
                    encoding="utf-8")
    result, report = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert report["studies"]["created"] == 1
    assert [r["line"] for r in report["rejected"]] == [2, 3, 4]
    assert "study_type" in report["rejected"][0]["reason"]
    assert client.get("/studies").get_json()["total"] == 1


def test_a_file_that_is_not_ndjson_is_refused_and_nothing_written(client, runner, tmp_path):
    csv_file = tmp_path / "trials.csv"
    csv_file.write_text("TrialID,Public title\nNCT04280705,ACTT\n", encoding="utf-8")
    result, _ = _import(runner, csv_file)
    assert result.exit_code != 0
    assert "refused" in result.output and "line 1" in result.output
    latin1 = tmp_path / "latin1.ndjson"
    latin1.write_bytes(json.dumps({"name": "ISRCTN12345678", "title": "ok",
                                   "registrations": [{"identifier": "ISRCTN12345678"}]}).encode()
                       + b"\n" + '{"name": "x", "title": "S\xe3o Paulo"}\n'.encode("latin-1"))
    result, _ = _import(runner, latin1)
    assert result.exit_code != 0 and "not UTF-8" in result.output and "line 2" in result.output
    assert client.get("/studies").get_json()["total"] == 0  # line 1 was not kept either


def test_a_dry_run_reports_and_writes_nothing(client, runner, tmp_path):
    path = _write(tmp_path / "one.ndjson", [{"name": "ISRCTN12345678", "title": "A study",
                                             "registrations": [{"identifier": "ISRCTN12345678"}]}])
    result, report = _import(runner, path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert report["dry_run"] is True and report["studies"]["created"] == 1
    assert client.get("/studies").get_json()["total"] == 0
    assert client.get("/studies?q=ISRCTN12345678").get_json()["total"] == 0


def test_a_utf8_bom_is_accepted(client, runner, tmp_path):
    path = tmp_path / "bom.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"name": "ISRCTN12345678", "title": "S\u00e3o Paulo",
                                                   "registrations": [{"identifier": "ISRCTN12345678"}]},
                                                  ensure_ascii=False).encode() + b"\n")
    result, report = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert client.get("/studies?q=sao").get_json()["items"][0]["title"] == "S\u00e3o Paulo"
