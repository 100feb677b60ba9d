"""Automatic linking by registration identifier, both ways, inside the caller's transaction.

A reference is linked to every study that owns an identifier found in its `registration_id`, title,
abstract or notes (`link: auto`, with that identifier). A manual link is never removed by
automation; a manual unlink is remembered (LinkSuppression) and never redone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from ..db import any_of, changed, database, insert_rows, select_in, update_rows
from ..identifiers import canonical, find_identifiers, normalise
from ..models import (
    LinkSuppression,
    Reference,
    ReferenceIdentifier,
    Registration,
    StudyReference,
    utcnow,
)

TEXT_FIELDS = ("registration_id", "title", "abstract", "notes")


def canonical_identifier(identifier: str) -> str:
    """The canonical form of a registration identifier, or its normalised form when none fits."""
    known = canonical(identifier)
    return known[0] if known else normalise(identifier)


def identifiers_in(values: dict) -> list[tuple[str, str]]:
    """(canonical identifier, registry) found in a reference's text fields, in order, unique."""
    found: dict[str, str] = {}
    own = values.get("registration_id")
    if own:
        known = canonical(own)
        if known:
            found[known[0]] = known[1]
    for name in TEXT_FIELDS:
        for hit in find_identifiers(values.get(name) or ""):
            found.setdefault(hit.identifier, hit.registry)
    return list(found.items())


def _remember_identifiers(reference_id: int, found: Sequence[tuple[str, str]]) -> None:
    ReferenceIdentifier.delete().where(ReferenceIdentifier.reference == reference_id).execute()
    if found:
        ReferenceIdentifier.insert_many(
            [{"reference": reference_id, "identifier": i, "registry": r} for i, r in found]).execute()


def relink_reference(reference: Reference, touch: Callable[[Iterable[int]], None]) -> int:
    """Re-scan one reference and make its auto links match its text; return links added.

    ``touch`` is told the studies whose set of references changed.
    """
    found = identifiers_in({name: getattr(reference, name) for name in TEXT_FIELDS})
    _remember_identifiers(reference.id, found)
    order = {identifier: i for i, (identifier, _) in enumerate(found)}
    owners: dict[int, str] = {}
    if found:
        rows = (Registration.select(Registration.study, Registration.identifier)
                .where(Registration.identifier.in_(list(order))).tuples())
        # One study may own several cited identifiers (two registrations of one trial): one link,
        # made by the identifier cited first.
        for study_id, identifier in sorted(rows, key=lambda row: order[row[1]]):
            owners.setdefault(study_id, identifier)
    added, moved = _reconcile("reference", reference.id, owners)
    if moved:
        touch(moved)
    return added


def relink_study(study_id: int, touch_references: Callable[[Iterable[int]], None]) -> int:
    """Make the study's auto links match its registrations (after they changed); return links added.

    ``touch_references`` is told the references whose set of studies changed.
    """
    owned = [i for (i,) in Registration.select(Registration.identifier)
             .where(Registration.study == study_id).tuples()]
    citing: dict[int, str] = {}
    if owned:
        rows = (ReferenceIdentifier.select(ReferenceIdentifier.reference, ReferenceIdentifier.identifier)
                .where(ReferenceIdentifier.identifier.in_(owned))
                .order_by(ReferenceIdentifier.id).tuples())
        for reference_id, identifier in rows:
            citing.setdefault(reference_id, identifier)
    added, moved = _reconcile("study", study_id, citing)
    if moved:
        touch_references(moved)
    return added


def _reconcile(end: str, end_id: int, wanted: dict[int, str]) -> tuple[int, list[int]]:
    """Make the auto links of one study or reference (``end``) be exactly ``wanted`` (other end's id
    -> identifier making the link), sparing manual links and remembered manual unlinks. An auto link
    kept takes the identifier wanted (the one cited first among the study's: it changes when the
    study gains a registration cited before the one that made the link).

    Returns how many links were added, and the other ends whose links changed.
    """
    other = "reference" if end == "study" else "study"
    mine = getattr(StudyReference, end) == end_id
    links = {getattr(link, f"{other}_id"): link for link in StudyReference.select().where(mine)}
    existing = {key: link.link for key, link in links.items()}
    suppressed = {i for (i,) in LinkSuppression.select(getattr(LinkSuppression, other))
                  .where(getattr(LinkSuppression, end) == end_id).tuples()}
    now = utcnow()
    added = [{end: end_id, other: key, "link": "auto", "identifier": identifier, "created": now}
             for key, identifier in wanted.items() if key not in existing and key not in suppressed]
    if added:
        StudyReference.insert_many(added).execute()
    stale = [key for key, link in existing.items() if link == "auto" and key not in wanted]
    if stale:
        StudyReference.delete().where(mine & getattr(StudyReference, other).in_(stale)).execute()
    retagged = [key for key, link in links.items()
                if link.link == "auto" and key in wanted and link.identifier != wanted[key]]
    for key in retagged:
        StudyReference.update(identifier=wanted[key]).where(StudyReference.id == links[key].id).execute()
    others = [row[other] for row in added] + stale + retagged
    if others:
        changed(studies=[end_id] if end == "study" else others)
    return len(added), others


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
        rows = (ReferenceIdentifier.select(ReferenceIdentifier.reference, ReferenceIdentifier.identifier)
                .where(ReferenceIdentifier.reference.in_(list(reference_ids)))
                .order_by(ReferenceIdentifier.id).tuples())
        for reference_id, identifier in rows:
            found[reference_id].append(identifier)
    return found


def remember_identifiers_bulk(found: dict[int, Sequence[tuple[str, str]]], *,
                              new: Collection[int] = ()) -> None:
    """Replace the identifiers found of many references at once (bulk form of what `relink_reference`
    stores), keeping each reference's order. References in ``new`` (just created) have none to replace."""
    if not found:
        return
    ids = [i for i in found if i not in new]
    for start in range(0, len(ids), 5000):
        condition, params = any_of("reference_id", ids[start:start + 5000])
        database.execute_sql(f"DELETE FROM reference_identifier WHERE {condition}", params)
    insert_rows(ReferenceIdentifier, [{"reference": r, "identifier": i, "registry": g}
                                      for r, pairs in found.items() for i, g in pairs])


def relink_references(reference_ids: Iterable[int]) -> tuple[int, set[int], set[int]]:
    """`relink_reference` for many references in a fixed number of queries, from the identifiers found
    already stored for them: their auto links become exactly the studies owning an identifier they cite
    (by the identifier cited first), sparing manual links and remembered manual unlinks.

    Returns the links added, and the studies and references whose links changed.
    """
    ids = sorted(set(reference_ids))
    if not ids:
        return 0, set(), set()
    cited: dict[int, list[str]] = {r: [] for r in ids}
    rows = select_in("SELECT reference_id, identifier, id FROM reference_identifier WHERE {where}",
                     "reference_id", ids)
    for reference_id, identifier, _ in sorted(rows, key=lambda row: row[2]):
        cited[reference_id].append(identifier)
    every = {i for found in cited.values() for i in found}
    owner: dict[str, int] = dict(select_in("SELECT identifier, study_id FROM registration WHERE {where}",
                                           "identifier", every))
    wanted: dict[tuple[int, int], str] = {}
    for reference_id, found in cited.items():
        for identifier in found:
            study_id = owner.get(identifier)
            if study_id is not None:
                wanted.setdefault((reference_id, study_id), identifier)
    existing, link_ids, made_by = {}, {}, {}
    links = "SELECT id, reference_id, study_id, link, identifier FROM study_reference WHERE {where}"
    for link_id, r, s, link, identifier in select_in(links, "reference_id", ids):
        existing[(r, s)], link_ids[(r, s)], made_by[(r, s)] = link, link_id, identifier
    suppressed = set(select_in("SELECT reference_id, study_id FROM link_suppression WHERE {where}",
                               "reference_id", ids))
    now = utcnow()
    added = [{"reference": r, "study": s, "link": "auto", "identifier": identifier, "created": now}
             for (r, s), identifier in wanted.items() if (r, s) not in existing and (r, s) not in suppressed]
    insert_rows(StudyReference, added)
    stale = [(r, s) for (r, s), link in existing.items() if link == "auto" and (r, s) not in wanted]
    if stale:
        condition, params = any_of("id", sorted(link_ids[pair] for pair in stale))
        database.execute_sql(f"DELETE FROM study_reference WHERE {condition}", params)
    # An auto link kept takes the identifier cited first among its study's (a registration the study
    # gained may be cited before the one that made the link), as a link made now would.
    retagged = [pair for pair, identifier in wanted.items()
                if existing.get(pair) == "auto" and made_by[pair] != identifier]
    update_rows(StudyReference, [(link_ids[pair], {"identifier": wanted[pair]}) for pair in retagged])
    changed = [(row["reference"], row["study"]) for row in added] + stale + retagged
    return len(added), {s for _, s in changed}, {r for r, _ in changed}
