"""Rate limits per client: failed authentications and exports/searches by remote address, writes by token.

Counting is the `limits` library's (flask-limiter's core: its strategies and storages): in memory by
default, in Redis when `REDIS_URL` is set, so every gunicorn worker shares one count. A client over a
limit gets 429 problem+json with `Retry-After`; every limited answer carries the IETF draft headers
(draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy: "writes";q=300;w=60` (quota, window in
seconds) and `RateLimit: "writes";r=299;t=42` (remaining, seconds until the window resets).

When the storage cannot be reached the request is served unlimited (logged), and the worker does not ask
it again for STORAGE_RETRY_AFTER seconds: a Redis that is down or frozen costs one short timeout now and
then, never one per request, and does not take the register down with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES

from .problems import problem

logger = logging.getLogger(__name__)

# The limited kinds of request, each with its setting; "what" names it in a 429's detail.
KINDS = {
    "auth": ("RATE_LIMIT_AUTH_FAILURES", "failed authentications from your address"),
    "writes": ("RATE_LIMIT_WRITES", "writes with this token"),
    "exports": ("RATE_LIMIT_EXPORTS", "exports from your address"),
    "searches": ("RATE_LIMIT_SEARCHES", "searches from your address"),
}
EXPORT_FORMATS = ("csv", "ndjson", "ris")
SEARCH_LISTS = ("/studies", "/references")
SEARCH_PAGES = ("",)  # "/": the home page searches as GET /studies does (service/web)


@dataclass
class Outcome:
    """One limit as this request found it: for the headers, and for a 429."""

    kind: str
    item: RateLimitItem
    remaining: int
    reset_at: float
    allowed: bool

    @property
    def reset_in(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


# After the storage failed, how long a worker serves unlimited before it asks the storage again.
STORAGE_RETRY_AFTER = 5.0


class RateLimits:
    """An app's limits: a `limits` storage and strategy, and one list of limits per
    kind of request."""

    def __init__(self, app: Flask):
        config = app.config
        self.enabled = config["RATE_LIMITS_ENABLED"]
        self.items = {kind: parse_many(config[setting]) for kind, (setting, _) in KINDS.items()}
        self.prefix = config["RATE_LIMIT_KEY_PREFIX"]
        self.storage_down_until = 0.0  # time.monotonic() before which the storage is not asked
        # flask-limiter's own core, the `limits` library, used directly: flask-limiter's Limiter would add a
        # before_request check of limits the service does not declare (ours are counted by hand below),
        # 0.26 ms a request (cProfile, a cached GET /studies/1).
        storage = storage_from_string(
            config["REDIS_URL"] or "memory://",
            # Short socket timeouts: a Redis that stops answering must not hold requests.
            **({"socket_timeout": 0.5, "socket_connect_timeout": 0.5} if config["REDIS_URL"] else {}))
        self.strategy = STRATEGIES[config["RATE_LIMIT_STRATEGY"]](storage)

    def _run(self, kind: str, key: str, hit: bool) -> Outcome | None:
        """Test (or hit, with ``hit``) every limit of ``kind`` for ``key``; the most pressing outcome."""
        if not self.enabled or not self.items[kind] or time.monotonic() < self.storage_down_until:
            return None
        strategy = self.strategy
        worst: Outcome | None = None
        try:
            for item in self.items[kind]:
                ids = (self.prefix, kind, key)
                # A test is the window's stats alone (what is left): one storage call fewer.
                allowed = strategy.hit(item, *ids) if hit else None
                reset_at, remaining = strategy.get_window_stats(item, *ids)
                if allowed is None:
                    allowed = remaining >= 1
                outcome = Outcome(kind, item, remaining, reset_at, allowed)
                if worst is None or (worst.allowed and not allowed) or (
                        worst.allowed == allowed and remaining < worst.remaining):
                    worst = outcome
                if not allowed:
                    break
        except Exception as error:  # the storage (Redis) is unreachable: serve, unlimited, and say so
            self.storage_down_until = time.monotonic() + STORAGE_RETRY_AFTER
            logger.warning("rate-limit storage unreachable (%s); no limits for %.0f s", error,
                           STORAGE_RETRY_AFTER)
            return None
        g.rate_limit = worst
        return worst

    def hit(self, kind: str, key: str) -> Outcome | None:
        return self._run(kind, key, hit=True)

    def test(self, kind: str, key: str) -> Outcome | None:
        return self._run(kind, key, hit=False)


def _limits() -> RateLimits:
    return current_app.extensions["rate_limits"]


def client_address() -> str:
    return request.remote_addr or "-"


def too_many(outcome: Outcome):
    """The 429 problem for a breached limit."""
    what = KINDS[outcome.kind][1]
    detail = (f"Too many {what}: the limit is {outcome.item.amount} per "
              f"{_window_text(outcome.item)}. Retry in {outcome.reset_in} s.")
    return problem(429, detail, headers={"Retry-After": str(outcome.reset_in)}, limit=outcome.kind)


def _window_text(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


# --- the checks, called where each kind of request is recognised -------------------------------------

def auth_blocked():
    """Before a token is looked up: the 429 when this address has failed too often, else None. Every
    request carrying a token pays the same (one test), so a wrong token's timing stays flat."""
    outcome = _limits().test("auth", client_address())
    return too_many(outcome) if outcome is not None and not outcome.allowed else None


def auth_failed():
    """A token was refused: count it against the address. The 429 when this refusal is one over the limit
    (requests tested at once all pass the test; the count itself is atomic, so no more than the limit
    are ever answered 401), else None."""
    outcome = _limits().hit("auth", client_address())
    return too_many(outcome) if outcome is not None and not outcome.allowed else None


def write_allowed(token_id: int):
    """After a token is accepted for a write: the 429 when the token is over its write limit."""
    outcome = _limits().hit("writes", f"token:{token_id}")
    return too_many(outcome) if outcome is not None and not outcome.allowed else None


def _read_kind() -> str | None:
    """Whether this request is an export or a search (they cost the most), by its method and path."""
    path = request.path.rstrip("/")
    if request.method == "GET" and request.args.get("format") in EXPORT_FORMATS:
        return "exports"
    if request.method == "POST" and path in {p + "/search" for p in SEARCH_LISTS}:
        return "searches"
    if request.method == "GET" and (
            (path in (*SEARCH_LISTS, *SEARCH_PAGES) and request.args.get("q", "").strip())
            or (path.startswith("/searches/") and path.endswith("/results"))):
        return "searches"
    return None


def counted() -> bool:
    """Whether this request counts against a limit of reads: its answer carries that limit's headers, so
    the cache's front (api/front.py) may not serve it without asking the limits."""
    return _limits().enabled and _read_kind() is not None


def limit_reads():
    """A before_request hook: exports and searches counted per address; 429 when over."""
    kind = _read_kind()
    if kind is None:
        return None
    outcome = _limits().hit(kind, client_address())
    return too_many(outcome) if outcome is not None and not outcome.allowed else None


def add_headers(response):
    """An after_request hook: the IETF draft headers for the limit this request was counted against."""
    outcome = g.get("rate_limit")
    if outcome is not None:
        window = int(outcome.item.get_expiry())
        response.headers["RateLimit-Policy"] = f'"{outcome.kind}";q={outcome.item.amount};w={window}'
        response.headers["RateLimit"] = f'"{outcome.kind}";r={max(0, outcome.remaining)};t={outcome.reset_in}'
    return response


def init_rate_limits(app: Flask) -> None:
    app.extensions["rate_limits"] = RateLimits(app)
    # Right after the request-line check (api/__init__.py puts it first), before a database connection
    # is taken: a refused search or export costs no connection.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_reads)
    app.after_request(add_headers)
