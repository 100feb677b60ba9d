"""The response cache: a public read asked again is answered from memory until the register changes.

Every entry is filed under the register's write generation (service/generation.py, moved by triggers on
each committed write, by any worker, process or host) and the notice period (notices start and end on
their own: domain/notices.py). A request reads the generation first (one indexed row) and looks its
answer up under it; an entry made under an earlier generation is never found again, so no answer is
served after a write that could have changed it. The generation is read *before* the answer is built:
an answer built while a write commits may show the write, never miss one that a later request sees.

- In this process (the default, no server needed): an LRU of CACHE_MAX_BYTES, emptied when the
  generation moves. With REDIS_URL (the rate limits' Redis) entries go to Redis too, shared by every
  worker and host, and expire after CACHE_TTL; a Redis that fails is left alone for STORAGE_RETRY_AFTER
  seconds, as the rate limits do, and answers are built as without a cache.
- Only GETs (and HEADs) of the endpoints in CACHED, without `Authorization`, answered 200 in full (not
  streamed: exports and bundles are never kept), at most CACHE_MAX_ENTRY_BYTES. The key is the
  register, its generation and notice period, the app's code and settings, the URL with its query, and
  the headers an answer depends on (`Accept`, and of `Accept-Encoding` the coding it chose: `gzip` or
  identity, api/compression.py). An entry keeps the body as sent, compressed or not.
- Answers without a validator of their own (lists, searches, facets, pages) get a strong ETag made of
  the key: `If-None-Match` with it is answered 304 after the one generation read, entry or not. Single
  records keep their content ETag (`If-Match` checks it on writes); a stored one answers 304 from the
  entry. Every cached kind of answer says `Cache-Control: no-cache` (revalidate each time: cheap here).
- `X-Cache: hit` or `miss` (`off` with CACHE=off) says which it was, and a hit says its own time in
  `Server-Timing: app;dur=<ms>`; headers made per request (rate limits, CORS, Vary) are made again on a
  hit by their own hooks.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import orjson
from flask import Flask, Response, current_app, g, request

from .. import generation
from ..domain.notices import notice_boundaries, notice_period
from .caching import none_match, none_match_tags
from .compression import coding
from .ratelimits import STORAGE_RETRY_AFTER, counted

logger = logging.getLogger(__name__)

CACHED = frozenset({
    "studies.Studies", "studies.StudyById", "studies.StudyReferences",
    "duplicates.DuplicateCandidates", "duplicates.MergedStudies",
    "references.References", "references.ReferenceById", "registrations.RegistrationByIdentifier",
    "stats.Stats", "stats.EvidenceMap",
    "suggestions.ReferenceSuggestions", "suggestions.Suggestions",
    # not searches.SavedSearchResults: its first page records a run
    "searches.SavedSearches", "searches.SavedSearchById",
    "changes.Changes", "changes.StudyHistory", "changes.ReferenceHistory",
    "notices.Notices", "notices.NoticeById",
    "vocabularies.Vocabularies", "vocabularies.VocabularyByName",
    "web.home", "web.evidence_map_page",
})
# Headers a hit gets from the hooks that made them, not from the entry.
PER_REQUEST = frozenset({"ratelimit", "ratelimit-policy", "server-timing", "x-cache", "vary", "date",
                         "access-control-allow-origin", "access-control-expose-headers", "set-cookie",
                         "content-length"})
VALIDATORS = ("ETag", "Last-Modified", "Cache-Control")
# In the WSGI environ: the entry (and status) Flask answered from, for the front's record of its headers.
MARK = "study_register.cache_entry"
# How long a miss waits for another thread building the same answer before it builds it itself.
HERD_WAIT = 10.0


@functools.cache
def _code_id() -> str:
    """A digest of the service's own files: a deploy of other code never reads entries of the last one.
    Read once per process (the files do not change under it), not at every create_app."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".html", ".css", ".js", ".svg", ".json"):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Entry:
    """A stored answer: its status, the headers of its own (not PER_REQUEST), its body as sent. ``front``
    says whether api/front.py may serve it before Flask (no rate limit counts its request); ``finals``
    holds, per (status, method, Origin), the final headers a request through Flask was answered with,
    the ones the front sends again (this process only: not in Redis)."""

    __slots__ = ("status", "headers", "body", "etag", "front", "finals")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, front: bool = False):
        self.status, self.headers, self.body, self.front = status, headers, body, front
        self.etag = next((v for k, v in headers if k.lower() == "etag"), None)
        self.finals: dict[tuple[int, str, str | None], tuple[str, list[tuple[str, str]]]] = {}

    @property
    def size(self) -> int:
        """What it counts against CACHE_MAX_BYTES: its body and a round 200 bytes for the rest."""
        return len(self.body) + 200

    def dumps(self) -> bytes:
        return orjson.dumps([self.status, self.headers, self.front]) + b"\0" + self.body

    @classmethod
    def loads(cls, raw: bytes) -> Entry:
        head, _, body = raw.partition(b"\0")
        status, headers, front = orjson.loads(head)
        return cls(status, [tuple(h) for h in headers], body, front)


class ResponseCache:
    def __init__(self, app: Flask):
        config = app.config
        self.enabled = config["CACHE_ENABLED"]
        self.max_bytes = config["CACHE_MAX_BYTES"]
        self.max_entry = min(config["CACHE_MAX_ENTRY_BYTES"], self.max_bytes)
        self.ttl = config["CACHE_TTL"]
        settings = repr(sorted((k, repr(v)) for k, v in config.items() if k.isupper())).encode()
        self.prefix = (f"{config['RATE_LIMIT_KEY_PREFIX']}:cache:{_code_id()}:"
                       f"{hashlib.sha256(settings).hexdigest()[:12]}:")
        self.redis = None
        if config["REDIS_URL"]:
            import redis

            self.redis = redis.Redis.from_url(config["REDIS_URL"], socket_timeout=0.5,
                                              socket_connect_timeout=0.5)
        self.redis_down_until = 0.0
        self.lock = threading.Lock()
        self.building: dict[str, threading.Event] = {}  # keys a thread builds now (wait_for)
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.size = 0
        self.state: tuple[str, int] | None = None  # (register, generation) the entries and boundaries are of
        self.boundaries: list | None = None

    # --- the generation and its notice period ---
    def scope(self) -> str | None:
        """`<register>:<generation>:<notice period>` for this request (one read), None: do not cache."""
        current = generation.current()
        if current is None:
            return None
        with self.lock:
            if current != self.state:
                self.entries.clear()
                self.size = 0
                self.state, self.boundaries = current, None
            boundaries = self.boundaries
        if boundaries is None:
            boundaries = notice_boundaries()
            with self.lock:
                if self.state == current:
                    self.boundaries = boundaries
        return f"{current[0]}:{current[1]}:{notice_period(boundaries)}"

    # --- entries ---
    def get(self, key: str) -> Entry | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
                return entry
        if self.redis is None or time.monotonic() < self.redis_down_until:
            return None
        try:
            raw = self.redis.get(self.prefix + key)
        except Exception as error:  # noqa: BLE001 - any failure of Redis: build the answer instead
            self._redis_failed(error)
            return None
        if raw is None:
            return None
        entry = Entry.loads(raw)
        self._keep(key, entry)
        return entry

    def wait_for(self, key: str) -> Entry | None:
        """After a miss: when another thread of this process is building the same answer, wait (at most
        HERD_WAIT s) for it and return its entry; else claim the key for this request (``g``) and return
        None. A herd of concurrent misses of one answer builds it once per process, not once each."""
        with self.lock:
            building = self.building.get(key)
            if building is None:
                self.building[key] = threading.Event()
                g.cache_building = key
                return None
        building.wait(HERD_WAIT)
        return self.get(key)  # None (not kept: an error, a stream, too big): build it as usual

    def done(self, key: str) -> None:
        with self.lock:
            building = self.building.pop(key, None)
        if building is not None:
            building.set()

    def put(self, key: str, entry: Entry) -> None:
        self._keep(key, entry)
        if self.redis is not None and time.monotonic() >= self.redis_down_until:
            try:
                self.redis.set(self.prefix + key, entry.dumps(), ex=self.ttl)
            except Exception as error:  # noqa: BLE001
                self._redis_failed(error)

    def _keep(self, key: str, entry: Entry) -> None:
        size = entry.size
        with self.lock:
            if key.split("|", 1)[0].rsplit(":", 1)[0] != self._scope_prefix() or size > self.max_bytes:
                return  # the generation moved on while this answer was built
            old = self.entries.pop(key, None)
            if old is not None:
                self.size -= old.size
            self.entries[key] = entry
            self.size += size
            while self.size > self.max_bytes and self.entries:
                _, dropped = self.entries.popitem(last=False)
                self.size -= dropped.size

    def _scope_prefix(self) -> str | None:
        return None if self.state is None else f"{self.state[0]}:{self.state[1]}"

    def _redis_failed(self, error: BaseException) -> None:
        self.redis_down_until = time.monotonic() + STORAGE_RETRY_AFTER
        logger.warning("cache storage unreachable (%s); not used for %.0f s", error, STORAGE_RETRY_AFTER)


def _cache() -> ResponseCache:
    return current_app.extensions["response_cache"]


def _not_modified(tag: str, headers: list[tuple[str, str]]) -> Response:
    response = Response(status=304)
    for name, value in headers:
        if name in VALIDATORS:
            response.headers[name] = value
    response.headers["ETag"] = tag
    response.headers["X-Cache"] = "hit"
    return response


def key_of(scope: str, environ, chosen: str | None) -> str:
    """The entry key of a request (its WSGI ``environ``) under ``scope``, for the coding ``chosen``: the
    raw values (werkzeug's host_url and full_path cost 0.1 ms a request). The front (api/front.py) makes
    the same key before Flask is entered."""
    variant = "\n".join((environ["wsgi.url_scheme"], environ.get("HTTP_HOST", ""),
                         environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""),
                         environ.get("QUERY_STRING", ""), environ.get("HTTP_ACCEPT", ""),
                         chosen or "identity"))  # the coding chosen, not each client's header
    return f"{scope}|{hashlib.sha256(variant.encode()).hexdigest()}"


def lookup() -> Response | None:
    """before_request (the last one: after the limits, negotiation and the connection): the stored
    answer, or a 304, or None to build it (the key is left in ``g`` for ``store``)."""
    started = time.perf_counter()
    cache = _cache()
    if (request.method not in ("GET", "HEAD") or request.endpoint not in CACHED
            or "Authorization" in request.headers):
        return None
    scope = cache.scope()
    if scope is None:
        return None
    key = key_of(scope, request.environ, coding())
    g.cache_key = key
    wanted = none_match_tags(request.headers.get("If-None-Match"))
    entry = cache.get(key) if cache.enabled else None
    if entry is None and cache.enabled:
        entry = cache.wait_for(key)  # another thread of this process builds it: its answer, or ours to build
    if entry is None:
        own = _generation_tag(key)
        if none_match(own, wanted):
            return _not_modified(own, [("Cache-Control", "no-cache")])
        return None
    g.cache_hit = True
    if none_match(entry.etag, wanted):
        _mark(entry, 304)
        return _not_modified(entry.etag, entry.headers)
    _mark(entry, 200)
    response = Response(entry.body, status=entry.status)
    response.headers.clear()
    for name, value in entry.headers:
        response.headers.add(name, value)
    response.headers["X-Cache"] = "hit"
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def _mark(entry: Entry, status: int) -> None:
    """This request is answered from ``entry`` (200, or 304): the front (api/front.py) keeps the final
    headers Flask sends with it, when it may serve the entry itself."""
    if entry.front:
        request.environ[MARK] = (entry, status)


def _generation_tag(key: str) -> str:
    return f'"g{hashlib.sha256(key.encode()).hexdigest()[:24]}"'


def store(response: Response) -> Response:
    """after_request: keep a full 200 answer of a cacheable read; give it a validator if it has none."""
    key = g.get("cache_key")
    if key is None or g.get("cache_hit"):
        return response
    if (response.status_code != 200 or response.is_streamed or response.direct_passthrough
            or "Set-Cookie" in response.headers):
        return response
    if "ETag" not in response.headers:
        response.headers["ETag"] = _generation_tag(key)
    response.headers.setdefault("Cache-Control", "no-cache")
    body = response.get_data()
    cache = _cache()
    if cache.enabled and len(body) <= cache.max_entry:
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in PER_REQUEST]
        cache.put(key, Entry(200, headers, body, front=not counted()))
    response.headers["X-Cache"] = "miss" if cache.enabled else "off"
    return response


def release(_exc) -> None:
    """teardown_request: a thread that built an answer others wait for lets them go, however it ended."""
    key = g.pop("cache_building", None)
    if key is not None:
        _cache().done(key)


def init_cache(app: Flask) -> None:
    """Last of the before_request hooks, first of the after_request ones (they run in reverse)."""
    app.extensions["response_cache"] = ResponseCache(app)
    app.before_request(lookup)
    app.after_request(store)
    app.teardown_request(release)
