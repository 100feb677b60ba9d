"""The register's own NDJSON export, read back: a study line is shaped like `GET /studies/{id}` (told by
its `registrations`), a reference line like an item of `GET /references` (told by its `study_ids`).

Read-only fields (`id`, `type_label`, `reference_count`, `registration_ids_found`, `study_ids`,
`link_identifier`) are ignored: ids are local to the register that exported them. `first_published` and
`updated` are kept, so an export imported into an empty register reproduces every record. A link made by
hand (`"link": "manual"`) is made by hand again, and a role a curator set (`"role_curated": true`, in
`references` or `citing`) is set again; automatic links, their roles and evidence are left to linking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

import marshmallow as ma

from ..identifiers import canonical, normalise
from ..validation import CURATABLE, Day, ReferenceCreateSchema, StudyCreateSchema
from . import ArticleRecord, ExportedStudy, FormatError, Row, RowError
from .reading import load_json

READ_ONLY = ("id", "type_label", "reference_count", "cited_by_count", "registration_ids_found", "study_ids",
             "cited_study_ids", "link", "link_identifier", "references", "citing", "dissemination",
             "facet_sources", "curated", "countries", "role", "role_curated", "confidence", "rule",
             "evidence")
# What a study line says of its derivation, restored as it was: where each value came from (a JSON object,
# at most this long written out), the fields a curator set, and the dissemination flags and days.
MAX_SOURCES_CHARS = 200_000
_day = Day(allow_none=True)
_studies = StudyCreateSchema(unknown=ma.EXCLUDE)
_references = ReferenceCreateSchema(unknown=ma.EXCLUDE)


def parse(stream: TextIO, info: dict) -> Iterator[Row]:
    info["layout"] = "register-ndjson"
    seen = False
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            document = load_json(line)
        except json.JSONDecodeError as error:
            if not seen:
                raise FormatError(f"This is not NDJSON: line {number} is not a JSON object ({error.msg}).") \
                    from None
            raise FormatError(f"Line {number} is not a JSON object ({error.msg}; truncated?).") from None
        except RowError as error:
            seen = True
            yield Row(number, error=str(error))
            continue
        if not isinstance(document, dict):
            raise FormatError(f"Line {number} is not a JSON object: NDJSON holds one record per line.")
        seen = True
        try:
            yield Row(number, record=map_line(document))
        except RowError as error:
            yield Row(number, error=str(error))
    if not seen:
        raise FormatError("The file holds no record.")


def _load(schema: ma.Schema, data: dict) -> dict:
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        field, messages = next(iter(_flat(error.messages).items()))
        raise RowError(f"`{field}`: {messages[0]}") from None


def _flat(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "record": [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]}


def _reference(data: Any) -> dict:
    if not isinstance(data, dict):
        raise RowError("a reference is not an object.")
    return _load(_references, {k: v for k, v in data.items() if k not in READ_ONLY})


def _derivation(document: dict) -> dict:
    """The study columns behind `facet_sources`, `curated` and `dissemination` of an exported study."""
    out: dict[str, Any] = {}
    sources = document.get("facet_sources")
    if sources is not None:
        if not isinstance(sources, dict):
            raise RowError("`facet_sources` is not an object.")
        text = json.dumps(sources, sort_keys=True, ensure_ascii=False)
        if len(text) > MAX_SOURCES_CHARS:
            raise RowError(f"`facet_sources` is longer than {MAX_SOURCES_CHARS:,} characters.")
        out["facet_sources"] = text
    curated = document.get("curated")
    if curated is not None:
        if not isinstance(curated, list) or any(name not in CURATABLE for name in curated):
            raise RowError(f"`curated` is not a list of study fields ({', '.join(CURATABLE)}).")
        out["curated"] = json.dumps(sorted(set(curated)))
    dissemination = document.get("dissemination")
    if dissemination is not None:
        if not isinstance(dissemination, dict):
            raise RowError("`dissemination` is not an object.")
        for where in ("registry", "article", "preprint"):
            entry = dissemination.get(where) or {}
            if not isinstance(entry, dict) or not isinstance(entry.get("results", False), bool):
                raise RowError(f"`dissemination.{where}` is not an object with a boolean `results`.")
            try:
                day = _day.deserialize(entry.get("date"))
            except ma.ValidationError as error:
                raise RowError(f"`dissemination.{where}.date`: {error.messages[0]}") from None
            out[f"results_{where}"] = bool(entry.get("results"))
            out[f"results_{where}_date"] = day
    return out


def map_line(document: dict) -> ArticleRecord | ExportedStudy:
    if "registrations" in document:
        linked = []
        for name in ("references", "citing"):
            listed = document.get(name) or []
            if not isinstance(listed, list):
                raise RowError(f"`{name}` is not a list.")
            for index, raw in enumerate(listed):
                try:
                    if not isinstance(raw, dict):
                        raise RowError("is not an object.")
                    role = raw.get("role") if raw.get("role_curated") is True else None
                    if role not in (None, "reports", "cites"):
                        raise RowError(f"`role` {role!r} is neither `reports` nor `cites`.")
                    kind = "manual" if raw.get("link") == "manual" else "auto"
                    linked.append((_reference(raw), kind, role))
                except RowError as error:
                    raise RowError(f"{name}[{index}]: {error}") from None
        countries = document.get("countries") or []
        if not isinstance(countries, list):
            raise RowError("`countries` is not a list.")
        study = _load(_studies, {
            **{k: v for k, v in document.items() if k not in READ_ONLY},
            "countries": [c.get("code") if isinstance(c, dict) else c for c in countries]})
        study.update(_derivation(document))
        registrations = []
        for item in study.pop("registrations", []):
            known = canonical(item["identifier"])
            identifier = known[0] if known else normalise(item["identifier"])
            registry = item.get("registry") or (known[1] if known else None)
            if registry is None:
                raise RowError(f"the registry of {identifier!r} cannot be told from its pattern.")
            registrations.append((identifier, registry))
        return ExportedStudy(study=study, registrations=registrations, references=linked)
    if "study_ids" in document or "type" in document:
        return ArticleRecord(reference=_reference(document), complete=True)
    raise RowError("is neither a study (with `registrations`) nor a reference (with `study_ids`).")
