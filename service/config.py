"""Reads every setting from the environment, with defaults for a local SQLite run; imports no Flask."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite:///var/register.db"
SUPPORTED_SCHEMES = ("sqlite", "postgres", "postgresql", "postgres+pool", "postgresql+pool")
# The longest request line (method, URL, protocol) served, in bytes: the most gunicorn can read
# (its `limit_request_line`, set so in gunicorn.conf.py). Longer is 414; long searches are POSTed.
MAX_REQUEST_LINE = 8190


# Rate limits per client (api/ratelimits.py), each a flask-limiter string ("10 per minute;100 per hour").
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


def load_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the service settings read from ``environ``; raise ConfigError on a bad value."""
    url = environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    scheme = urlsplit(url).scheme
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL scheme {scheme!r} is not supported; use one of {', '.join(SUPPORTED_SCHEMES)}"
        )
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
        "SECRET_KEY": environ.get("SECRET_KEY") or None,
        "GIT_COMMIT": environ.get("GIT_COMMIT") or None,
        **_rate_limits(environ),
    }
