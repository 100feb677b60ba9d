"""Duplicate studies: candidate pairs and their score, rejected pairs, merging two studies, splitting one.

A pair of studies is a *candidate* when one of two signals joins them:

* **same title across registries**: a normalised title (case, accents, punctuation and spacing
  ignored) of one study equals one of the other's, and the two hold no registration in a common
  registry (one registry does not register one trial twice). A study's titles are its own title, the
  titles of the trial registry records linked to it, and the titles its registrations' source records
  give (``source_record.title``). DIRECCT's placeholder titles ("Untitled trial registered as ...")
  and titles of fewer than ``MIN_TITLE_WORDS`` words are no signal, nor a title shared by more than
  ``MAX_STUDIES_PER_TITLE`` studies (a generic heading, not one trial).
* **an article cites both**: a reference that is not a trial registry record names registration
  identifiers (``reference_identifier``) held by both studies, and the two share no registry (an
  article citing two NCT numbers reports two trials: 589 of the 666 pairs an article joins in the
  real data set). A reference naming more than ``MAX_STUDIES_PER_ARTICLE`` studies is a review, not
  a duplicate signal.

The score is ``1 - (1 - t)(1 - a)``: ``t`` = ``TITLE_WEIGHT`` (0.7) for a shared title (however many
titles match), ``a`` the strongest article signal (``ARTICLE_WEIGHTS``: 0.3 for an article naming exactly
the two studies, 0.1 for one naming three). Articles are a weak signal and do not add up: papers
discussing the same few early trials (lopinavir, remdesivir, tocilizumab) each name two or three of them;
on the real data set the pairs only articles join were, hand-checked, different trials, while nearly all
pairs with one title were one trial (README). One title: 0.7; one article naming the two: 0.3; both: 0.79;
an article naming three: 0.1.
Candidates are computed in Python from six queries over the whole register (no candidate table to keep
current).

Merging and splitting each run in one write transaction; the derivation hook and the search index
refresh run before it commits (``changed``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import ftfy
from peewee import IntegrityError

from ..db import changed, database, locked, write_transaction
from ..formats.direcct import PLACEHOLDER_PREFIX
from ..models import (
    DuplicateDecision,
    LinkSuppression,
    MergedStudy,
    Reference,
    ReferenceIdentifier,
    Registration,
    SourceRecord,
    Study,
    StudyCountry,
    StudyReference,
    utcnow,
)
from ..vocabularies import UNCLEAR
from . import linking, records, studies
from .errors import Conflict, InvalidInput, NotFound

REGISTRY_RECORD = "trial_registry_record"
PLACEHOLDER = PLACEHOLDER_PREFIX.casefold()
MIN_TITLE_WORDS = 3
MAX_STUDIES_PER_TITLE = 4
MAX_STUDIES_PER_ARTICLE = 3
TITLE_WEIGHT = 0.7
ARTICLE_WEIGHTS = {2: 0.3, 3: 0.1}
STATUSES = ("open", "rejected", "all")
REJECTED = "rejected"

_WORDS = re.compile(r"[^\W_]+")
# UTF-8 read as Windows-1252 or Latin-1 (a lead byte's letter, then a continuation byte's), or as Mac
# Roman (`√†`): only such titles go through ftfy (a tenth of the cost of fixing every non-ASCII title).
_MOJIBAKE = re.compile("[\u00c2-\u00f4\u221a][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
                       "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039"
                       "\u203a\u20ac\u2122]")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def normalise_title(title: str | None) -> str | None:
    """A title as compared: case-folded, accents dropped, words joined by single spaces; None when it
    is no signal (empty, a placeholder, too short)."""
    if not title:
        return None
    if title.isascii():
        text = title.lower()
    else:  # mojibake (`â€“` for a dash) repaired first, as the importers do
        fixed = ftfy.fix_text(title) if _MOJIBAKE.search(title) else title
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", fixed).casefold())
    words = _WORDS.findall(text)
    if len(words) < MIN_TITLE_WORDS:
        return None
    joined = " ".join(words)
    if joined.startswith(PLACEHOLDER):
        return None
    return joined


@dataclass
class Candidate:
    low: int
    high: int
    titles: dict[str, str] = field(default_factory=dict)  # normalised -> a title as written
    articles: dict[int, int] = field(default_factory=dict)  # reference id -> studies it names
    decision: str | None = None
    decided: dt.datetime | None = None

    @property
    def score(self) -> float:
        weights = [TITLE_WEIGHT] if self.titles else []
        weights += [max((ARTICLE_WEIGHTS.get(n, 0.0) for n in self.articles.values()), default=0.0)]
        remaining = 1.0
        for weight in weights:
            remaining *= 1.0 - weight
        return round(1.0 - remaining, 3)

    @property
    def status(self) -> str:
        return self.decision or "open"

    def reasons(self) -> list[dict]:
        found = [{"kind": "same_title", "title": title} for title in self.titles.values()]
        found += [{"kind": "article_cites_both", "reference_id": ref, "studies_named": n}
                  for ref, n in sorted(self.articles.items())]
        return found


def _rows(sql: str, params: Sequence = ()) -> list[tuple]:
    return database.execute_sql(sql, list(params)).fetchall()


def find_candidates() -> tuple[dict[tuple[int, int], Candidate], dict[int, tuple], dict[int, list]]:
    """Every pair of studies one signal joins (decided pairs too, with their decision); every study's
    (name, title) and (registry, identifier) registrations. Six queries whatever the register's size."""
    p = database.param
    info = {study_id: (name, title) for study_id, name, title in _rows("SELECT id, name, title FROM study")}
    registrations: dict[int, list[tuple[str, str]]] = defaultdict(list)
    registries: dict[int, set[str]] = defaultdict(set)
    for study_id, identifier, registry in _rows(
            "SELECT study_id, identifier, registry FROM registration ORDER BY id"):
        registrations[study_id].append((registry, identifier))
        registries[study_id].add(registry)

    titles: dict[str, dict[int, str]] = defaultdict(dict)  # normalised -> study -> as written
    seen: dict[str | None, str | None] = {}  # one title is often a study's, its record's and its source's

    def add_title(study_id: int, title: str | None) -> None:
        key = seen[title] if title in seen else seen.setdefault(title, normalise_title(title))
        if key is not None and study_id in info:
            titles[key].setdefault(study_id, title)

    for study_id, (_, title) in info.items():
        add_title(study_id, title)
    for study_id, title in _rows(
            "SELECT sr.study_id, r.title FROM study_reference sr JOIN reference r ON r.id = sr.reference_id "
            f"WHERE r.type = {p} AND sr.role = 'reports'", [REGISTRY_RECORD]):
        add_title(study_id, title)
    for study_id, title in _rows(
            "SELECT g.study_id, s.title FROM source_record s "
            "JOIN registration g ON g.identifier = s.identifier WHERE s.title IS NOT NULL"):
        add_title(study_id, title)

    pairs: dict[tuple[int, int], Candidate] = {}

    def pair(a: int, b: int) -> Candidate:
        key = (a, b) if a < b else (b, a)
        if key not in pairs:
            pairs[key] = Candidate(*key)
        return pairs[key]

    for key, holders in titles.items():
        if not 2 <= len(holders) <= MAX_STUDIES_PER_TITLE:
            continue
        for a, b in combinations(sorted(holders), 2):
            if registries[a] & registries[b]:
                continue
            written = [holders[a], holders[b]]  # as one of them writes it, unmangled if one is
            pair(a, b).titles.setdefault(key, min(written, key=lambda t: bool(_MOJIBAKE.search(t))))

    cited: dict[int, set[int]] = defaultdict(set)  # reference -> studies holding what it cites
    for reference_id, study_id in _rows(
            "SELECT ri.reference_id, g.study_id FROM reference_identifier ri "
            "JOIN registration g ON g.identifier = ri.identifier "
            f"JOIN reference r ON r.id = ri.reference_id WHERE r.type <> {p}", [REGISTRY_RECORD]):
        cited[reference_id].add(study_id)
    for reference_id, holders in cited.items():
        if not 2 <= len(holders) <= MAX_STUDIES_PER_ARTICLE:
            continue
        for a, b in combinations(sorted(holders), 2):
            if not registries[a] & registries[b]:
                pair(a, b).articles[reference_id] = len(holders)

    for low, high, decision, created in DuplicateDecision.select(
            DuplicateDecision.low, DuplicateDecision.high, DuplicateDecision.decision,
            DuplicateDecision.created).tuples():
        if low in info and high in info:
            candidate = pair(low, high)
            candidate.decision, candidate.decided = decision, created
    return pairs, info, registrations


def list_candidates(*, status: str = "open", offset: int = 0, limit: int = 20) -> tuple[int, list[dict]]:
    """How many candidate pairs have ``status`` (``open``: undecided and joined by a signal;
    ``rejected``: every rejected pair, with the signals that still join it; ``all``: both), and those
    from ``offset`` to ``offset + limit``, best score first (then by ids)."""
    pairs, info, registrations = find_candidates()
    chosen = [c for c in pairs.values()
              if (status == "all" and (c.decision or c.titles or c.articles))
              or (status == "open" and c.decision is None)
              or (status == c.decision)]
    chosen.sort(key=lambda c: (-c.score, c.low, c.high))

    def study(study_id: int) -> dict:
        name, title = info[study_id]
        return {"id": study_id, "name": name, "title": title, "registrations": [
            {"registry": registry, "identifier": identifier}
            for registry, identifier in registrations[study_id]]}

    return len(chosen), [{"study_ids": [c.low, c.high], "score": c.score, "status": c.status,
                          "decided": c.decided, "reasons": c.reasons(),
                          "studies": [study(c.low), study(c.high)]}
                         for c in chosen[offset:offset + limit]]


def _pair_key(study_ids: Sequence[int]) -> tuple[int, int]:
    low, high = sorted(study_ids)
    return low, high


def _remember_rejected(a: int, b: int, when: dt.datetime) -> bool:
    low, high = _pair_key([a, b])
    existing = DuplicateDecision.get_or_none(low=low, high=high)
    if existing is not None:
        if existing.decision == REJECTED:
            return False
        existing.decision, existing.created = REJECTED, when
        existing.save()
        return True
    DuplicateDecision.insert(low=low, high=high, decision=REJECTED, created=when).execute()
    return True


def reject_candidate(study_ids: Sequence[int]) -> tuple[dict, bool]:
    """Remember that two studies are not duplicates; return the decision and whether it is new."""
    if len(set(study_ids)) != 2:
        raise InvalidInput("Give two different study ids.",
                           errors={"study_ids": ["Give two different study ids."]})
    try:
        with write_transaction():
            errors = {}
            for position, study_id in enumerate(study_ids):
                message = _missing_study(study_id)
                if message:
                    errors[f"study_ids.{position}"] = [message]
            if errors:
                raise InvalidInput("Some of these studies cannot be compared.", errors=errors)
            created = _remember_rejected(*study_ids, utcnow())
    except IntegrityError:
        created = False  # the same pair rejected meanwhile by another request, or a study deleted
    low, high = _pair_key(study_ids)
    decision = DuplicateDecision.get_or_none(low=low, high=high)
    if decision is None:
        raise Conflict("One of these studies was deleted or merged meanwhile; read them again.")
    return {"study_ids": [low, high], "status": decision.decision, "decided": decision.created}, created


def _missing_study(study_id: int) -> str | None:
    if Study.select(Study.id).where(Study.id == study_id).exists():
        return None
    merged = MergedStudy.get_or_none(MergedStudy.id == study_id)
    if merged is not None:
        return f"Study {study_id} was merged into study {merged.into_id}."
    return f"Study {study_id} does not exist."


def merged_studies(since: dt.datetime | None = None):
    """The ids that went away by a merge, and where to (a query; the caller orders and pages it)."""
    query = MergedStudy.select()
    if since is not None:
        query = query.where(MergedStudy.merged >= since)
    return query


# ---- merge ----------------------------------------------------------------------------------------

def _other_study(other_id: int) -> Study:
    """The study to merge in, locked; 404 when it never existed, 409 when it is itself merged."""
    other = locked(Study.select().where(Study.id == other_id)).first()
    if other is not None:
        return other
    merged = MergedStudy.get_or_none(MergedStudy.id == other_id)
    if merged is not None:
        message = f"Study {other_id} was already merged into study {merged.into_id}."
        raise Conflict(message, errors={"from": [message]}, merged_into=merged.into_id)
    message = f"Study {other_id} does not exist."
    raise NotFound(message, errors={"from": [message]})


def _move_links(survivor_id: int, other_id: int) -> set[int]:
    """Give the other study's links and curators' unlinks to the survivor; return the references whose
    set of studies changed.

    Where both studies have a link to one reference, a manual one wins over an automatic one. Where
    the two studies' curators disagree (one linked by hand, the other unlinked), the survivor's
    decision stands; a curator's unlink beats an automatic link.
    """
    def links_of(study_id):
        return {link.reference_id: link
                for link in StudyReference.select().where(StudyReference.study == study_id)}

    def unlinks_of(study_id):
        return {r for (r,) in LinkSuppression.select(LinkSuppression.reference)
                .where(LinkSuppression.study == study_id).tuples()}

    mine, theirs = links_of(survivor_id), links_of(other_id)
    my_unlinks, their_unlinks = unlinks_of(survivor_id), unlinks_of(other_id)
    touched = set(theirs)
    for reference_id, link in theirs.items():
        kept = mine.get(reference_id)
        if kept is not None:
            if kept.link == "auto" and link.link == "manual":
                (StudyReference.update(link="manual", identifier=None)
                 .where(StudyReference.id == kept.id).execute())
            continue
        if reference_id in my_unlinks:
            continue  # the survivor's curator unlinked it
        StudyReference.update(study=survivor_id).where(StudyReference.id == link.id).execute()
        mine[reference_id] = link
    for reference_id in their_unlinks - my_unlinks:
        kept = mine.get(reference_id)
        if kept is not None and kept.link == "manual":
            continue  # linked by the survivor's curator: that decision stands
        if kept is not None:
            StudyReference.delete().where(StudyReference.id == kept.id).execute()
            touched.add(reference_id)
        LinkSuppression.insert(study=survivor_id, reference=reference_id, created=utcnow()).execute()
    StudyReference.delete().where(StudyReference.study == other_id).execute()
    LinkSuppression.delete().where(LinkSuppression.study == other_id).execute()
    return touched


def _curated(study: Study) -> list[str]:
    try:
        value = json.loads(study.curated or "[]")
    except ValueError:
        return []
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _copy_curated(survivor: Study, other: Study) -> dict:
    """The survivor's new values for the fields only the other study's curator set (those values, and
    the longer ``curated`` list)."""
    mine, theirs = _curated(survivor), _curated(other)
    fields = Study._meta.fields
    values: dict = {}
    added = [name for name in theirs if name not in mine]
    for name in added:
        if name in fields and name not in ("id", "curated", "created", "updated", "facet_sources"):
            values[name] = getattr(other, name)
        if name == "countries":  # the column, and the rows its filter reads
            studies.write_countries(survivor.id, json.loads(other.countries or "[]"))
    if added:
        values["curated"] = json.dumps(mine + added)
        try:
            sources = json.loads(survivor.facet_sources or "{}")
            given = json.loads(other.facet_sources or "{}")
        except ValueError:
            sources, given = None, None
        if isinstance(sources, dict) and isinstance(given, dict):
            sources.update({name: given[name] for name in added if name in given})
            values["facet_sources"] = json.dumps(sources)
    return values


def _move_decisions(survivor_id: int, other_id: int) -> None:
    """The other study's duplicate decisions become the survivor's (a pair of the two goes; a pair the
    survivor has already decided keeps the survivor's decision)."""
    theirs = list(DuplicateDecision.select().where(
        (DuplicateDecision.low == other_id) | (DuplicateDecision.high == other_id)))
    DuplicateDecision.delete().where(
        (DuplicateDecision.low == other_id) | (DuplicateDecision.high == other_id)).execute()
    mine = {(d.low_id, d.high_id) for d in DuplicateDecision.select().where(
        (DuplicateDecision.low == survivor_id) | (DuplicateDecision.high == survivor_id))}
    for decision in theirs:
        partner = decision.high_id if decision.low_id == other_id else decision.low_id
        if partner == survivor_id:
            continue
        key = _pair_key([survivor_id, partner])
        if key in mine:
            continue
        mine.add(key)
        DuplicateDecision.insert(low=key[0], high=key[1], decision=decision.decision,
                                 created=decision.created).execute()


def _record_merge(other: Study, survivor_id: int, when: dt.datetime) -> None:
    """The merged id redirects to the survivor, as do ids merged into it before."""
    MergedStudy.update(into=survivor_id).where(MergedStudy.into == other.id).execute()
    MergedStudy.insert(id=other.id, into=survivor_id, name=other.name, merged=when).execute()


def merge_studies(survivor_id: int, other_id: int, *, if_match: list[str] | None = None) -> None:
    """Merge study ``other_id`` into ``survivor_id`` in one transaction: its registrations, links,
    curators' unlinks, curated fields (those the survivor's curator did not set) and duplicate
    decisions move; it is deleted, and its id redirects to the survivor from then on."""
    if survivor_id == other_id:
        raise InvalidInput("A study cannot be merged into itself.",
                           errors={"from": ["Must be another study than the one merged into."]})
    try:
        with write_transaction():
            if other_id < survivor_id:  # rows locked in id order: two merges of one pair cannot deadlock
                locked(Study.select(Study.id).where(Study.id == other_id)).first()
            survivor = studies._get(survivor_id, lock=True)
            records.check_precondition(
                f"Study {survivor_id}",
                lambda: records.study_dicts([survivor], include_references=True)[0], if_match)
            other = _other_study(other_id)
            now = utcnow()
            Registration.update(study=survivor_id).where(Registration.study == other_id).execute()
            touched = _move_links(survivor_id, other_id)
            values = _copy_curated(survivor, other)
            _move_decisions(survivor_id, other_id)
            _record_merge(other, survivor_id, now)
            StudyCountry.delete().where(StudyCountry.study == other_id).execute()
            Study.delete().where(Study.id == other_id).execute()
            linking.relink_study(survivor_id, touched.update)
            Study.update(**values, updated=now).where(Study.id == survivor_id).execute()
            studies.touch_references(sorted(touched), now)
            changed(studies=[survivor_id, other_id], references=touched)
    except IntegrityError:
        raise Conflict("One of these studies changed meanwhile; read them again and retry.") from None


# ---- split ----------------------------------------------------------------------------------------

def _registry_title(identifier: str) -> str | None:
    """The title of a registration's registry record (a reference, else a source record), if any."""
    candidates = [title for (title,) in Reference.select(Reference.title)
                  .where((Reference.type == REGISTRY_RECORD) & (Reference.registration_id == identifier))
                  .order_by(Reference.updated.desc(), Reference.id.desc()).tuples()]
    candidates += [title for (title,) in SourceRecord.select(SourceRecord.title)
                   .where((SourceRecord.identifier == identifier) & SourceRecord.title.is_null(False))
                   .order_by(SourceRecord.imported.desc(), SourceRecord.id.desc()).tuples()]
    for title in candidates:
        if title and title.strip() and not title.strip().casefold().startswith(PLACEHOLDER):
            return title.strip()
    return None


def _split_identifiers(owned: Sequence[str], given: Sequence[str]) -> list[str]:
    """The canonical identifiers to move, in the order given; 422 naming each one the study lacks, or
    when they are every registration of the study."""
    wanted, errors = [], {}
    for position, written in enumerate(given):
        identifier = linking.canonical_identifier(written)
        if identifier not in owned:
            errors[f"registrations.{position}"] = [f"{identifier} is not a registration of this study."]
        elif identifier not in wanted:
            wanted.append(identifier)
    if errors:
        raise InvalidInput("Some of these registrations are not the study's.", errors=errors)
    if set(owned) <= set(wanted):
        raise InvalidInput("A split must leave the study at least one registration.", errors={
            "registrations": ["These are every registration of the study; leave at least one."]})
    return wanted


def split_study(study_id: int, identifiers: Iterable[str], *, if_match: list[str] | None = None) -> int:
    """Move some registrations of a study to a new study, with the references that cite them (by the
    automatic linking rules: a reference citing both studies' registrations is linked to both); manual
    links stay. The two are remembered as not duplicates. Returns the new study's id."""
    given = list(identifiers)
    with write_transaction():
        study = studies._get(study_id, lock=True)
        records.check_precondition(
            f"Study {study_id}", lambda: records.study_dicts([study], include_references=True)[0], if_match)
        owned = [i for (i,) in Registration.select(Registration.identifier)
                 .where(Registration.study == study_id).order_by(Registration.id).tuples()]
        wanted = _split_identifiers(owned, given)
        now = utcnow()
        new_id = Study.insert(
            name=wanted[0], title=_registry_title(wanted[0]) or study.title,
            study_type=UNCLEAR, study_aim=UNCLEAR, study_design=UNCLEAR, intervention_assignment=UNCLEAR,
            first_published=study.first_published, created=now, updated=now).execute()
        Registration.update(study=new_id).where(
            (Registration.study == study_id) & Registration.identifier.in_(wanted)).execute()
        # A curator's unlink of a reference citing the moved registrations holds for the new study too.
        citing = ReferenceIdentifier.select(ReferenceIdentifier.reference).where(
            ReferenceIdentifier.identifier.in_(wanted))
        unlinked = (LinkSuppression.select(LinkSuppression.reference)
                    .where((LinkSuppression.study == study_id) & LinkSuppression.reference.in_(citing)))
        unlinks = [{"study": new_id, "reference": r, "created": now} for (r,) in unlinked.tuples()]
        if unlinks:
            LinkSuppression.insert_many(unlinks).execute()
        touched: set[int] = set()
        linking.relink_study(study_id, touched.update)
        linking.relink_study(new_id, touched.update)
        kept = {"updated": now}
        if study.name in wanted:  # the name was a moved registration: take the first one left
            kept["name"] = next(i for i in owned if i not in wanted)
        Study.update(**kept).where(Study.id == study_id).execute()
        studies.touch_references(sorted(touched), now)
        _remember_rejected(study_id, new_id, now)
        changed(studies=[study_id, new_id], references=touched)
    return new_id
