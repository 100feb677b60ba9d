"""Suggested studies for references with no `reports` link: candidates ranked by what the two share, kept
as ``suggestion`` rows a curator accepts (a manual `reports` link) or rejects (never suggested again).

A reference is compared with every study through five signals, each a reason with a score in 0-1:

* **title**: the best cosine similarity between the reference's title and one of the study's titles: its
  own, its registry records' (their title and the scientific or official title their text gives), the
  titles its registrations' source records give (``source_record.title``) and those of its other
  reports (a preprint and its journal version). Titles are compared as TF-IDF vectors of character
  3-5-grams (scikit-learn; the IDF learnt from every study title and reference title of the register,
  n-grams in more than ``MAX_DF`` of them ignored), once the disease's many names are written as one
  (``covid``). The similarity is ``nearest_titles``: change the library there.
* **acronym**: a trial acronym (an upper-case token: RECOVERY, TOCIVID-19, ACTT-1) in the reference's
  title, or named as a trial in its abstract, that is one in the study's titles too, held by at most
  ``MAX_ACRONYM_STUDIES`` studies (COVID-19, ICU, ARDS are in too many to name one trial): ``1 / n``
  for one ``n`` studies hold.
* **authors**: authors of the reference (surname and first initial) who wrote another report of the
  study, each counting ``1 / n`` for an author of reports of ``n`` studies; two authors of that study
  alone make 1.
* **intervention**: distinctive words of the reference's title and abstract among the study's
  interventions (its registry records' ``Intervention:`` lines), each weighted by its rarity (its IDF over
  the studies' titles and interventions, as a share of the largest); a word more than
  ``MAX_INTERVENTION_DF`` of the studies have is not distinctive.
* **country**: the reference names (capitalised) a country where the study recruits.
* **named**: the reference names the study's registration but linking's rules made it a citation
  (``domain/evidence.py``: a number found only in a full text, one of several trials named): ``1 / n``
  of the ``n`` studies it cites. Accepting makes the citing link a manual report.

The score is ``1 - (1 - t)(1 - 0.6 a)(1 - 0.6 u)(1 - 0.25 i)(1 - 0.2 c)(1 - 0.5 n)`` (``WEIGHTS``).
The title proposes ``CANDIDATES`` studies per reference, acronyms, authors and cited numbers add those
they name; the best ``limit`` scoring ``MIN_SCORE`` or more are kept. A study the reference reports,
or whose link a curator gave a role, is never suggested, nor a pair a curator accepted or rejected; a
secondary reference (a review, a guideline, an editorial: ``evidence.is_secondary``) gets none, it
reports no study.

On the real data set (built without DIRECCT's results), for the 187 DIRECCT publications with no
registration number in title or abstract (their links removed), the right study came first for 58 %
and among the first five for 72 %; a first suggestion scoring 0.7 or more was right for 84 % of them,
0.5-0.7 for 61 %. The whole register (5,000 references, 11,229 studies) takes about 16 s.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from peewee import Cast, fn

from ..db import database, insert_rows, is_postgres, locked, select_in, update_rows, write_transaction
from ..formats.direcct import PLACEHOLDER_PREFIX
from ..formats.trialdata import COUNTRY_ALIASES
from ..models import Reference, Study, Suggestion, utcnow
from . import evidence, studies
from .errors import Conflict, InvalidInput, NotFound
from .ordering import SortKey, sort_keys

logger = logging.getLogger(__name__)

REGISTRY_RECORD = "trial_registry_record"
OPEN, ACCEPTED, REJECTED = "open", "accepted", "rejected"
STATUSES = (OPEN, ACCEPTED, REJECTED)
LIMIT = 5
MIN_SCORE = 0.2
CANDIDATES = 30  # studies per reference the title similarity proposes
MIN_TITLE_SIMILARITY = 0.1
MAX_DF = 0.05
MIN_MAX_DF = 20  # a small register still keeps its n-grams
MAX_ACRONYM_STUDIES = 5
MAX_INTERVENTION_DF = 0.01
WEIGHTS = {"title": 1.0, "acronym": 0.6, "authors": 0.6, "intervention": 0.25, "country": 0.2, "named": 0.5}
BATCH = 500  # references per similarity product (a dense batch x titles block of float32)
TOP_TITLES = 200  # titles per reference read from the product (a study may hold several)

# The disease's many names are one word when titles are compared: they tell no trial from another.
_COVID = re.compile(
    r"\b(?:covid[- ]?19|covid|sars[- ]?cov[- ]?2|2019[- ]?ncov|ncov[- ]?2019|ncov|novel coronavirus"
    r"(?: pneumonia| infection| disease)?|coronavirus disease(?: 2019)?|corona ?virus(?: disease)?"
    r"(?: 2019)?|ncp)\b")
_WORDS = re.compile(r"[^\W_]+")
_NAME_WORDS = re.compile(r"[^\W\d_]+")
_COMBINING = re.compile(r"[\u0300-\u036f]")
_TITLE_LINE = re.compile(r"^(?:Scientific title|Official title|Public title):[ \t]*(.+)$", re.M)
_INTERVENTION_LINE = re.compile(r"^Interventions?:[ \t]*(.+)$", re.M)
# A token with two capitals in a row, with its hyphenated parts (a word's leading capital is not one).
_ACRONYM = re.compile(r"(?<![\w-])(?=[\w-]*[A-Z]{2})[^\W\d_][^\W_]*(?:-[^\W_]+)*(?![\w-])")
_CAPITALS = re.compile(r"[A-Z]{2}")
_UPPER = re.compile(r"[^\W\d_a-z]")  # letters but ASCII lower case: upper case, nearly always
_LETTERS = re.compile(r"[^\W\d_]")
# "the RECOVERY trial", "the ACHIEVE open-label trial", "RECOVERY Collaborative Group", "the DARE-19 study",
# "INSPIRATION/INSPIRATION-S studies", "the trial (TOCIVID-19)"; not "SOD group", "(PCC) patients".
_TRIAL = r"(?:trials?|study|studies|investigators|collaborat\w*|consortium)"
_TRIAL_AFTER = re.compile(rf"\)?[\s,/-]+(?:[^\W_]+(?:-[^\W_]+)*[\s,/-]+)?{_TRIAL}\b", re.I)
_TRIAL_BEFORE = re.compile(rf"\b{_TRIAL}[\s,:]+(?:[^\W_]+\s+)?\(?$", re.I)
_GROUP = re.compile(r"\b(?:group|team|investigators|consortium|collaborat\w*|committee|network)\b")
PLACEHOLDER = PLACEHOLDER_PREFIX.casefold()
KIND_LABELS = {"study": "the study's title", "registry_record": "a registry record's title",
               "source_record": "a registry's title for it", "report": "the title of another report"}


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text)).casefold()


def normalise(text: str | None) -> str:
    """A title as compared: case-folded, accents dropped, the disease's names as ``covid``, British
    spellings of randomisation as American, words joined by single spaces."""
    folded = _COVID.sub(" covid ", _fold(text or ""))
    return " ".join(_WORDS.findall(folded.replace("randomis", "randomiz")))


def nearest_titles(queries: Sequence[str], corpus: Sequence[str], *, background: Sequence[str] = (),
                   top: int = TOP_TITLES) -> Iterator[list[tuple[int, float]]]:
    """For each query (normalised), the ``top`` most similar corpus titles as (index, cosine), best
    first, a batch of queries at a time. The IDF is learnt from the corpus and ``background``, not from
    the queries: a pair scores the same whichever references are computed together."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # 1.5 s to import: only when computing

    fitted = [*corpus, *background]
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32,
                                 max_df=max(int(MAX_DF * len(fitted)), MIN_MAX_DF))
    try:
        titles = vectorizer.fit_transform(fitted)[:len(corpus)].T.tocsr()
    except ValueError:  # not one title of three characters: nothing is similar
        yield from ([] for _ in queries)
        return
    for start in range(0, len(queries), BATCH):
        block = (vectorizer.transform(queries[start:start + BATCH]) @ titles).toarray()
        for row in block:
            best = np.argpartition(-row, top)[:top] if top < len(row) else np.arange(len(row))
            best = best[np.argsort(-row[best], kind="stable")]
            yield [(int(i), float(row[i])) for i in best if row[i] > 0]


def acronyms(text: str | None, *, where: str = "study") -> set[str]:
    """Trial acronyms written in ``text``: tokens with two capitals in a row, three or more in all and
    mostly upper case (RECOVERY, TOCIVID-19, ACTT-1, LOWRAD-Cov19); in a text mostly in capitals only
    those in parentheses. ``where`` the text is: a ``study``'s title (every such token: a study's
    titles name the trial); a reference's ``title`` (where capitals also abbreviate: RAAS, MIS-C) only
    one in parentheses, named as a trial or opening the title before a colon ("COVIDOSE: a phase II
    trial"); an ``abstract`` (headings, methods,
    genes, scores) only one named as a trial: "the RECOVERY trial", "RECOVERY Collaborative Group",
    "the trial (RECOVERY)", never a heading (``METHODS:``)."""
    if not text or not _CAPITALS.search(text):
        return set()
    shouting = len(_UPPER.findall(text)) > 0.6 * len(_LETTERS.findall(text))
    found = set()
    for m in _ACRONYM.finditer(text):
        token = m.group(0)
        upper = len(_UPPER.findall(token))
        if upper < 3 or upper < 0.6 * len(_LETTERS.findall(token)):
            continue
        bracketed = text[m.start() - 1:m.start()] == "(" and text[m.end():m.end() + 1] == ")"
        if shouting and not bracketed:
            continue
        named = bool(_TRIAL_AFTER.match(text, m.end())
                     or _TRIAL_BEFORE.search(text, max(0, m.start() - 40), m.start()))
        opening = not text[:m.start()].strip() and text[m.end():m.end() + 1] == ":"  # "COVIDOSE: a trial"
        if where == "title" and not (named or bracketed or opening):
            continue
        if where == "abstract" and (not named or text[m.end():m.end() + 1] == ":"):
            continue
        found.add(token.upper())
    return found


def author_key(name: str) -> str | None:
    """An author as compared: surname and first initial (``Chu M``, ``Chu, Ming`` and ``Ming Chu`` alike),
    or a group's whole name."""
    words = _WORDS.findall(name)
    if not words:
        return None
    folded = [_fold(w) for w in words]
    if _GROUP.search(" ".join(folded)) or len(words) > 5:
        return " ".join(folded)
    if "," in name:
        surname, _, given = name.partition(",")
        given_words = _WORDS.findall(given)
        return " ".join(_fold(w) for w in _WORDS.findall(surname)) + (
            f" {_fold(given_words[0])[0]}" if given_words else "")
    if len(words) > 1 and words[-1].isupper() and len(words[-1]) <= 3:
        return " ".join(folded[:-1]) + f" {folded[-1][0]}"
    if len(words) > 1:
        return f"{folded[-1]} {folded[0][0]}"
    return folded[0]


@cache
def _country_codes() -> dict[str, str]:
    """Country names (folded words) -> alpha-2 code: pycountry's names and the registries' spellings."""
    import pycountry

    codes = {alias: code for alias, code in COUNTRY_ALIASES.items() if len(alias) > 2}
    for country in pycountry.countries:
        for attr in ("name", "common_name"):
            name = getattr(country, attr, None)
            if name and "," not in name:
                codes[" ".join(_fold(w) for w in _NAME_WORDS.findall(name))] = country.alpha_2
    return codes


@cache
def _country_starts() -> frozenset[str]:
    return frozenset(name.split()[0] for name in _country_codes())


def countries_named(text: str | None) -> dict[str, str]:
    """The countries ``text`` names, capitalised as a name is written (`in India`, not `Acacia
    senegal`): alpha-2 code -> the name as written; the longest name (up to five words) first."""
    codes, starts = _country_codes(), _country_starts()
    found: dict[str, str] = {}
    words = list(_NAME_WORDS.finditer(text or ""))
    folded: dict[int, str] = {}
    for i, first in enumerate(words):
        word = first.group(0)
        if not word[0].isupper() or _fold(word) not in starts:
            continue
        for n in range(min(5, len(words) - i), 0, -1):
            key = " ".join(folded.setdefault(j, _fold(words[j].group(0))) for j in range(i, i + n))
            if key in codes:
                found.setdefault(codes[key], text[first.start():words[i + n - 1].end()])
                break
    return found


@cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def _words(text: str) -> set[str]:
    stop = _stop_words()
    return {w for w in normalise(text).split() if len(w) > 3 and not w.isdigit() and w not in stop}


def _rows(sql: str, params: Sequence = ()) -> list[tuple]:
    return database.execute_sql(sql, list(params)).fetchall()


def _json_list(text: str | None) -> list:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


@dataclass
class Register:
    """The studies' side of the comparison, read once per computation."""

    names: dict[int, tuple[str, str]] = field(default_factory=dict)  # study -> (name, title)
    countries: dict[int, set[str]] = field(default_factory=dict)  # study -> alpha-2 codes
    rows: list[tuple[int, str, str, str]] = field(default_factory=list)  # study, as written, kind, normalised
    acronym_studies: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    author_studies: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    authors_written: dict[tuple[int, str], str] = field(default_factory=dict)
    interventions: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    word_df: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # studies with it in title
    # or interventions
    background: list[str] = field(default_factory=list)  # every reference's title, normalised

    @classmethod
    def load(cls) -> Register:
        register = cls()
        seen: set[tuple[int, str]] = set()
        acronym_of: dict[int, set[str]] = defaultdict(set)

        def add(study_id: int, title: str | None, kind: str) -> None:
            if not title or not title.strip() or study_id not in register.names:
                return
            title = title.strip()
            if title.casefold().startswith(PLACEHOLDER):
                return
            acronym_of[study_id] |= acronyms(title)
            key = normalise(title)
            if key and (study_id, key) not in seen:
                seen.add((study_id, key))
                register.rows.append((study_id, title, kind, key))

        p = database.param
        for study_id, name, title, countries in _rows(
                "SELECT id, name, title, countries FROM study ORDER BY id"):
            register.names[study_id] = (name, title)
            register.countries[study_id] = {c for c in _json_list(countries) if isinstance(c, str)}
            add(study_id, title, "study")
        for study_id, title, text in _rows(
                "SELECT sr.study_id, r.title, r.abstract FROM study_reference sr "
                "JOIN reference r ON r.id = sr.reference_id "
                f"WHERE sr.role = 'reports' AND r.type = {p} ORDER BY r.id", [REGISTRY_RECORD]):
            add(study_id, title, "registry_record")
            for line in _TITLE_LINE.findall(text or ""):
                add(study_id, line, "registry_record")
            for line in _INTERVENTION_LINE.findall(text or ""):
                register.interventions[study_id] |= _words(line)
        for study_id, title in _rows(
                "SELECT g.study_id, s.title FROM source_record s "
                "JOIN registration g ON g.identifier = s.identifier WHERE s.title IS NOT NULL ORDER BY s.id"):
            add(study_id, title, "source_record")
        for study_id, title, authors in _rows(
                "SELECT sr.study_id, r.title, r.authors FROM study_reference sr "
                "JOIN reference r ON r.id = sr.reference_id "
                f"WHERE sr.role = 'reports' AND r.type <> {p} ORDER BY r.id", [REGISTRY_RECORD]):
            add(study_id, title, "report")
            for written in _json_list(authors):
                key = author_key(written) if isinstance(written, str) else None
                if key:
                    register.author_studies[key].add(study_id)
                    register.authors_written.setdefault((study_id, key), written)
        register.background = [normalise(title) for (title,) in _rows(
            f"SELECT title FROM reference WHERE type <> {p} ORDER BY id", [REGISTRY_RECORD])]
        for study_id, found in acronym_of.items():
            for acronym in found:
                register.acronym_studies[acronym].add(study_id)
        study_words: dict[int, set[str]] = defaultdict(set)
        for study_id, _, _, key in register.rows:
            study_words[study_id].update(key.split())
        for study_id, words in register.interventions.items():
            study_words[study_id] |= words
        for words in study_words.values():
            for word in words:
                register.word_df[word] += 1
        return register

    def rarity(self, word: str) -> float:
        """A word's rarity among the studies' titles and interventions, 0-1 (1: one study's); 0 when
        more than ``MAX_INTERVENTION_DF`` of the studies have it."""
        total = len(self.names)
        df = self.word_df.get(word, 0)
        if not df or df > max(1.0, MAX_INTERVENTION_DF * total):
            return 0.0
        return math.log(total / df) / math.log(total) if total > 1 else 1.0


@dataclass
class Target:
    id: int
    title: str
    abstract: str | None
    authors: list[str]


def _combine(reasons: list[dict]) -> float:
    remaining = 1.0
    for reason in reasons:
        remaining *= 1.0 - WEIGHTS[reason["kind"]] * reason["score"]
    return round(1.0 - remaining, 3)


def score_reference(target: Target, titles: list[tuple[int, float]], register: Register,
                    excluded: set[int], cited: set[int] = frozenset()) -> list[tuple[int, float, list[dict]]]:
    """Every candidate study of one reference as (study, score, reasons), best first (ties by id)."""
    candidates: dict[int, list[dict]] = {}
    for study_id in sorted(cited - excluded):
        candidates[study_id] = [{
            "kind": "named", "score": round(1 / len(cited), 3),
            "detail": "The reference names the study's registration (now a citing link)"
                      + (f", one of {len(cited)} studies it names." if len(cited) > 1 else ".")}]
    for row, similarity in titles:
        study_id, written, kind, _ = register.rows[row]
        if study_id in excluded or similarity < MIN_TITLE_SIMILARITY or any(
                r["kind"] == "title" for r in candidates.get(study_id, ())):
            continue
        candidates.setdefault(study_id, []).append({
            "kind": "title", "score": round(similarity, 3),
            "detail": f"Title like {KIND_LABELS[kind]}: “{written}” (similarity {similarity:.2f})."})
        if len(candidates) >= CANDIDATES:
            break

    named_acronyms = acronyms(target.title, where="title") | acronyms(target.abstract, where="abstract")
    for acronym in sorted(named_acronyms):
        holders = register.acronym_studies.get(acronym, set())
        if not holders or len(holders) > MAX_ACRONYM_STUDIES:
            continue
        others = f" (and {len(holders) - 1} other studies')" if len(holders) > 1 else ""
        for study_id in sorted(holders - excluded):
            candidates.setdefault(study_id, []).append({
                "kind": "acronym", "score": round(1 / len(holders), 3),
                "detail": f"Trial acronym {acronym}, in the study's titles{others}."})

    shared: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for written in dict.fromkeys(a for a in target.authors if isinstance(a, str)):
        key = author_key(written)
        holders = register.author_studies.get(key, set()) if key else set()
        for study_id in sorted(holders - excluded):
            shared[study_id].append((register.authors_written[(study_id, key)], len(holders)))
    for study_id, names in shared.items():
        candidates.setdefault(study_id, []).append({
            "kind": "authors", "score": round(min(1.0, sum(1 / n for _, n in names) / 2), 3),
            "detail": "Authors of another report of the study: " + ", ".join(n for n, _ in names) + "."})

    text = f"{target.title}\n{target.abstract or ''}"
    words, named = _words(text), countries_named(text)
    scored = []
    for study_id, reasons in candidates.items():
        rare = sorted(((register.rarity(w), w) for w in words & register.interventions.get(study_id, set())),
                      key=lambda item: (-item[0], item[1]))
        rare = [(weight, word) for weight, word in rare if weight > 0]
        if rare:
            reasons.append({
                "kind": "intervention", "score": round(min(1.0, sum(weight for weight, _ in rare)), 3),
                "detail": "Words of the study's interventions: " + ", ".join(w for _, w in rare[:6]) + "."})
        places = [written for code, written in named.items() if code in register.countries.get(study_id, ())]
        if places:
            reasons.append({"kind": "country", "score": 1.0,
                            "detail": f"Names {', '.join(places)}, where the study recruits."})
        scored.append((study_id, _combine(reasons), reasons))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored


# ---- computing --------------------------------------------------------------------------------------

def _targets(reference_ids: Sequence[int] | None) -> tuple[list[Target], set[int]]:
    """The references to compute for and, of those asked, the others (their open suggestions go): a
    registry record, a reference with a `reports` link, or a secondary one (a review, guideline,
    editorial... by its publication types or title, as linking's rules say: it cites studies, it reports
    none)."""
    reported = {ref_id for (ref_id,) in _rows(
        "SELECT DISTINCT reference_id FROM study_reference WHERE role = 'reports'")}
    sql = "SELECT id, title, abstract, authors, type, publication_types FROM reference "
    if reference_ids is None:
        rows = _rows(sql + f"WHERE type <> {database.param} ORDER BY id", [REGISTRY_RECORD])
    else:
        rows = sorted(select_in(sql + "WHERE {where}", "id", reference_ids))
    targets, skipped = [], set()
    for ref_id, title, abstract, authors, kind, types in rows:
        facts = evidence.Facts(type=kind, title=title or "",
                               publication_types=tuple(t for t in _json_list(types) if isinstance(t, str)))
        if ref_id in reported or kind == REGISTRY_RECORD or evidence.is_secondary(facts):
            skipped.add(ref_id)
        else:
            targets.append(Target(ref_id, title or "", abstract, _json_list(authors)))
    return targets, skipped


def _excluded(reference_ids: Sequence[int]) -> dict[int, set[int]]:
    """For each reference, the studies it reports or a curator decided on (a role set by hand, a suggestion
    accepted or rejected)."""
    excluded: dict[int, set[int]] = defaultdict(set)
    curated = "true" if is_postgres() else "1"
    for sql in ("SELECT reference_id, study_id FROM study_reference "
                f"WHERE (role = 'reports' OR role_curated = {curated}) AND {{where}}",
                "SELECT reference_id, study_id FROM suggestion WHERE status <> 'open' AND {where}"):
        for ref_id, study_id in select_in(sql, "reference_id", reference_ids):
            excluded[ref_id].add(study_id)
    return excluded


def _cited(reference_ids: Sequence[int]) -> dict[int, set[int]]:
    """For each reference, the studies it is linked to as citing them (its text names their numbers)."""
    cited: dict[int, set[int]] = defaultdict(set)
    for ref_id, study_id in select_in("SELECT reference_id, study_id FROM study_reference "
                                      "WHERE role = 'cites' AND {where}", "reference_id", reference_ids):
        cited[ref_id].add(study_id)
    return cited


def rank(targets: list[Target], *, limit: int = LIMIT,
         register: Register | None = None) -> dict[int, list[tuple[int, float, list[dict]]]]:
    """For each reference, its best ``limit`` studies scoring ``MIN_SCORE`` or more (none it is linked to
    or a curator decided on) as (study, score, reasons). Reads only."""
    if not targets:
        return {}
    register = register or Register.load()
    excluded = _excluded([t.id for t in targets])
    cited = _cited([t.id for t in targets])
    similar = nearest_titles([normalise(t.title) for t in targets], [row[3] for row in register.rows],
                             background=register.background)
    found = {}
    for target, titles in zip(targets, similar, strict=True):
        scored = score_reference(target, titles, register, excluded.get(target.id, set()),
                                 cited.get(target.id, set()))
        found[target.id] = [s for s in scored if s[1] >= MIN_SCORE][:limit]
    return found


def compute(reference_ids: Iterable[int] | None = None, *, limit: int = LIMIT) -> dict:
    """Recompute the open suggestions of every reference with no `reports` link (``None``), or of those
    given: each keeps its best ``limit`` candidates (a pair suggested again keeps its row and id), the
    others go, and so do those of references that have a `reports` link now. Accepted and rejected pairs
    are never suggested again. The candidates are scored from what is read first; the write is one
    transaction that reads the links and decisions again (those made meanwhile win). Returns counts
    and seconds."""
    if limit < 1:
        raise InvalidInput("limit must be at least 1.", errors={"limit": ["Must be at least 1."]})
    started = time.perf_counter()
    asked = None if reference_ids is None else sorted(set(reference_ids))
    targets, _ = _targets(asked)
    found = rank(targets, limit=limit)
    with write_transaction():
        current, skipped = _targets(asked)
        current_ids = [t.id for t in current]
        excluded = _excluded(current_ids)
        wanted = {(ref_id, study_id): (score, reasons)
                  for ref_id in current_ids for study_id, score, reasons in found.get(ref_id, [])
                  if study_id not in excluded.get(ref_id, set())}
        sql = "SELECT id, reference_id, study_id, score, reasons FROM suggestion WHERE status = 'open'"
        existing = (_rows(sql) if asked is None
                    else select_in(sql + " AND {where}", "reference_id", asked))
        gone, changes, kept = [], [], set()
        for row_id, ref_id, study_id, score, reasons in existing:
            new = wanted.get((ref_id, study_id))
            if new is None:
                gone.append(row_id)
                continue
            kept.add((ref_id, study_id))
            if round(score, 3) != new[0] or _json_list(reasons) != new[1]:
                changes.append((row_id, {"score": new[0],
                                         "reasons": json.dumps(new[1], ensure_ascii=False)}))
        for start in range(0, len(gone), 5000):
            Suggestion.delete().where(Suggestion.id.in_(gone[start:start + 5000])).execute()
        update_rows(Suggestion, changes)
        now = utcnow()
        insert_rows(Suggestion, [
            {"reference": ref_id, "study": study_id, "score": score, "status": OPEN, "created": now,
             "reasons": json.dumps(reasons, ensure_ascii=False)}
            for (ref_id, study_id), (score, reasons) in sorted(wanted.items())
            if (ref_id, study_id) not in kept])
    report = {"references": len(current_ids), "with_suggestions": len({ref for ref, _ in wanted}),
              "open": len(wanted), "created": len(wanted) - len(kept), "updated": len(changes),
              "removed": len(gone), "seconds": round(time.perf_counter() - started, 3)}
    if asked is not None:
        report["not_computed"] = len(skipped)  # a `reports` link, a registry record, a review
    logger.info("suggestions computed: %s", report)
    return report


def compute_after_import(reference_ids: Iterable[int]) -> dict | None:
    """After an import (inside its transaction or after it): compute the suggestions of the references
    it created or changed. Those with a `reports` link only lose their open suggestions; when none lacks
    one nothing more is read, else it costs one comparison with the whole register (6-9 s on the real
    data set, about as much for one reference as for a thousand)."""
    asked = sorted(set(reference_ids))
    if not asked:
        return None
    return compute(asked)


# ---- reading and deciding ---------------------------------------------------------------------------

QUEUE_SORTS = {"id": Suggestion.id, "score": Suggestion.score, "created": Suggestion.created}
# Scores in thousandths: a cursor's value read back from JSON need not equal a stored float exactly, so a
# keyset walk on the column itself could repeat rows.
_SCORE_KEY = Cast(fn.ROUND(Suggestion.score * 1000), "INTEGER")


def queue_keys(sort: str) -> list[SortKey]:
    """The order of the queue for ``sort`` (`score`, `created`, `id`, `-` descending), ending with the id."""
    if sort.lstrip("-") == "score":
        return [SortKey(_SCORE_KEY, sort.startswith("-"), "score_key", "int"),
                SortKey(Suggestion.id, False, "id")]
    return sort_keys(sort, QUEUE_SORTS, Suggestion.id)


def _with_titles():
    return (Suggestion.select(Suggestion, Study.name.alias("study_name"), Study.title.alias("study_title"),
                              Reference.title.alias("reference_title"))
            .join(Study, on=(Suggestion.study == Study.id))
            .switch(Suggestion).join(Reference, on=(Suggestion.reference == Reference.id)))


def suggestion_dict(row) -> dict:
    return {"id": row.id, "reference_id": row.reference_id, "reference_title": row.reference_title,
            "study_id": row.study_id, "study_name": row.study_name, "study_title": row.study_title,
            "score": row.score, "reasons": _json_list(row.reasons), "status": row.status,
            "created": row.created, "decided": row.decided}


def queue(status: str = OPEN, *, min_score: float | None = None):
    """The suggestions with ``status`` scoring ``min_score`` or more (a query: the caller orders and pages
    it, ``queue_rows``)."""
    query = Suggestion.select().where(Suggestion.status == status)
    # Scores are compared in thousandths, as they are sorted.
    return query if min_score is None else query.where(_SCORE_KEY >= round(min_score * 1000))


def queue_rows(top):
    """The whole rows, with the study's and the reference's titles, of the suggestions ``top`` (a
    subquery with an ``id`` column) selects."""
    return _with_titles().join(top, on=(Suggestion.id == top.c.id))


def for_reference(reference_id: int) -> list[dict]:
    """A reference's suggestions: the open ones best first, then those decided, latest first."""
    if not Reference.select(Reference.id).where(Reference.id == reference_id).exists():
        raise NotFound(f"Reference {reference_id} does not exist.")
    rows = list(_with_titles().where(Suggestion.reference == reference_id).objects())
    opened = sorted((r for r in rows if r.status == OPEN), key=lambda r: (-r.score, r.id))
    decided = sorted((r for r in rows if r.status != OPEN), key=lambda r: (r.decided, r.id), reverse=True)
    return [suggestion_dict(r) for r in opened + decided]


def get(suggestion_id: int) -> dict:
    row = _with_titles().where(Suggestion.id == suggestion_id).objects().first()
    if row is None:
        raise NotFound(_missing(suggestion_id))
    return suggestion_dict(row)


def _missing(suggestion_id: int) -> str:
    return (f"Suggestion {suggestion_id} does not exist: a suggestion goes with its study or its reference, "
            f"and an open one when it is no longer among the best (suggestions are computed again after "
            f"imports).")


def _locked(suggestion_id: int) -> Suggestion:
    suggestion = locked(Suggestion.select().where(Suggestion.id == suggestion_id)).first()
    if suggestion is None:
        raise NotFound(_missing(suggestion_id))
    return suggestion


def accept(suggestion_id: int) -> dict:
    """Link the reference to the suggested study by hand (a report of it) and mark the suggestion
    accepted; the reference's other open suggestions go. One accepted or rejected already is a 409."""
    with write_transaction():
        suggestion = _locked(suggestion_id)
        if suggestion.status != OPEN:
            raise Conflict(f"Suggestion {suggestion_id} was already {suggestion.status} on "
                           f"{suggestion.decided:%Y-%m-%d}; nothing changed.")
        studies.link_reference(suggestion.study_id, suggestion.reference_id)
        Suggestion.update(status=ACCEPTED, decided=utcnow()).where(Suggestion.id == suggestion_id).execute()
        Suggestion.delete().where((Suggestion.reference == suggestion.reference_id)
                                  & (Suggestion.status == OPEN)).execute()
    return get(suggestion_id)


def reject(suggestion_id: int) -> tuple[dict, bool]:
    """Remember that the study is not the reference's: never suggested again. Returns the suggestion and
    whether it changed (rejecting a rejected one changes nothing); an accepted one is a 409."""
    with write_transaction():
        suggestion = _locked(suggestion_id)
        if suggestion.status == ACCEPTED:
            raise Conflict(f"Suggestion {suggestion_id} was accepted: the reference is linked to the study. "
                           f"Unlink it instead (DELETE /studies/{suggestion.study_id}/references/"
                           f"{suggestion.reference_id}); nothing changed.")
        changed = suggestion.status == OPEN
        if changed:
            (Suggestion.update(status=REJECTED, decided=utcnow())
             .where(Suggestion.id == suggestion_id).execute())
    return get(suggestion_id), changed
