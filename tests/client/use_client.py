"""A developer's script against the seeded register, through the client openapi-python-client generates
from /openapi.json (package `study_register_client`): checked with `mypy --strict` and run by
tests/test_generated_client.py as `python use_client.py BASE_URL TOKEN`."""

from __future__ import annotations

import csv
import io
import sys

from study_register_client import AuthenticatedClient, Client
from study_register_client.api.exports import get_study_export
from study_register_client.api.references import post_references
from study_register_client.api.studies import get_studies, get_study_by_id
from study_register_client.models import (
    GetStudiesFacetsItem,
    GetStudiesSort,
    GetStudiesStudyTypeItem,
    GetStudyExportFormat,
    GetStudyExportSort,
    Problem,
    ReferenceCreate,
    ReferenceCreateType,
    Study,
    StudyPage,
    StudyPageFields,
)
from study_register_client.types import Unset


def page_of(answer: Problem | StudyPage | StudyPageFields | None) -> StudyPage:
    if not isinstance(answer, StudyPage):
        raise SystemExit(f"expected a page, got {answer!r}")
    return answer


def main(base_url: str, token: str) -> None:
    public = Client(base_url=base_url, raise_on_unexpected_status=True)
    writer = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)

    # A list with a facet filter, newest first, with facet counts.
    page = page_of(get_studies.sync(client=public, study_type=[GetStudiesStudyTypeItem.INTERVENTIONAL],
                                    facets=[GetStudiesFacetsItem.STUDY_AIM],
                                    sort=GetStudiesSort.UPDATED_DESC))
    assert page.total > 0 and all(s.study_type == "Interventional" for s in page.items)
    assert page.items == sorted(page.items, key=lambda s: s.updated, reverse=True)
    assert not isinstance(page.facets, Unset)
    aims = page.facets.additional_properties["study_aim"]
    assert sum(count.count for count in aims) >= page.total
    print(f"interventional: {page.total}; aims: {', '.join(f'{a.value}={a.count}' for a in aims)}")

    # The seeded study, with its reports.
    found = page_of(get_studies.sync(client=public, registration="ChiCTR2000030261"))
    study = get_study_by_id.sync(found.items[0].id, client=public)
    assert isinstance(study, Study), study
    reports = study.references or []
    assert reports and study.reference_count == len(reports)
    titles: list[str] = [r.title for r in reports]
    print(f"{study.name}: {study.title[:40]}… {len(titles)} reports, first {titles[0][:40]}…")

    # Two pages: page 1 says a next page follows; page 2 holds the next five.
    first = page_of(get_studies.sync(client=public, page_size=5, sort=GetStudiesSort.ID))
    second = page_of(get_studies.sync(client=public, page_size=5, page=2, sort=GetStudiesSort.ID))
    assert first.next_ is not None and first.page == 1 and second.page == 2
    ids = [s.id for s in first.items + second.items]
    assert ids == sorted(set(ids)) and len(ids) == 10
    print(f"pages 1-2: {ids}")

    # Create a reference reporting the study.
    created = post_references.sync(client=writer, body=ReferenceCreate(
        type_=ReferenceCreateType.JOURNAL_ARTICLE, title="A generated client's reference",
        authors=["Chu, M"], year=2022, study_ids=[study.id]))
    assert not isinstance(created, Problem) and created is not None, created
    assert created.study_ids == [study.id] and created.year == 2022
    print(f"created reference {created.id}")

    # A 422 is a Problem naming what is wrong (not an exception).
    refused = post_references.sync(client=writer, body=ReferenceCreate(
        type_=ReferenceCreateType.JOURNAL_ARTICLE, title="Out of range", year=1200))
    assert isinstance(refused, Problem), refused
    assert refused.status == 422 and refused.errors and "year" in refused.errors.additional_properties
    print(f"422: {refused.detail}")

    # An export: the CSV as text.
    exported = get_study_export.sync(client=public, format_=GetStudyExportFormat.CSV,
                                     sort=GetStudyExportSort.ID_DESC)
    assert isinstance(exported, str), exported
    rows = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    assert len(rows) == page_of(get_studies.sync(client=public)).total
    assert int(rows[0]["id"]) > int(rows[-1]["id"])
    print(f"export: {len(rows)} studies as CSV")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
