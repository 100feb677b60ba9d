"""The web-search grammar of `q`, parsed once and written out for SQLite FTS5 and Postgres.

Grammar (as Postgres' ``websearch_to_tsquery``): words are ANDed; ``"quoted phrase"``; ``OR``
between two terms; ``-word`` or ``-"phrase"`` excludes. AND binds tighter than OR. Everything else
is a separator, so no user character ever reaches FTS5 ``MATCH`` or ``to_tsquery`` syntax: the
output holds only words made of letters and digits, with operators written by this module.

Both databases index text prepared by :func:`document_text` (accents folded, every run of
non-word characters a single space), so they split words identically. English stop words are
dropped from the query (Postgres drops them from its index). A registration identifier written in
any form (``NCT 04280705``, ``EUCTR2020-001909-22-FR``) is replaced by one token,
:func:`identifier_token` of its canonical form, which documents carry for the identifiers they hold.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..identifiers import find_identifiers

MAX_TERMS = 32

# Postgres' `english.stop` (the Snowball list): the same words are ignored on both databases.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
herself it its itself they them their theirs themselves what which who whom this that these those am is
are was were be been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below to from up
down in out on off over under again further then once here there when where why how all any both each few
more most other some such no nor not only own same so than too very s t can will just don should now
""".split())

_WORD = re.compile(r"[^\W_]+")
# A token of the query: a quote, a minus that starts a term, or a run of word characters (joined by
# in-word punctuation such as `covid-19` or `2.5`, which makes a phrase).
_TOKEN = re.compile(r'"|(?<![^\s(])-(?=[\w"])|[^\W_]+(?:[^\s"\w]+[^\W_]+)*')


def fold(text: str) -> str:
    """Lower-case, accents removed (``Lúcia`` -> ``lucia``, ``ß`` -> ``ss``)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def identifier_token(identifier: str) -> str:
    """The single word standing for a canonical registration identifier in documents and queries."""
    return "".join(words(identifier))


def document_text(*parts: str | None) -> str:
    """Text as both search indexes read it: folded, words separated by single spaces."""
    return " ".join(w for part in parts if part for w in words(part))


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or a phrase

    def fts5(self) -> str:
        return '"' + " ".join(self.words) + '"'

    def websearch(self) -> str:
        return self.words[0] if len(self.words) == 1 else '"' + " ".join(self.words) + '"'


@dataclass
class Group:
    """Terms ANDed, minus the excluded ones."""

    include: list[Term] = field(default_factory=list)
    exclude: list[Term] = field(default_factory=list)


@dataclass
class SearchQuery:
    """Groups ORed. Empty when no group has a word to look for: it matches nothing."""

    groups: list[Group]

    @property
    def empty(self) -> bool:
        return not self.groups

    def fts5(self) -> str:
        """An FTS5 MATCH expression: ``("a" AND "b c") NOT ("d") OR ...``."""
        parts = []
        for group in self.groups:
            text = "(" + " AND ".join(t.fts5() for t in group.include) + ")"
            if group.exclude:
                text += " NOT (" + " OR ".join(t.fts5() for t in group.exclude) + ")"
            parts.append("(" + text + ")")
        return " OR ".join(parts)

    def websearch(self) -> str:
        """The same query for Postgres' ``websearch_to_tsquery``."""
        return " or ".join(
            " ".join([t.websearch() for t in g.include] + ["-" + t.websearch() for t in g.exclude])
            for g in self.groups)

    def terms(self) -> int:
        return sum(len(g.include) + len(g.exclude) for g in self.groups)

    @property
    def normalized(self) -> str:
        """The query as it was read, for answers to echo."""
        return self.websearch()


class QueryTooLong(ValueError):
    pass


def _with_identifier_tokens(text: str) -> str:
    """Each registration identifier in ``text`` replaced by its token (written forms vary)."""
    hits = find_identifiers(text)
    for hit in sorted(hits, key=lambda h: h.start, reverse=True):
        text = text[:hit.start] + " " + identifier_token(hit.identifier) + " " + text[hit.end:]
    return text


def _term(raw_words: list[str], *, phrase: bool) -> Term | None:
    kept = raw_words if phrase else [w for w in raw_words if w not in STOP_WORDS or len(raw_words) > 1]
    if not kept or all(w in STOP_WORDS for w in kept):
        return None
    return Term(tuple(kept))


def parse(text: str) -> SearchQuery:
    """Parse ``q``; raise QueryTooLong past MAX_TERMS terms. Never fails on any other input."""
    text = _with_identifier_tokens(text)
    groups: list[Group] = [Group()]
    negate = False
    pending_or = False
    tokens = list(_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        token = tokens[i].group()
        i += 1
        if token == "-":
            negate = True
            continue
        if token == '"':
            phrase: list[str] = []
            while i < len(tokens) and tokens[i].group() != '"':
                phrase += words(tokens[i].group())
                i += 1
            i += 1  # the closing quote (an unbalanced quote runs to the end)
            term = _term(phrase, phrase=True)
        elif token.lower() == "or":
            if groups[-1].include or groups[-1].exclude:
                pending_or = True
            negate = False
            continue
        else:
            term = _term(words(token), phrase=False)
        if term is not None:
            if pending_or:
                groups.append(Group())
                pending_or = False
            (groups[-1].exclude if negate else groups[-1].include).append(term)
        negate = False
    # A group with nothing to include cannot be searched for (FTS5 has no bare NOT): it is dropped,
    # on both databases alike.
    query = SearchQuery([g for g in groups if g.include])
    if query.terms() > MAX_TERMS:
        raise QueryTooLong(f"At most {MAX_TERMS} search terms; this has {query.terms()}.")
    return query
