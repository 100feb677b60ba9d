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
    "busy": ("DATABASE_BUSY_TIMEOUT", 2.0, 0.1, 3600),
    "long": ("DATABASE_LONG_TIMEOUT", 600.0, 1, 86400),
    "health": ("HEALTH_TIMEOUT", 1.5, 0.2, 30),
}


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
        "DATABASE_LIMITS": {key: _seconds(environ, name, default, low, high)
                            for key, (name, default, low, high) in DATABASE_LIMITS.items()},
    }
