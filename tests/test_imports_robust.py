"""Imports never end in a 500 or a traceback (issue 13): records changing across batches, rows the database
would refuse, database errors, decompression bombs and hostile XML inside a workbook."""

from __future__ import annotations

import json

from service.db import database
from service.models import Reference, ReferenceIdentifier


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
