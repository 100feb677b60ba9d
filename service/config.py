"""Reads every setting from the environment, with defaults for a local SQLite run; imports no Flask."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite:///var/register.db"
SUPPORTED_SCHEMES = ("sqlite", "postgres", "postgresql", "postgres+pool", "postgresql+pool")
# The longest request line (method, URL, protocol) served, in bytes: the most gunicorn can read
# (its `limit_request_line`, set so in gunicorn.conf.py). Longer is 414; long searches are POSTed.
MAX_REQUEST_LINE = 8190


# Rate limits per client (api/ratelimits.py), each a `limits` string ("10 per minute;100 per hour").
RATE_LIMIT_DEFAULTS = {
    "RATE_LIMIT_AUTH_FAILURES": "10 per minute",  # refused tokens, per remote address
    "RATE_LIMIT_WRITES": "300 per minute",  # writes, per token
    "RATE_LIMIT_EXPORTS": "20 per minute",  # format=csv|ndjson|ris, per remote address
    "RATE_LIMIT_SEARCHES": "120 per minute",  # q on the lists, POST .../search, saved-search runs
}
RATE_LIMIT_STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")


class ConfigError(ValueError):
    """A setting has a value the service cannot start with."""


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _public_url(environ: Mapping[str, str]) -> str | None:
    raw = (environ.get("PUBLIC_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"PUBLIC_URL must be an http(s) URL with a host and no query, got {raw!r}")
    return raw.rstrip("/")


def _networks(environ: Mapping[str, str], name: str) -> tuple:
    networks = []
    for item in (environ.get(name) or "").replace(" ", ",").split(","):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"{name} must list IP addresses or CIDR networks, got {item!r}") from None
    return tuple(networks)


def _rate_limits(environ: Mapping[str, str]) -> dict[str, Any]:
    from limits import parse_many

    settings: dict[str, Any] = {}
    for name, default in RATE_LIMIT_DEFAULTS.items():
        raw = (environ.get(name) or default).strip()
        try:
            parse_many(raw)
        except ValueError:
            raise ConfigError(f"{name} must be limits such as '10 per minute;100 per hour', got {raw!r}") \
                from None
        settings[name] = raw
    strategy = environ.get("RATE_LIMIT_STRATEGY") or "fixed-window"
    if strategy not in RATE_LIMIT_STRATEGIES:
        raise ConfigError(f"RATE_LIMIT_STRATEGY must be one of {', '.join(RATE_LIMIT_STRATEGIES)}, "
                          f"got {strategy!r}")
    enabled = (environ.get("RATE_LIMITS") or "on").lower()
    if enabled not in ("on", "off"):
        raise ConfigError(f"RATE_LIMITS must be on or off, got {enabled!r}")
    redis_url = environ.get("REDIS_URL") or None
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "redis+unix"):
        # The scheme only: the URL may hold a password.
        raise ConfigError("REDIS_URL must be a redis://, rediss:// or redis+unix:// URL, got scheme "
                          f"{urlsplit(redis_url).scheme!r}")
    settings.update(RATE_LIMITS_ENABLED=enabled == "on", RATE_LIMIT_STRATEGY=strategy, REDIS_URL=redis_url,
                    RATE_LIMIT_KEY_PREFIX=environ.get("RATE_LIMIT_KEY_PREFIX") or "study-register")
    return settings


def _cache(environ: Mapping[str, str]) -> dict[str, Any]:
    """The response cache (api/cache.py): on or off, its size in this process, and how long Redis
    (with REDIS_URL) keeps an entry that no later write has made unreachable already."""
    enabled = (environ.get("CACHE") or "on").lower()
    if enabled not in ("on", "off"):
        raise ConfigError(f"CACHE must be on or off, got {enabled!r}")
    front = (environ.get("CACHE_FRONT") or "on").lower()
    if front not in ("on", "off"):
        raise ConfigError(f"CACHE_FRONT must be on or off, got {front!r}")
    return {"CACHE_ENABLED": enabled == "on", "CACHE_FRONT": front == "on",
            "CACHE_MAX_BYTES": _int(environ, "CACHE_MAX_BYTES", 64 * 1_048_576, 0, 1 << 40),
            "CACHE_MAX_ENTRY_BYTES": _int(environ, "CACHE_MAX_ENTRY_BYTES", 2 * 1_048_576, 0, 1 << 34),
            "CACHE_TTL": _int(environ, "CACHE_TTL", 3600, 1, 30 * 86400)}


def _compress(environ: Mapping[str, str]) -> dict[str, Any]:
    """Compression (api/compression.py): gzip when the client accepts it, its level for answers (compressed
    once per cache entry) and for streamed exports (compressed at every download: the fastest level), and
    the smallest answer worth it (flask-compress's own setting names)."""
    enabled = (environ.get("COMPRESS") or "on").lower()
    if enabled not in ("on", "off"):
        raise ConfigError(f"COMPRESS must be on or off, got {enabled!r}")
    return {"COMPRESS_ENABLED": enabled == "on",
            "COMPRESS_LEVEL": _int(environ, "COMPRESS_LEVEL", 6, 1, 9),
            "COMPRESS_STREAM_LEVEL": _int(environ, "COMPRESS_STREAM_LEVEL", 1, 1, 9),
            "COMPRESS_MIN_SIZE": _int(environ, "COMPRESS_MIN_SIZE", 500, 0, 1 << 30)}


def _seconds(environ: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds, got {raw}")
    return value


# How long the service waits on its database (service/db.py's Limits): setting, default, least, most.
DATABASE_LIMITS = {
    "connect": ("DATABASE_CONNECT_TIMEOUT", 2.0, 0.5, 60),
    "pool": ("DATABASE_POOL_TIMEOUT", 2.0, 0.1, 60),
    "statement": ("DATABASE_STATEMENT_TIMEOUT", 5.0, 0.5, 3600),
    "lock": ("DATABASE_LOCK_TIMEOUT", 2.0, 0.1, 3600),
    "busy": ("DATABASE_BUSY_TIMEOUT", 1.0, 0.1, 3600),
    "long": ("DATABASE_LONG_TIMEOUT", 600.0, 1, 86400),
    "health": ("HEALTH_TIMEOUT", 1.5, 0.2, 30),
    "breaker": ("DATABASE_BREAKER_SECONDS", 1.0, 0, 60),
}


def load_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the service settings read from ``environ``; raise ConfigError on a bad value."""
    url = environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    scheme = urlsplit(url).scheme
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL scheme {scheme!r} is not supported; use one of {', '.join(SUPPORTED_SCHEMES)}"
        )
    if scheme.startswith("postgres") and importlib.util.find_spec("psycopg2") is None:
        # The default install is SQLite-only: the driver comes with the package's `postgres` extra.
        raise ConfigError("DATABASE_URL names PostgreSQL, but its driver psycopg2 is not installed: "
                          "pip install 'study-register[postgres]'")
    level = (environ.get("LOG_LEVEL") or "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL {level!r} is not a logging level")
    return {
        "DATABASE_URL": url,
        "DATABASE_MAX_CONNECTIONS": _int(environ, "DATABASE_MAX_CONNECTIONS", 8, 1, 1000),
        "LOG_LEVEL": level,
        "SQL_ECHO": (environ.get("SQL_ECHO") or "").lower() in ("1", "true", "yes"),
        "MAX_CONTENT_LENGTH": _int(environ, "MAX_BODY_BYTES", 1_048_576, 1024, 1 << 31),
        # POST /imports has its own, larger limit (files of registry records run to hundreds of MB).
        "MAX_IMPORT_BYTES": _int(environ, "MAX_IMPORT_BYTES", 200 * 1_048_576, 1024, 1 << 40),
        # How far a gzip file or an xlsx workbook may unpack (a decompression bomb is refused, 413): in
        # all, and as a multiple of its compressed size (the real files unpack 3-8 times).
        "IMPORT_MAX_UNPACKED_BYTES": _int(environ, "IMPORT_MAX_UNPACKED_BYTES", 1 << 30, 1 << 20, 1 << 42),
        "IMPORT_MAX_RATIO": _int(environ, "IMPORT_MAX_RATIO", 100, 2, 1_000_000),
        # Signs cursors; unset, the register makes one and keeps it in its database (register_state).
        "SECRET_KEY": environ.get("SECRET_KEY") or None,
        # Earlier keys, newest first, comma-separated: cursors they signed are still accepted.
        "SECRET_KEY_FALLBACKS": [k.strip() for k in (environ.get("SECRET_KEY_FALLBACKS") or "").split(",")
                                 if k.strip()],
        "IDEMPOTENCY_KEY_HOURS": _int(environ, "IDEMPOTENCY_KEY_HOURS", 24, 1, 24 * 365),
        "GIT_COMMIT": environ.get("GIT_COMMIT") or None,
        # Links (`next`, `Link`, `Location`, `results`) are absolute on this base URL; relative without.
        "PUBLIC_URL": _public_url(environ),
        # Peers whose X-Forwarded-For/-Proto/-Host/-Port/-Prefix are honoured; from any other they are
        # dropped.
        "TRUSTED_PROXIES": _networks(environ, "TRUSTED_PROXIES"),
        **_rate_limits(environ),
        **_cache(environ),
        # Export streams one process serves at once (api/exports.py); past it 503 with Retry-After. The
        # default leaves one of the worker's threads (GUNICORN_THREADS, gunicorn.conf.py) to other reads.
        "EXPORT_STREAMS": _int(environ, "EXPORT_STREAMS",
                               max(1, _int(environ, "GUNICORN_THREADS", 2, 1, 1000) - 1), 1, 1000),
        "EXPORT_RETRY_AFTER": _int(environ, "EXPORT_RETRY_AFTER", 10, 1, 3600),
        **_compress(environ),
        "DATABASE_LIMITS": {key: _seconds(environ, name, default, low, high)
                            for key, (name, default, low, high) in DATABASE_LIMITS.items()},
    }
