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
        # How far a gzip file or an xlsx workbook may unpack (a decompression bomb is refused, 413): in
        # all, and as a multiple of its compressed size (the real files unpack 3-8 times).
        "IMPORT_MAX_UNPACKED_BYTES": _int(environ, "IMPORT_MAX_UNPACKED_BYTES", 1 << 30, 1 << 20, 1 << 42),
        "IMPORT_MAX_RATIO": _int(environ, "IMPORT_MAX_RATIO", 100, 2, 1_000_000),
        "SECRET_KEY": environ.get("SECRET_KEY") or None,
        "GIT_COMMIT": environ.get("GIT_COMMIT") or None,
    }
