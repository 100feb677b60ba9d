"""Why a reference is linked to a study, and what it is to the study: every rule, in one place.

**Evidence.** Each registration identifier found in a reference is kept with every place it was found
(`find`), each an *evidence item* (JSON in the API): ``kind``, ``field`` (``registration_id``, ``title``,
``abstract``, ``notes``), ``text`` (the matched text with about 150 characters around it), ``start`` and
``end`` (where the identifier is in that field), and for a source file's claim ``source`` (the file) and
``claim`` (what the file says of the article and the trial). The kinds, strongest first:

* ``registration_id``: the reference's own registration field (a registry record's, or one set by hand);
* ``registration_statement``: title or abstract text stating the study's registration: an abstract section
  labelled "Trial registration" (or any label with *regist*), or the identifier preceded in its sentence by
  *registered*, *registration*, *registry*, *identifier*, *number*, *ID* or *No.* ("ClinicalTrials.gov
  Identifier: NCT04280705", "registered with ChiCTR (ChiCTR2000029308)");
* ``databank``: a file says a bibliographic database lists the identifier as the article's own (regCOVID:
  "ClinicalTrials.gov identifiers in this article's PubMed record", PubMed's secondary identifiers);
* ``hand_found``: a file says people found the article to be a publication of the trial (DIRECCT's results);
* ``text``: the identifier elsewhere in the title, abstract or notes (a mention);
* ``full_text``: a file says the identifier occurs somewhere in the article's full text (DIRECCT's search
  hits: the article's own registration, or any trial it discusses or cites);
* ``registry_listing``: a file says the study's registry record lists the article among its references
  (regCOVID's "ClinicalTrials.gov records listing this article": results and background alike).

**Roles.** ``reports``: the reference is a report of the study (its registry record, a results article, a
preprint, a protocol, a conference abstract of it); ``cites``: it mentions or cites the study without
reporting it. ``assess`` decides each study named by one reference, by the first rule that applies:

1. ``registry_record``: a trial registry record reports the study owning its ``registration_id``, and any
   other study whose registration it names: a registry record names other registries' numbers as its
   secondary identifiers (the same trial registered twice, a duplicate candidate).
2. ``review``: a reference whose publication types (Review, Systematic Review, Meta-Analysis, Guideline,
   Editorial, Comment, News, ...) or title (review, meta-analysis, guideline, consensus, editorial,
   commentary, viewpoint, recommendations, landscape of trials, ...) say it is secondary cites every study,
   but those whose registration its own text states (``registration_id``, a registration statement: a
   pooled analysis of trials, a protocol or a trial report that PubMed also types Review or Comment),
   which it reports (``own_registration``); more than `MAX_REPORTS` of those only when its title reads as
   a study's (rule 6: "a pooled analysis of four randomised trials"), not a review listing the trials it
   discusses under "Clinical Trial Registration".
3. ``own_registration``: a study given by ``registration_id``, a registration statement, a databank or a
   hand-found claim is reported. When more than `MAX_REPORTS` studies qualify, only those its own text
   gives (``registration_id`` or a statement) keep ``reports``; the others are cited.
4. ``other_study``: once the reference gives its own registration (rule 3), every other study it only
   mentions, or whose record lists it, it cites.
5. ``title_match``: without its own registration, a study it mentions (or whose record lists it) whose
   title matches the reference's title is reported: a trial acronym written in capitals in the reference's
   title that only that study's titles (its own, its registry records') contain ("TOCIVID-19"), or a title
   similarity (rapidfuzz ``token_set_ratio``) of at least `TITLE_MATCH`, ahead of every other study named
   by `TITLE_MARGIN`.
6. ``sole_mention``: without a title match, a study the reference alone names in its title, abstract or
   notes, or (when those name none) one of at most `MAX_REPORTS` studies its full text names, is reported.
   With two or three named, each is reported unless one of them matches the title clearly better (by
   `TITLE_MARGIN`): then only that one; when they are named in a full text only, all are then cited
   (``full_text_only``). A study named in a full text only is reported only when the reference's title
   reads as a clinical study's (trial, randomised, phase, pilot, open-label, placebo, double-blind,
   protocol, efficacy, safety, immunogenicity) or its title similarity to the study reaches
   `FULL_TEXT_MATCH`; else it is cited (``full_text_only``): reviews, commentaries, case reports,
   cohorts and laboratory papers name trials in their full texts without reporting them.
7. ``many_named``: a reference naming more than `MAX_REPORTS` studies (and matching none by title) cites
   them all: a review, a landscape or a commentary whatever its title says.
8. ``listing_only``: a study whose registry record lists the reference, with nothing else (no mention, no
   title match), is cited: registry records list background references beside results.

A file's claim keeps that file's meaning: a databank or hand-found claim is a report, a listing or a full
text hit only a mention. **Confidence** (0-1) is how sure the rule is of the role it gives (`CONFIDENCE`);
a curator's role (``role_curated``) is never changed by these rules and shows confidence 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from ..formats.articles import DIRECCT_HITS, REGCOVID_OTHER, REGCOVID_SOURCES
from ..identifiers import canonical, find_identifiers

MAX_REPORTS = 3     # a reference naming more registered studies than this is taken for a secondary one
TITLE_MATCH = 0.8   # title similarity (0-1) that makes a mentioned study the one reported
TITLE_MARGIN = 0.1  # ... when ahead of every other named study by this much
FULL_TEXT_MATCH = 0.55  # title similarity that lets a full-text mention alone report a study (rule 6)
CONTEXT_BEFORE, CONTEXT_AFTER = 110, 40  # characters of text kept around an identifier

OWN = ("registration_id", "registration_statement", "databank", "hand_found")  # rule 3
STATED = ("registration_id", "registration_statement")  # ... given by the reference's own text
MENTION = ("text", "full_text")
KINDS = OWN + MENTION + ("registry_listing",)
RULES = ("registry_record", "review", "own_registration", "listed_and_named", "other_study", "title_match",
         "sole_mention", "full_text_only", "many_named", "listing_only", "manual", "curator")
BY_HAND = 1.0  # the confidence of a link or a role a person gave (`manual`, `curator`)

# (rule, role) -> confidence; a reported study's by the strongest evidence kind it has (rule 3).
CONFIDENCE = {
    ("registry_record", "reports"): 1.0, ("registry_record", "secondary"): 0.8,
    ("review", "cites"): 0.9,
    ("own_registration", "cites"): 0.6,
    ("listed_and_named", "reports"): 0.85,
    ("other_study", "cites"): 0.85,
    ("title_match", "reports"): 0.85,
    ("sole_mention", "reports"): 0.75,  # named in the title, abstract or notes
    ("many_named", "cites"): 0.8,
    ("full_text_only", "cites"): 0.7,
    ("listing_only", "cites"): 0.75,
}
# A report known from a full-text mention alone: in a hand-check of 100 random reports links, 20 of the 43
# such links were right (the rest: reviews, commentaries, cohorts, laboratory papers naming the trial).
FULL_TEXT_CONFIDENCE = 0.5
OWN_CONFIDENCE = {"registration_id": 0.99, "registration_statement": 0.97, "hand_found": 0.97,
                  "databank": 0.95}

# What each file's sentence in a reference's notes claims (formats/articles.py, formats/direcct.py).
FILE_CLAIMS: dict[str, tuple[str, str, str]] = {
    REGCOVID_SOURCES["abstract"]: (
        "databank", "regCOVID publication lists",
        "PubMed's record of the article lists the registration among its secondary identifiers"),
    REGCOVID_SOURCES["registry"]: (
        "registry_listing", "regCOVID publication lists",
        "the ClinicalTrials.gov record lists the article among its references (results or background)"),
    REGCOVID_OTHER: (
        "registry_listing", "regCOVID publication lists", "regCOVID links the record and the article"),
    DIRECCT_HITS: (
        "full_text", "DIRECCT trial-number search hits",
        "the registration number occurs in the article's full text"),
}
_HAND_FOUND = re.compile(r"\(DIRECCT trial (\w+): (\w+)")
_SECTION_LABEL = re.compile(r"^\s*([A-Z][A-Za-z /&-]{2,60}):")
_STATEMENT = re.compile(r"regist|identifier|\bnumbers?\b|\bIDs?\b|\bNos?\b\.?|\bNr\b\.?", re.I)
_SENTENCE_END = re.compile(r"[.;!?]\s+(?=[A-Z(])|\n")

SECONDARY_TYPES = ("review", "systematic review", "meta-analysis", "guideline", "practice guideline",
                   "editorial", "comment", "news", "consensus development conference", "overview",
                   "scoping review", "network meta-analysis")
_SECONDARY_TITLE = re.compile(
    r"\b(?:(?:systematic|scoping|rapid|living|narrative|literature|umbrella|critical|structured) review"
    r"|review of|a review|(?<!peer )review\b(?![-\w])|meta-?analys[ie]s|meta-?regression"
    r"|guidelines?(?! ?-?based)\b(?![-\w])|guidance (?:for|on|from)|consensus (?:statement|recommendations)"
    r"|recommendations (?:for|from|of|on)|position (?:paper|statement)|editorial|commentary|viewpoint"
    r"|landscape of|registered (?:clinical )?(?:trials|studies)|trial registr(?:y|ies) (?:data|records)"
    r"|ongoing (?:clinical )?trials|(?:trials|studies) registered|an overview|state of the art)", re.I)
# Capitalised words of titles that name no particular trial.
_GENERIC = frozenset({"COVID", "COVID-19", "SARS", "SARS-COV-2", "MERS", "ARDS", "ICU", "RCT", "RNA", "DNA",
                      "PCR", "RT-PCR", "WHO", "NIH", "USA", "HIV", "IGG", "IGM", "ACE2", "CT", "II", "III",
                      "IV", "PHASE", "TRIAL", "STUDY", "COVID19", "SARS-COV", "NCOV", "2019-NCOV"})
_ACRONYM = re.compile(r"(?<![\w-])[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*(?![\w-])")


@dataclass(frozen=True)
class Facts:
    """What the rules read of a reference besides its identifiers."""

    type: str
    title: str
    registration_id: str | None = None
    publication_types: tuple[str, ...] = ()


@dataclass
class Decision:
    """A study's link to one reference as the rules see it."""

    role: str
    confidence: float
    rule: str
    identifier: str
    evidence: list[dict] = field(default_factory=list)


# -- finding ----------------------------------------------------------------------------------------------


def _span(text: str, start: int, end: int) -> str:
    """The identifier with the text around it, within its paragraph, spaces collapsed."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    return " ".join(text[max(line_start, start - CONTEXT_BEFORE):min(line_end, end + CONTEXT_AFTER)].split())


def _is_statement(text: str, start: int) -> bool:
    """Whether the identifier at ``start`` is in a registration statement: its paragraph's label says
    regist..., or its sentence says so before it."""
    line_start = text.rfind("\n", 0, start) + 1
    label = _SECTION_LABEL.match(text, line_start)
    if label and "regist" in label.group(1).lower():
        return True
    window_start = max(line_start, start - 120)
    before = text[window_start:start]
    ends = list(_SENTENCE_END.finditer(before))
    if ends:
        before = before[ends[-1].end():]
    return bool(_STATEMENT.search(before))


def find(values: Mapping[str, str | None]) -> list[tuple[str, str, list[dict]]]:
    """Every registration identifier in a reference's ``registration_id``, title, abstract and notes, in
    order of first appearance: ``(canonical identifier, registry, evidence items)``."""
    found: dict[str, tuple[str, list[dict]]] = {}

    def add(identifier: str, registry: str, item: dict) -> None:
        found.setdefault(identifier, (registry, []))[1].append(item)

    own = values.get("registration_id")
    known = canonical(own) if own else None
    if known:
        add(known[0], known[1], {"kind": "registration_id", "field": "registration_id", "text": own,
                                 "start": 0, "end": len(own)})
    for name in ("title", "abstract"):
        text = values.get(name) or ""
        for hit in find_identifiers(text):
            kind = "registration_statement" if _is_statement(text, hit.start) else "text"
            add(hit.identifier, hit.registry, {"kind": kind, "field": name,
                                               "text": _span(text, hit.start, hit.end),
                                               "start": hit.start, "end": hit.end})
    notes = values.get("notes") or ""
    offset = 0
    for line in notes.split("\n"):
        claim = _file_claim(line)
        for hit in find_identifiers(line):
            item = {"kind": claim[0] if claim else "text", "field": "notes",
                    "text": _span(line, hit.start, hit.end) if not claim else " ".join(line.split())[:300],
                    "start": offset + hit.start, "end": offset + hit.end}
            if claim:
                item["source"], item["claim"] = claim[1], claim[2]
            add(hit.identifier, hit.registry, item)
        offset += len(line) + 1
    return [(identifier, registry, items) for identifier, (registry, items) in found.items()]


def _file_claim(line: str) -> tuple[str, str, str] | None:
    head = line.split(":", 1)[0].strip()
    if head in FILE_CLAIMS:
        return FILE_CLAIMS[head]
    hand = _HAND_FOUND.search(line)
    if hand:
        return ("hand_found", "DIRECCT results",
                f"DIRECCT found the article by hand as a publication ({hand.group(2)}) of trial "
                f"{hand.group(1)}")
    return None


# -- deciding ---------------------------------------------------------------------------------------------


def is_secondary(facts: Facts) -> bool:
    """Whether the reference's publication types or title say it is a review, guideline, editorial..."""
    if any(t.strip().lower() in SECONDARY_TYPES for t in facts.publication_types):
        return True
    return bool(_SECONDARY_TITLE.search(facts.title or ""))


def title_similarity(title: str, others: Iterable[str], scorer=fuzz.token_set_ratio) -> float:
    """The best rapidfuzz ``scorer`` (``token_set_ratio``: the words of the shorter title found in the
    longer) of ``title`` against any of ``others``, 0-1, case and punctuation aside."""
    return max((scorer(title or "", other, processor=default_process) / 100 for other in others if other),
               default=0.0)


def _clear_best(title: str, pool: Sequence[int], similarity: Mapping[int, float],
                titles: Mapping[int, Sequence[str]]) -> int | None:
    """The study of ``pool`` whose titles match ``title`` at least `TITLE_MATCH`, ahead of every other
    by `TITLE_MARGIN`; among studies within the margin of each other, the one whose title, word order
    and extra words counted too (``token_sort_ratio``), is ahead by the margin."""
    ranked = sorted(pool, key=lambda s: -similarity[s])
    if not ranked or similarity[ranked[0]] < TITLE_MATCH:
        return None
    top = [s for s in ranked if similarity[ranked[0]] - similarity[s] < TITLE_MARGIN]
    if len(top) == 1:
        return top[0]
    whole = {s: title_similarity(title, titles.get(s, ()), fuzz.token_sort_ratio) for s in top}
    leader = max(top, key=lambda s: whole[s])
    return leader if all(whole[leader] - whole[s] >= TITLE_MARGIN for s in top if s != leader) else None


def acronyms(title: str) -> set[str]:
    """Words written in capitals in a title that may name a trial ("TOCIVID-19", "ACTT-1", "RECOVERY")."""
    found = set()
    for word in _ACRONYM.findall(title or ""):
        upper = word.upper()
        if upper not in _GENERIC and sum(c.isalpha() for c in word) >= 3 and len(word) >= 4:
            found.add(upper)
    return found


def _contains(titles: Sequence[str], word: str) -> bool:
    pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.I)
    return any(pattern.search(t or "") for t in titles)


def assess(facts: Facts, cited: Sequence[tuple[str, list[dict]]], owner: Mapping[str, int],
           titles: Mapping[int, Sequence[str]]) -> dict[int, Decision]:
    """The role, confidence and evidence of each study a reference names (rules 1-8 above).

    ``cited``: the reference's identifiers in order of first appearance, each with its evidence items;
    ``owner``: identifier -> the study owning it (identifiers no study owns are left out); ``titles``: each
    owning study's titles (its own, its registry records'), for title matches.
    """
    named: dict[int, tuple[str, list[dict]]] = {}
    for identifier, items in cited:
        study = owner.get(identifier)
        if study is None:
            continue
        if study not in named:
            named[study] = (identifier, [])
        named[study][1].extend(items)
    if not named:
        return {}
    kinds = {study: {item["kind"] for item in items} for study, (_, items) in named.items()}

    def decide(study: int, role: str, rule: str, confidence: float | None = None) -> Decision:
        identifier, items = named[study]
        return Decision(role, confidence if confidence is not None else CONFIDENCE[(rule, role)], rule,
                        identifier, items)

    def cite(study: int, mentioned_rule: str) -> Decision:
        """A study not reported: ``mentioned_rule`` when the reference names it, else a listing only."""
        return decide(study, "cites", mentioned_rule if kinds[study] & set(MENTION) else "listing_only")

    if facts.type == "trial_registry_record":
        secondary = CONFIDENCE[("registry_record", "secondary")]
        return {s: decide(s, "reports", "registry_record",
                          None if "registration_id" in kinds[s] else secondary) for s in named}
    if is_secondary(facts):
        # ... except the trials whose registration it states itself (a pooled analysis, a protocol or a
        # trial report PubMed also types Review, Meta-Analysis or Comment).
        stated = [s for s in named if kinds[s] & set(STATED)]
        if len(stated) > MAX_REPORTS and not _reads_as_study(facts.title):
            stated = []  # a review listing the trials it discusses under "Clinical Trial Registration"
        return {s: decide(s, "reports", "own_registration", _own_confidence(kinds[s]))
                if s in stated else decide(s, "cites", "review") for s in named}

    own = [s for s in named if kinds[s] & set(OWN)]
    corroborated = [s for s in named if s not in own and "registry_listing" in kinds[s]
                    and kinds[s] & set(MENTION)]
    if own or corroborated:
        own = own + corroborated
        if len(own) > MAX_REPORTS:
            stated = {s for s in own if kinds[s] & set(STATED)}
        else:
            stated = set(own)
        out = {}
        for s in named:
            if s in stated and s in corroborated:
                out[s] = decide(s, "reports", "listed_and_named")
            elif s in stated:
                out[s] = decide(s, "reports", "own_registration", _own_confidence(kinds[s]))
            elif s in own:
                out[s] = decide(s, "cites", "own_registration")
            else:
                out[s] = decide(s, "cites", "other_study")
        return out

    # Title matches among the studies the reference names; a study only listing it counts when none is
    # named (a registry record lists background papers whose titles resemble its own).
    pool = [s for s in named if kinds[s] & set(MENTION)] or list(named)
    similarity = {s: title_similarity(facts.title, titles.get(s, ())) for s in named}
    words = acronyms(facts.title)
    by_acronym = {s for s in pool
                  if any(_contains(titles.get(s, ()), w)
                         and not any(_contains(titles.get(o, ()), w) for o in named if o != s)
                         for w in words)}
    best = _clear_best(facts.title, pool, similarity, titles)
    matched = by_acronym or ({best} if best is not None else set())
    if matched:
        return {s: decide(s, "reports", "title_match") if s in matched else decide(s, "cites", "other_study")
                for s in named}

    in_text = [s for s in named if kinds[s] & {"text"}]
    mentioned = in_text or [s for s in named if kinds[s] & {"full_text"}]
    if len(mentioned) > MAX_REPORTS:
        return {s: decide(s, "cites", "many_named") for s in named}
    if not in_text and not _reads_as_study(facts.title):
        # Named in the full text only, by a reference whose title is not a clinical study's: reported
        # only when the two titles are alike.
        mentioned = [s for s in mentioned if similarity[s] >= FULL_TEXT_MATCH]
        if not mentioned:
            return {s: cite(s, "full_text_only") for s in named}
    if len(mentioned) > 1:
        best = max(mentioned, key=lambda s: similarity[s])
        ahead = all(similarity[best] - similarity[o] >= TITLE_MARGIN for o in mentioned if o != best)
        if ahead:
            mentioned = [best]
        elif not in_text:
            # Several trials in a full text and none ahead by its title: the ones it discusses.
            return {s: cite(s, "full_text_only") for s in named}
    return {s: decide(s, "reports", "sole_mention", None if in_text else FULL_TEXT_CONFIDENCE)
            if s in mentioned else cite(s, "other_study") for s in named}


_STUDY_TITLE = re.compile(
    r"\b(?:trials?|randomi[sz]ed|phase|pilot|open[- ]label|placebo|controlled|double[- ]blind|protocol"
    r"|single[- ]arm|multi-?cent(?:er|re)|efficacy|safety|immunogenicity)\b", re.I)


def _reads_as_study(title: str) -> bool:
    """Whether a title says it reports a clinical study of an intervention (trial, randomised, phase,
    pilot, open-label, placebo, double-blind, protocol, efficacy, safety, immunogenicity, ...)."""
    return bool(_STUDY_TITLE.search(title or ""))


def _own_confidence(kinds: set[str]) -> float:
    return OWN_CONFIDENCE[next(k for k in OWN if k in kinds)]


def dumps(evidence: list[dict]) -> str:
    return json.dumps(evidence, ensure_ascii=False, separators=(",", ":"))
