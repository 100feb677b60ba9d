"""Loading the register's seed records (seeds/*.json) idempotently: loading twice gives the same database."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import marshmallow as ma

from .api.schemas.meta import NoticeCreateSchema
from .api.schemas.references import ReferenceCreateSchema
from .api.schemas.studies import StudyCreateSchema
from .db import changed, write_transaction
from .domain import linking, notices, references, studies
from .domain.errors import DomainError
from .domain.linking import canonical_identifier
from .domain.references import normalise_doi
from .models import Notice, Reference, Registration, Study, StudyReference


class SeedError(ValueError):
    """A seed file that cannot be loaded; nothing from it was written."""


@dataclass
class SeedReport:
    studies_created: int = 0
    studies_updated: int = 0
    references_created: int = 0
    references_updated: int = 0
    notices_created: int = 0
    files: list[str] = field(default_factory=list)


def _find_study(data: dict) -> int | None:
    keys = [canonical_identifier(r["identifier"]) for r in data.get("registrations", [])]
    if keys:
        owner = Registration.select(Registration.study).where(Registration.identifier.in_(keys)).first()
        if owner is not None:
            return owner.study_id
    found = Study.select(Study.id).where(Study.name == data.get("name", "")).first()
    return found.id if found else None


def _find_reference(data: dict) -> int | None:
    """Existing reference with the same registry id, DOI, PMID, or title and year."""
    checks = []
    if data.get("registration_id"):
        checks.append(Reference.registration_id == canonical_identifier(data["registration_id"]))
    if data.get("doi"):
        checks.append(Reference.doi == normalise_doi(data["doi"]))
    if data.get("pmid"):
        checks.append(Reference.pmid == data["pmid"])
    for check in checks:
        found = Reference.select(Reference.id).where(check).first()
        if found:
            return found.id
    if checks:  # identified records are matched by their identifiers only
        return None
    found = Reference.select(Reference.id).where(
        (Reference.title == data["title"]) & (Reference.year == data.get("year"))).first()
    return found.id if found else None


def _load(schema: ma.Schema, data: dict, where: str) -> dict:
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        raise SeedError(f"{where}: {error.messages}") from None


def load_seed(document: dict, report: SeedReport, source: str) -> None:
    """Upsert the studies, references and notices of one seed document (inside the caller's transaction)."""
    study_schema, reference_schema = StudyCreateSchema(), ReferenceCreateSchema()
    dates: list[tuple] = []  # the seed's own dates, applied once everything is written
    for i, raw in enumerate(document.get("studies", [])):
        raw = dict(raw)
        raw_refs = raw.pop("references", [])
        data = _load(study_schema, raw, f"{source}: studies[{i}]")
        study_id = _find_study(data)
        if study_id is None:
            study_id = studies.create_study(data)
            report.studies_created += 1
        else:
            studies.update_study(study_id, data)
            report.studies_updated += 1
        for j, raw_ref in enumerate(raw_refs):
            ref = _load(reference_schema, raw_ref, f"{source}: studies[{i}].references[{j}]")
            reference_id = _find_reference(ref)
            if reference_id is None:
                reference_id = references.create_reference(ref)
                report.references_created += 1
            else:
                references.update_reference(reference_id, ref)
                report.references_updated += 1
            _, linked = StudyReference.get_or_create(study=study_id, reference=reference_id,
                                                     defaults={"link": "manual"})
            if linked:
                linking.relink_references([reference_id])  # the manual link's evidence
                changed(studies=[study_id])
            if ref.get("updated"):
                dates.append((Reference, reference_id, ref["updated"]))
        if data.get("updated"):
            dates.append((Study, study_id, data["updated"]))
    # Writing a reference or a link moves dates (also of other studies sharing it): the seed's own
    # dates win, so they are set last.
    for model, record_id, updated in dates:
        model.update(updated=updated).where(model.id == record_id).execute()
    notice_schema = NoticeCreateSchema()
    for k, raw in enumerate(document.get("notices", [])):
        data = _load(notice_schema, raw, f"{source}: notices[{k}]")
        exists = Notice.select().where(Notice.message == data["message"]).exists()
        if not exists:
            notices.create_notice(data)
            report.notices_created += 1


PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent


def shipped_path(name: str) -> Path | None:
    """A file or folder the wheel ships inside the package (pyproject.toml's
    `[tool.hatch.build.targets.wheel.force-include]` puts the checkout's `seeds/` and `gunicorn.conf.py`
    at `service/seeds/` and `service/gunicorn.conf.py`), else the same name at the top of the checkout
    this package runs from (an editable install, or the source tree itself); None when neither exists."""
    for candidate in (PACKAGE_DIR / name, CHECKOUT_DIR / name):
        if candidate.exists():
            return candidate
    return None


def default_seed_dir() -> Path:
    """The register's own seed files: the wheel's copy, or `seeds/` of the checkout."""
    found = shipped_path("seeds")
    if found is None:
        raise SeedError(f"no seeds folder: neither {PACKAGE_DIR / 'seeds'} (an installed wheel) nor "
                        f"{CHECKOUT_DIR / 'seeds'} (a checkout); name one with --dir")
    return found


def seed_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if p.is_file())


def load_seeds(paths: Iterable[Path]) -> SeedReport:
    """Load every seed file in one transaction: all of them or nothing."""
    report = SeedReport()
    with write_transaction():
        for path in paths:
            try:
                document = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise SeedError(f"{path}: {error}") from None
            if not isinstance(document, dict):
                raise SeedError(f"{path}: expected an object with `studies` and `notices`")
            try:
                load_seed(document, report, str(path))
            except DomainError as error:
                raise SeedError(f"{path}: {error.detail} {error.errors or ''}".rstrip()) from None
            report.files.append(str(path))
    return report


def register_is_empty() -> bool:
    return not Study.select().exists()
