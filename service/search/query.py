"""The search grammar of `q`: a systematic reviewer's strategy, parsed once into a tree, echoed as it
was read, and written out for SQLite FTS5 and for Postgres ``to_tsquery``.

Grammar (operators upper-case; precedence ``NOT`` > ``AND`` > ``OR``, as PubMed and Europe PMC
document it)::

    strategy := any
    any      := all ( "OR" all )*
    all      := not ( ["AND"] not )*            terms side by side are ANDed
    not      := unary ( "NOT" unary )*          a NOT b NOT c  =  (a NOT b) NOT c
    unary    := "-" primary | primary           -x  =  NOT x within its AND
    primary  := [field ":"] ( word | word* | "phrase" | "(" any ")" )

- A *word* is a run of letters and digits; in-word punctuation joins words into a phrase
  (``covid-19`` is ``"covid 19"``, ``10.1056/nejmoa2007764`` a phrase of three). A registration
  identifier in any written form (``NCT 04280705``, ``EUCTR2020-001909-22-FR``) is one word.
- ``word*`` (at least 3 characters before ``*``; also the last word of ``sars-cov*``) stands for
  every word of the register that begins so: the index layer expands it from the vocabulary
  (``search_word``), each word then searched as a word (stemmed). Stemming indexes cannot answer
  truncation themselves: ``vaccinat*`` on the stems (``vaccin``) finds nothing in FTS5 and Postgres
  alike.
- A field tag restricts a word, phrase, truncation or parenthesised group to one field (the
  fields of studies and of references below).
- English stop words are not searched (Postgres leaves them out of its index): alone they are
  dropped, at a phrase's ends too; a strategy with nothing left to look for is refused. Lower-case
  ``and``/``or``/``not`` between terms are refused rather than dropped: they read as operators and
  would silently change the set.
- A negation needs something to exclude from: ``NOT`` after a term, ``-x`` beside a term of the same
  AND. Nothing else is reinterpreted: an unbalanced parenthesis or quote, a dangling operator, an
  unknown field, a short truncation, wildcards or tags of other databases (``?``, ``$``, ``[tiab]``,
  ``#1``), nesting deeper than :data:`MAX_DEPTH` or more than :data:`MAX_TERMS` terms raise
  :class:`QueryError` with the position (1-based) and what was expected.

Both databases index text prepared by :func:`document_text` (accents folded, every run of
non-word characters a single space), so they split words identically. The output holds only words
made of letters and digits, with operators written by this module: no user character reaches FTS5
``MATCH`` or ``to_tsquery`` syntax.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from ..identifiers import find_identifiers

MAX_LENGTH = 20_000
MAX_TERMS = 1_000
MAX_DEPTH = 20  # parentheses within parentheses; published strategies nest two or three
MIN_PREFIX = 3
MAX_WORD = 100  # characters: Postgres drops a query word over 2,047 with a notice, FTS5 matches it
RANK_TERMS = 16  # operands of the tsquery relevance is ranked by on Postgres

STUDY_FIELDS = ("title", "name", "registration", "registry", "report_title", "abstract", "author")
REFERENCE_FIELDS = ("title", "abstract", "author", "source", "doi", "pmid")

# Postgres' `english.stop` (the Snowball list): the same words are ignored on both databases.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
herself it its itself they them their theirs themselves what which who whom this that these those am is
are was were be been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below to from up
down in out on off over under again further then once here there when where why how all any both each few
more most other some such no nor not only own same so than too very s t can will just don should now
""".split())

OPERATORS = ("AND", "OR", "NOT")
# Characters with a meaning in other databases' syntax that this grammar does not have: read as
# separators they would silently change the strategy.
_FOREIGN = {
    "?": "`?` is a wildcard elsewhere; here only `*` truncates, at the end of a word",
    "$": "`$` is a wildcard elsewhere; here only `*` truncates, at the end of a word",
    "#": "line references (`#1 OR #2`) are not read; paste the lines' terms",
    "[": "field tags in brackets (`[tiab]`) are not read; write `title:` or `abstract:` before the term",
    "]": "field tags in brackets (`[tiab]`) are not read; write `title:` or `abstract:` before the term",
    "{": "braces are not part of this grammar; group with parentheses",
    "}": "braces are not part of this grammar; group with parentheses",
    "~": "proximity (`~`) is not supported; use a phrase",
    "|": "write `OR`",
    "&": "write `AND`",
    "^": "boosting (`^`) is not supported",
    "\\": "`\\` is not part of this grammar",
}

_WORD = re.compile(r"[^\W_]+")
_RUN = re.compile(r"[^\W_]+(?:[^\s\w\"()*?$#\[\]{}~|&^\\]+[^\W_]+)*")
_FIELD = re.compile(r"([A-Za-z][A-Za-z_]*):")
_SPACE = re.compile(r"\s+")


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


class QueryError(ValueError):
    """A strategy that cannot be read as written; ``position`` is 1-based (0: the whole strategy)."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(f"At character {position}: {message}" if position else message)
        self.position = position


# --- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or a phrase (``words``, stop words kept inside a phrase), its last word truncated when
    ``prefix``, restricted to ``field`` when given."""

    words: tuple[str, ...]
    prefix: bool = False
    field: str | None = None
    display: str = dataclass_field(default="", compare=False)  # as written, for identifiers

    def echo(self) -> str:
        if self.prefix:  # `sars-cov*`: a truncated phrase is written with in-word punctuation
            text = "-".join(self.words) + "*"
        else:
            text = self.display or " ".join(self.words)
            if len(self.words) > 1:
                text = f'"{text}"'
        return f"{self.field}:{text}" if self.field else text


@dataclass(frozen=True)
class All:
    """Every ``include`` and none of ``exclude`` (never empty of includes)."""

    include: tuple[Node, ...]
    exclude: tuple[Node, ...] = ()

    def echo(self) -> str:
        text = " AND ".join(_echo_operand(n) for n in self.include)
        if self.exclude:
            if len(self.include) > 1:
                text = f"({text})"
            text += "".join(" NOT " + _echo_operand(n) for n in self.exclude)
        return text


@dataclass(frozen=True)
class Any:
    """At least one of ``options``."""

    options: tuple[Node, ...]

    def echo(self) -> str:
        return " OR ".join(_echo_operand(n) for n in self.options)


Node = Term | All | Any


def _echo_operand(node: Node) -> str:
    return node.echo() if isinstance(node, Term) else f"({node.echo()})"


def _terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    children = node.options if isinstance(node, Any) else node.include + node.exclude
    return [t for child in children for t in _terms(child)]


@dataclass
class SearchQuery:
    """A parsed strategy: its tree and how it was read. ``expansions`` (the words each truncation
    stands for) and ``lexemes`` (Postgres' stems of its words) are filled by the index when it
    first reads the register for this query."""

    root: Node
    expansions: dict[str, list[str]] | None = dataclass_field(default=None, compare=False, repr=False)
    lexemes: dict[str, tuple[str, ...]] | None = dataclass_field(default=None, compare=False, repr=False)

    @property
    def normalized(self) -> str:
        """The strategy as it was read: every operator written, every group parenthesised, every
        field tag on its term, stop words gone, identifiers in canonical form."""
        return self.root.echo()

    def terms(self) -> int:
        return len(_terms(self.root))

    def prefixes(self) -> set[str]:
        """The truncated words to expand (the last word of each truncated term)."""
        return {t.words[-1] for t in _terms(self.root) if t.prefix}

    def fts5(self, expansions: Mapping[str, list[str]] | None = None) -> str | None:
        """An FTS5 MATCH expression (columns named as the fields), or None: it matches nothing (a
        truncation no word of the register begins with)."""
        return _fts5(self.root, expansions or {})

    def postgres(self, expansions: Mapping[str, list[str]] | None = None,
                 lexicon: Lexicon | None = None) -> Plan | None:
        """The strategy for Postgres: each subtree whose terms share one field (None: every field)
        becomes one tsquery (``lexicon``'s lexemes, quoted) matched against that field's vector; the
        rest is SQL AND / OR / NOT of those. None: it matches nothing."""
        return _plan(self.root, _Pg(expansions or {}, lexicon or unstemmed))

    def tsquery(self, expansions: Mapping[str, list[str]] | None = None,
                lexicon: Lexicon | None = None) -> str | None:
        """What relevance is ranked by: the strategy's distinct included words and phrases (by
        position), ORed, fields and exclusions left out; a truncation by its stem as a prefix
        (``'vaccin':*``, one operand however many words it stands for); registration identifiers
        first, then in the strategy's order, at most RANK_TERMS. ``ts_rank`` reads every operand
        of its query in every match: with the strategy's tree and every word of its truncations
        (137 operands) it cost 557 of the 743 ms of the benchmark's strategy at 50,000 studies
        (28,138 matches)."""
        pg = _Pg(expansions or {}, lexicon or unstemmed, "rank")
        terms = sorted(_included(self.root), key=lambda t: not t.display or len(t.words) > 1)
        parts: dict[str, None] = {}
        for term in terms:
            if term.prefix:
                stems = pg.lexicon(term.words[-1]) or (term.words[-1],)
                head = _pg_phrase(term.words[:-1], pg) if len(term.words) > 1 else None
                part = _literal(stems[0]) + ":*"
                part = f"{head} <-> {part}" if head else part
            else:
                part = _pg_phrase(term.words, pg)
            if part is not None:
                parts.setdefault(part)
            if len(parts) == RANK_TERMS:
                break
        return _pg_any(list(parts)) if parts else None

    def words(self, expansions: Mapping[str, list[str]] | None = None) -> set[str]:
        """Every word the strategy searches for (truncations by the words they stand for, and by
        themselves: relevance reads their stems)."""
        return {w for t in _terms(self.root) for seq in _expanded(t, expansions or {}) for w in seq} | \
            self.prefixes()


# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" AND OR NOT - field word phrase
    position: int  # 1-based
    words: tuple[str, ...] = ()
    prefix: bool = False
    display: str = ""


def _phrase_words(text: str, start: int, fields: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    for match in _FIELD.finditer(text):
        if match.group(1).lower() in fields:
            raise QueryError(f"a field tag (`{match.group(0)}`) inside a phrase; put it before the "
                             f'phrase: `{match.group(1)}:"…"`', start + match.start() + 1)
    for char in "*?$":
        if char in text:
            raise QueryError(f"`{char}` inside a phrase: truncation is only at the end of a word, "
                             f"outside quotes", start + text.index(char) + 1)
    found, display, last = [], [], 0
    for hit in sorted(find_identifiers(text), key=lambda h: h.start):
        if hit.start < last:
            continue
        found += words(text[last:hit.start])
        display += words(text[last:hit.start])
        found.append(identifier_token(hit.identifier))
        display.append(hit.identifier)
        last = hit.end
    found += words(text[last:])
    display += words(text[last:])
    if any(len(w) > MAX_WORD for w in found):
        raise QueryError(f"a word of more than {MAX_WORD} characters in this phrase", start)
    return tuple(found), " ".join(display)


def _lex(text: str, fields: tuple[str, ...]) -> list[_Token]:
    identifiers = {}
    for hit in find_identifiers(text):
        # An identifier truncated (`NCT0428*`) is a word with `*`, wherever it stands: read as an
        # identifier, its `*` was refused at the start of a strategy and taken after another mention.
        if hit.start not in identifiers and not text.startswith("*", hit.end):
            identifiers[hit.start] = hit
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        position = i + 1
        if char.isspace():
            i = _SPACE.match(text, i).end()
        elif char in "()":
            tokens.append(_Token(char, position))
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError('a phrase opened here is not closed: expected `"`', position)
            found, display = _phrase_words(text[i + 1:end], i + 1, fields)
            tokens.append(_Token("phrase", position, found, display=display))
            i = end + 1
            if i < n and text[i] == "*":
                raise QueryError("`*` after a phrase: truncation is only at the end of a word, "
                                 "outside quotes", i + 1)
        elif char == "-" and (i == 0 or text[i - 1].isspace() or text[i - 1] == "(") and i + 1 < n \
                and (text[i + 1] in '"(' or text[i + 1].isalnum()):
            tokens.append(_Token("-", position))
            i += 1
        elif char == "*":
            raise QueryError("`*` must end a word of at least 3 characters (`random*`)", position)
        elif char in _FOREIGN:
            raise QueryError(_FOREIGN[char], position)
        elif i in identifiers:
            hit = identifiers[i]
            tokens.append(_Token("word", position, (identifier_token(hit.identifier),),
                                 display=hit.identifier))
            i = hit.end
        elif (tag := _FIELD.match(text, i)) is not None and (i == 0 or not text[i - 1].isalnum()):
            name = tag.group(1)
            if name not in fields:
                hint = (f"field names are lower-case: `{name.lower()}:`" if name.lower() in fields
                        else f"the fields here are {', '.join(f'`{f}:`' for f in fields)}")
                raise QueryError(f"unknown field `{name}:`; {hint}", position)
            tokens.append(_Token("field", position, (name,)))
            i = tag.end()
        elif (run := _RUN.match(text, i)) is not None:
            raw = run.group(0)
            i = run.end()
            prefix = i < n and text[i] == "*"
            if prefix:
                i += 1
                if i < n and not (text[i].isspace() or text[i] in ')"'):
                    raise QueryError("`*` must end a word (`random*`)", i)
            found = tuple(words(raw))
            if any(len(w) > MAX_WORD for w in found):
                raise QueryError(f"a word of more than {MAX_WORD} characters", position)
            if prefix and len(found[-1]) < MIN_PREFIX:
                raise QueryError(f"`{raw}*`: truncation needs at least {MIN_PREFIX} characters "
                                 f"before `*`", position)
            if len(found) == 1 and raw in OPERATORS:
                tokens.append(_Token(raw, position))
            else:
                tokens.append(_Token("word", position, found, prefix))
        else:  # other punctuation separates words, as it does in documents
            i += 1
    return tokens


class _Parser:
    def __init__(self, text: str, fields: tuple[str, ...]):
        self.tokens = _lex(text, fields)
        self.at = 0
        self.end = len(text) + 1

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def where(self) -> int:
        token = self.peek()
        return token.position if token else self.end

    def next(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def strategy(self) -> Node | None:
        node = self.any(0, None)
        token = self.peek()
        if token is not None:  # only a `)` stops `any` early
            raise QueryError("`)` closes no parenthesis", token.position)
        return node

    def any(self, depth: int, tag: str | None) -> Node | None:
        first, consumed = self.all(depth, tag)
        options = [first]
        while (token := self.peek()) is not None and token.kind == "OR":
            if not consumed:
                raise QueryError("`OR` with nothing before it: expected a term", token.position)
            self.next()
            self._operand_follows("OR")
            node, consumed = self.all(depth, tag)
            options.append(node)
        kept = [o for o in options if o is not None]
        return _any(kept) if kept else None

    def all(self, depth: int, tag: str | None) -> tuple[Node | None, bool]:
        """The terms up to the next `OR` or `)`, ANDed; and whether there were any tokens (a term
        of stop words only reads as nothing)."""
        include: list[Node] = []
        exclude: list[Node] = []
        start, first = self.at, self.where()
        while (token := self.peek()) is not None and token.kind not in (")", "OR"):
            if token.kind == "AND":
                if self.at == start:
                    raise QueryError("`AND` with nothing before it: expected a term", token.position)
                self.next()
                self._operand_follows("AND")
                continue
            if token.kind == "NOT":
                raise QueryError("`NOT` with nothing before it: a NOT excludes from what precedes "
                                 "it (`remdesivir NOT placebo`)", token.position)
            node, negated = self.negation(depth, tag)
            if node is not None:
                (exclude if negated else include).append(node)
        if exclude and not include:
            raise QueryError("only exclusions here: `-x` excludes from the terms beside it "
                             "(`covid -vaccine`)", first)
        return (_all(include, exclude) if include else None), self.at > start

    def negation(self, depth: int, tag: str | None) -> tuple[Node | None, bool]:
        """`unary ( NOT unary )*`; returns the node and whether it is itself an exclusion (`-x`)."""
        node, negated = self.unary(depth, tag)
        while (token := self.peek()) is not None and token.kind == "NOT":
            if negated:
                raise QueryError("`NOT` after an exclusion: write `-a -b` or `NOT (a OR b)`",
                                 token.position)
            self.next()
            self._operand_follows("NOT")
            excluded, minus = self.unary(depth, tag)
            if minus:
                raise QueryError("`NOT -x`: a double negation; drop one", token.position)
            if node is None:
                raise QueryError("`NOT` with nothing to exclude from (stop words are not searched)",
                                 token.position)
            if excluded is not None:
                node = _all([node], [excluded])
        return node, negated

    def unary(self, depth: int, tag: str | None) -> tuple[Node | None, bool]:
        token = self.peek()
        if token is not None and token.kind == "-":
            self.next()
            following = self.peek()
            if following is None or following.kind not in ("word", "phrase", "(", "field"):
                raise QueryError("`-` must be followed by a term", token.position)
            return self.primary(depth, tag), True
        return self.primary(depth, tag), False

    def primary(self, depth: int, tag: str | None) -> Node | None:
        token = self.next()
        if token.kind == "field":
            name = token.words[0]
            if tag is not None and tag != name:
                raise QueryError(f"`{name}:` inside `{tag}:(…)`: a term has one field",
                                 token.position)
            following = self.peek()
            if following is None or following.kind not in ("word", "phrase", "("):
                raise QueryError(f"`{name}:` must be followed by a word, a phrase or a "
                                 f"parenthesised group", token.position)
            node = self.primary(depth, name)
            if node is None:
                raise QueryError(f"`{name}:` is followed by nothing to look for (stop words are "
                                 f"not searched)", token.position)
            return node
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise QueryError(f"parentheses nested deeper than {MAX_DEPTH}", token.position)
            following = self.peek()
            if following is not None and following.kind == ")":
                raise QueryError("empty parentheses", token.position)
            node = self.any(depth + 1, tag)
            closing = self.peek()
            if closing is None:
                raise QueryError("this parenthesis is not closed: expected `)`", token.position)
            self.next()
            if node is None:
                raise QueryError("nothing to look for inside these parentheses (stop words are not "
                                 "searched)", token.position)
            return node
        if token.kind in ("word", "phrase"):
            return _term(token, tag)
        if token.kind == ")":
            raise QueryError("`)` where a term was expected", token.position)
        raise QueryError(f"`{token.kind}` where a term was expected", token.position)

    def _operand_follows(self, operator: str) -> None:
        token = self.peek()
        if token is None:
            raise QueryError(f"`{operator}` at the end: expected a term after it", self.end)
        if token.kind in (")", "AND", "OR", "NOT"):
            raise QueryError(f"`{operator}` followed by `{token.kind}`: expected a term", token.position)


def _term(token: _Token, tag: str | None) -> Term | None:
    found = list(token.words)
    if token.kind == "word" and len(found) == 1 and not token.prefix and not token.display:
        if found[0] in ("and", "or", "not"):
            raise QueryError(f"`{found[0]}` in lower case: write `{found[0].upper()}` for the "
                             f"operator (the word itself is a stop word, not searched)", token.position)
    # Stop words are not searched alone, nor at a phrase's ends (Postgres matches nothing there);
    # a truncated word is never one.
    start, end = 0, len(found)
    while start < end and found[start] in STOP_WORDS and not (token.prefix and start == end - 1):
        start += 1
    while end > start and found[end - 1] in STOP_WORDS and not (token.prefix and end == len(found)):
        end -= 1
    kept = tuple(found[start:end])
    if not kept:
        return None
    prefix = token.prefix and end == len(found)
    display = token.display if kept == token.words else ""
    return Term(kept, prefix, tag, display)


def _all(include: list[Node], exclude: list[Node]) -> Node:
    flat_in: list[Node] = []
    flat_out: list[Node] = []
    for node in include:
        if isinstance(node, All):
            flat_in += node.include
            flat_out += node.exclude
        else:
            flat_in.append(node)
    flat_out += exclude
    if len(flat_in) == 1 and not flat_out:
        return flat_in[0]
    return All(tuple(flat_in), tuple(flat_out))


def _any(options: list[Node]) -> Node:
    flat: list[Node] = []
    for node in options:
        flat += node.options if isinstance(node, Any) else [node]
    return flat[0] if len(flat) == 1 else Any(tuple(flat))


def parse(text: str, fields: tuple[str, ...] = STUDY_FIELDS) -> SearchQuery:
    """Parse a strategy; raise QueryError naming the position and what was expected."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"at most {MAX_LENGTH:,} characters; this has {len(text):,}")
    root = _Parser(text, fields).strategy()
    if root is None:
        raise QueryError("nothing to look for: the strategy has no word that is searched (English "
                         "stop words and punctuation are not)")
    query = SearchQuery(root)
    if query.terms() > MAX_TERMS:
        raise QueryError(f"at most {MAX_TERMS:,} terms; this has {query.terms():,}")
    return query


# --- output -----------------------------------------------------------------------------------


def _expanded(term: Term, expansions: Mapping[str, list[str]]) -> list[tuple[str, ...]]:
    """The word sequences a term stands for: itself, or one per word its truncation expands to."""
    if not term.prefix:
        return [term.words]
    return [term.words[:-1] + (word,) for word in expansions.get(term.words[-1], [])]


def _fts5(node: Node, expansions) -> str | None:
    if isinstance(node, Term):
        phrases = ['"' + " ".join(w) + '"' for w in _expanded(node, expansions)]
        if not phrases:
            return None
        text = phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"
        return f"{node.field} : {text}" if node.field else text
    if isinstance(node, Any):
        parts = [p for p in (_fts5(o, expansions) for o in node.options) if p is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    include = [_fts5(n, expansions) for n in node.include]
    if any(p is None for p in include):
        return None
    exclude = [p for p in (_fts5(n, expansions) for n in node.exclude) if p is not None]
    text = include[0] if len(include) == 1 else "(" + " AND ".join(include) + ")"
    if exclude:
        text = f"({text} NOT " + (exclude[0] if len(exclude) == 1 else
                                 "(" + " OR ".join(exclude) + ")") + ")"
    return text


Lexicon = Callable[[str], tuple[str, ...]]


def unstemmed(word: str) -> tuple[str, ...]:
    """A lexicon without a database: every word its own lexeme, stop words none (the service
    asks Postgres for its stems instead: `search.index.lexicon`)."""
    return () if word in STOP_WORDS else (word,)


def _literal(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class _Pg:
    """How to write a tree as a tsquery: ``expansions`` of truncations, ``lexicon`` the stems, and
    ``mode``: "document" (phrases by their adjacent pairs, see below), "field" (phrases by
    position: a field's own vector holds no pairs), "rank" (as "field", exclusions left out: what
    `heading` is ranked by) or "prefilter" (a superset: phrases by their pairs only, exclusions
    and truncations left out)."""

    expansions: Mapping[str, list[str]]
    lexicon: Lexicon
    mode: str = "document"


def _pg_phrase(words_: tuple[str, ...], pg: _Pg) -> str | None:
    """A word or phrase as a tsquery. The documents hold, beside each lexeme with its position,
    every two lexemes adjacent in a field as one pair lexeme (``'stem cell'``): a two-lexeme phrase
    is that pair, which the GIN index answers without reading a document; a longer one is its
    pairs and the positional phrase (``<->``, ``<2>`` across a stop word), checked only where the
    pairs are all there."""
    sequence: list[str | None] = []
    for word in words_:
        sequence.extend(pg.lexicon(word) or [None])
    while sequence and sequence[0] is None:
        sequence.pop(0)
    while sequence and sequence[-1] is None:
        sequence.pop()
    if not sequence:
        return None
    if len(sequence) == 1:
        return _literal(sequence[0])
    positional, gap = [], 0
    for lexeme in sequence:
        gap += 1
        if lexeme is None:
            continue
        if positional:
            positional.append("<->" if gap == 1 else f"<{gap}>")
        positional.append(_literal(lexeme))
        gap = 0
    phrase = " ".join(positional)
    pairs = [_literal(f"{a} {b}") for a, b in zip(sequence, sequence[1:], strict=False) if a and b]
    if pg.mode in ("field", "rank") or not pairs:
        return phrase if pg.mode != "prefilter" else None
    if pg.mode == "prefilter" or (len(sequence) == 2 and len(pairs) == 1):
        return pairs[0] if len(pairs) == 1 else "(" + " & ".join(pairs) + ")"
    return "(" + " & ".join([*pairs, f"({phrase})"]) + ")"


def _pg_any(parts: list[str | None]) -> str | None:
    kept = [p for p in parts if p is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + " | ".join(kept) + ")"


def _tsquery(node: Node | None, pg: _Pg) -> str | None:
    """``node`` as tsquery text. None: it matches nothing (or, as a prefilter: no condition)."""
    if node is None:
        return None
    if isinstance(node, Term):
        sequences = _expanded(node, pg.expansions)
        if pg.mode == "prefilter" and node.prefix:
            return None  # a truncation's words may sit in any field
        return _pg_any([_pg_phrase(w, pg) for w in sequences])
    if isinstance(node, Any):
        parts = [_tsquery(o, pg) for o in node.options]
        if pg.mode == "prefilter" and any(p is None for p in parts):
            return None  # an option without a condition: the whole OR has none
        return _pg_any(parts)
    include = [_tsquery(n, pg) for n in node.include]
    if pg.mode == "prefilter":
        include = [p for p in include if p is not None]
        return None if not include else include[0] if len(include) == 1 else \
            "(" + " & ".join(include) + ")"
    if any(p is None for p in include):
        return None
    exclude = [] if pg.mode == "rank" else [
        p for p in (_tsquery(n, pg) for n in node.exclude) if p is not None]
    parts = include + [f"!{p}" for p in exclude]
    return parts[0] if len(parts) == 1 else "(" + " & ".join(parts) + ")"


def _included(node: Node) -> list[Term]:
    """The terms a match must hold (those under no exclusion)."""
    if isinstance(node, Term):
        return [node]
    children = node.options if isinstance(node, Any) else node.include
    return [t for child in children for t in _included(child)]


def _unfielded(node: Node) -> Node:
    if isinstance(node, Term):
        return Term(node.words, node.prefix)
    if isinstance(node, Any):
        return Any(tuple(_unfielded(o) for o in node.options))
    return All(tuple(_unfielded(n) for n in node.include), tuple(_unfielded(n) for n in node.exclude))


@dataclass(frozen=True)
class Match:
    """Postgres: the vector of ``field`` (None: the whole document) matches the to_tsquery ``text``."""

    field: str | None
    text: str


@dataclass(frozen=True)
class Both:
    """Postgres: every plan of ``include`` and none of ``exclude`` (SQL AND / AND NOT)."""

    include: tuple[Plan, ...]
    exclude: tuple[Plan, ...]


@dataclass(frozen=True)
class Either:
    """Postgres: any plan of ``options`` (SQL OR)."""

    options: tuple[Plan, ...]


Plan = Match | Both | Either


_MIXED = object()


def _field_of(node: Node):
    """The one field every term of ``node`` has (None: unfielded), or _MIXED."""
    found = {t.field for t in _terms(node)}
    return found.pop() if len(found) == 1 else _MIXED


def _has_phrase(node: Node) -> bool:
    return any(len(t.words) > 1 for t in _terms(node))


def _plan(node: Node, pg: _Pg) -> Plan | None:
    tag = _field_of(node)
    if tag is not _MIXED:
        text = _tsquery(node, pg if tag is None else _Pg(pg.expansions, pg.lexicon, "field"))
        if text is None:
            return None
        if tag is None or not _has_phrase(node):
            return Match(tag, text)
        # A field's own vector holds no pairs: the document's narrow the rows whose field is read.
        narrowed = _tsquery(_unfielded(node), _Pg(pg.expansions, pg.lexicon, "prefilter"))
        return Match(tag, text) if narrowed is None else Both((Match(None, narrowed), Match(tag, text)), ())
    if isinstance(node, Any):
        return _merged_or([_plan_group(group, pg, Any) for group in _by_field(node.options)])
    include = [_plan_group(group, pg, All) for group in _by_field(node.include)]
    if any(p is None for p in include):
        return None
    exclude = [p for p in (_plan(n, pg) for n in node.exclude) if p is not None]
    return include[0] if len(include) == 1 and not exclude else Both(tuple(include), tuple(exclude))


def _by_field(nodes) -> list[list[Node]]:
    """Nodes grouped so that those of one field share a single match (mixed ones alone)."""
    groups: dict[object, list[Node]] = {}
    alone = []
    for node in nodes:
        tag = _field_of(node)
        if tag is _MIXED:
            alone.append([node])
        else:
            groups.setdefault(tag, []).append(node)
    return list(groups.values()) + alone


def _plan_group(nodes: list[Node], pg: _Pg, kind: Callable) -> Plan | None:
    if len(nodes) == 1:
        return _plan(nodes[0], pg)
    return _plan(kind(tuple(nodes)), pg)


def _merged_or(plans: list[Plan | None]) -> Plan | None:
    kept = [p for p in plans if p is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else Either(tuple(kept))
