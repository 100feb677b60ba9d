"""Automatic linking by registration identifier, both ways, inside the caller's transaction.

Every identifier found in a reference's `registration_id`, title, abstract or notes is kept with where it
was found (`ReferenceIdentifier`, `domain.evidence.find`). A reference is linked (`link: auto`) to every
study owning one of them, and `domain.evidence.assess` gives each link its role (`reports` / `cites`),
confidence and evidence, from everything the reference names at once. A manual link is never removed by
automation and keeps `reports` (its evidence is still shown); a role a curator set (`role_curated`) is
never changed; a manual unlink is remembered (LinkSuppression) and never redone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence

from ..db import any_of, changed, database, insert_rows, select_in, update_rows
from ..identifiers import canonical, normalise
from ..models import (
    LinkSuppression,
    Reference,
    ReferenceIdentifier,
    Registration,
    StudyReference,
    utcnow,
)
from . import evidence

TEXT_FIELDS = ("registration_id", "title", "abstract", "notes")
# Fields whose change can change a link's role without changing the identifiers found.
DECIDING_FIELDS = ("type", "title", "publication_types")

Found = tuple[str, str, list[dict]]  # (canonical identifier, registry, evidence items)


def canonical_identifier(identifier: str) -> str:
    """The canonical form of a registration identifier, or its normalised form when none fits."""
    known = canonical(identifier)
    return known[0] if known else normalise(identifier)


def identifiers_in(values: dict) -> list[Found]:
    """The identifiers found in a reference's text fields, in order, unique, each with its evidence."""
    return evidence.find(values)


def remember_identifiers_bulk(found: dict[int, Sequence[Found]], *, new: Collection[int] = ()) -> None:
    """Replace the identifiers found of many references at once, keeping each reference's order.
    References in ``new`` (just created) have none to replace."""
    if not found:
        return
    ids = [i for i in found if i not in new]
    for start in range(0, len(ids), 5000):
        condition, params = any_of("reference_id", ids[start:start + 5000])
        database.execute_sql(f"DELETE FROM reference_identifier WHERE {condition}", params)
    insert_rows(ReferenceIdentifier, [{"reference": r, "identifier": i, "registry": g,
                                       "evidence": evidence.dumps(items)}
                                      for r, triples in found.items() for i, g, items in triples])


def relink_reference(reference: Reference, touch: Callable[[Iterable[int]], None]) -> int:
    """Re-scan one reference and make its links match its text; return links added. ``touch`` is told
    the studies whose links changed."""
    found = identifiers_in({name: getattr(reference, name) for name in TEXT_FIELDS})
    remember_identifiers_bulk({reference.id: found})
    added, studies, _ = relink_references([reference.id])
    if studies:
        changed(studies=studies)
        touch(sorted(studies))
    return added


def relink_study(study_id: int, touch_references: Callable[[Iterable[int]], None]) -> int:
    """Make the links of every reference naming the study's registrations, or linked to it
    automatically, match the rules (after its registrations changed); return links added.
    ``touch_references`` is told the references whose links changed."""
    owned = [i for (i,) in Registration.select(Registration.identifier)
             .where(Registration.study == study_id).tuples()]
    references = {r for (r,) in select_in("SELECT reference_id FROM reference_identifier WHERE {where}",
                                          "identifier", owned)}
    references.update(r for (r,) in StudyReference.select(StudyReference.reference)
                      .where((StudyReference.study == study_id) & (StudyReference.link == "auto")).tuples())
    added, studies, changed_references = relink_references(references)
    if studies:
        changed(studies=studies)
    if changed_references:
        touch_references(sorted(changed_references))
    return added


def suppress(study_id: int, reference_id: int) -> None:
    """Remember a manual unlink."""
    if not LinkSuppression.select().where((LinkSuppression.study == study_id)
                                          & (LinkSuppression.reference == reference_id)).exists():
        LinkSuppression.create(study=study_id, reference=reference_id, created=utcnow())


def unsuppress(study_id: int, reference_id: int) -> None:
    """A manual link lifts an earlier manual unlink."""
    LinkSuppression.delete().where((LinkSuppression.study == study_id)
                                   & (LinkSuppression.reference == reference_id)).execute()


def identifiers_found(reference_ids: Sequence[int]) -> dict[int, list[str]]:
    """The identifiers found in each reference (one query)."""
    found: dict[int, list[str]] = {r: [] for r in reference_ids}
    if reference_ids:
        # Raw SQL: building peewee's in_ for an export's batch costs more than running the query.
        rows = select_in("SELECT reference_id, identifier FROM reference_identifier WHERE {where} "
                         "ORDER BY id", "reference_id", reference_ids)
        for reference_id, identifier in rows:
            found[reference_id].append(identifier)
    return found


def study_titles(study_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each study's titles for title matches: its own and every source record's of its registrations."""
    titles: dict[int, list[str]] = defaultdict(list)
    for study_id, title in select_in("SELECT id, title FROM study WHERE {where}", "id", study_ids):
        titles[study_id].append(title)
    rows = select_in("SELECT r.study_id, s.title FROM registration AS r JOIN source_record AS s "
                     "ON s.identifier = r.identifier WHERE s.title IS NOT NULL AND {where}",
                     "r.study_id", study_ids)
    for study_id, title in rows:
        if title not in titles[study_id]:
            titles[study_id].append(title)
    return titles


def stored_evidence(stored: str | None) -> tuple[str | None, list[dict]]:
    """A link's stored evidence as (rule, evidence items); a list of items alone has no rule."""
    value = json.loads(stored or "[]")
    if isinstance(value, dict):
        return value.get("rule"), value.get("items", [])
    return None, value


def link_evidence(rule: str, items: list[dict]) -> str:
    """A link's stored evidence: the rule that gave its role and the evidence items."""
    return json.dumps({"rule": rule, "items": items}, ensure_ascii=False, separators=(",", ":"))


def relink_references(reference_ids: Iterable[int]) -> tuple[int, set[int], set[int]]:
    """Make the links of many references follow the rules, in a fixed number of queries, from the
    identifiers found already stored for them: their auto links become exactly the studies owning an
    identifier they cite (by the identifier cited first), each with the role, confidence and evidence
    `evidence.assess` gives; manual links keep their kind and, unless a curator set the role, take
    `reports` and the evidence found; remembered manual unlinks stay unlinked.

    Returns the links added, and the studies and references whose links changed.
    """
    ids = sorted(set(reference_ids))
    if not ids:
        return 0, set(), set()
    cited: dict[int, list[tuple[str, list[dict]]]] = {r: [] for r in ids}
    rows = select_in("SELECT reference_id, identifier, evidence, id FROM reference_identifier WHERE {where}",
                     "reference_id", ids)
    for reference_id, identifier, items, _ in sorted(rows, key=lambda row: row[3]):
        cited[reference_id].append((identifier, json.loads(items or "[]")))
    every = {i for found in cited.values() for i, _ in found}
    owner: dict[str, int] = dict(select_in("SELECT identifier, study_id FROM registration WHERE {where}",
                                           "identifier", every))
    facts = {r: evidence.Facts(type=t, title=title or "", registration_id=registration,
                               publication_types=tuple(json.loads(types or "[]")))
             for r, t, title, registration, types in select_in(
                 'SELECT id, type, title, registration_id, publication_types FROM "reference" WHERE {where}',
                 "id", ids)}
    titles = study_titles({owner[i] for found in cited.values() for i, _ in found if i in owner})
    existing: dict[tuple[int, int], tuple] = {}
    links = ("SELECT id, reference_id, study_id, link, identifier, role, role_curated, confidence, evidence "
             "FROM study_reference WHERE {where}")
    for row in select_in(links, "reference_id", ids):
        existing[(row[1], row[2])] = row
    suppressed = set(select_in("SELECT reference_id, study_id FROM link_suppression WHERE {where}",
                               "reference_id", ids))
    now = utcnow()
    added: list[dict] = []
    updates: list[tuple[int, dict]] = []
    stale: list[int] = []
    changed_pairs: list[tuple[int, int]] = []
    for reference_id in ids:
        if reference_id not in facts:
            continue
        decisions = evidence.assess(facts[reference_id], cited[reference_id], owner, titles)
        for study_id, decision in decisions.items():
            pair = (reference_id, study_id)
            if pair in suppressed and pair not in existing:
                continue
            row = existing.get(pair)
            if row is None:
                added.append({"reference": reference_id, "study": study_id, "link": "auto",
                              "identifier": decision.identifier, "role": decision.role,
                              "confidence": decision.confidence,
                              "evidence": link_evidence(decision.rule, decision.evidence), "created": now})
                changed_pairs.append(pair)
                continue
            wanted = _wanted(row, decision)
            if wanted:
                updates.append((row[0], wanted))
                changed_pairs.append(pair)
        for pair, row in existing.items():
            if pair[0] != reference_id or pair[1] in decisions:
                continue
            if row[3] == "auto":
                stale.append(row[0])
                changed_pairs.append(pair)
            else:
                wanted = _wanted(row, None)
                if wanted:
                    updates.append((row[0], wanted))
                    changed_pairs.append(pair)
    insert_rows(StudyReference, added)
    if stale:
        condition, params = any_of("id", sorted(stale))
        database.execute_sql(f"DELETE FROM study_reference WHERE {condition}", params)
    update_rows(StudyReference, updates)
    return len(added), {s for _, s in changed_pairs}, {r for r, _ in changed_pairs}


def _wanted(row: tuple, decision: evidence.Decision | None) -> dict:
    """The columns of an existing link (``row`` as selected in `relink_references`) that differ from the
    rules' ``decision`` (None: the rules name no such link, so only a manual link is left)."""
    _, _, _, link, identifier, role, role_curated, confidence, stored = row
    items = decision.evidence if decision is not None else []
    if link == "auto" and not role_curated:
        target = {"identifier": decision.identifier, "role": decision.role,
                  "confidence": decision.confidence, "evidence": link_evidence(decision.rule, items)}
    elif role_curated:
        target = {"confidence": evidence.BY_HAND, "evidence": link_evidence("curator", items)}
    else:
        # A link made by hand is a report (its maker said so), with whatever evidence the rules find.
        target = {"role": "reports", "confidence": evidence.BY_HAND,
                  "evidence": link_evidence("manual", items)}
    current = {"identifier": identifier, "role": role, "confidence": confidence, "evidence": stored}
    return {name: value for name, value in target.items() if current[name] != value}
