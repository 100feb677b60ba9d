"""Settings the register keeps for itself: the key that signs cursors when no SECRET_KEY is configured."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from ..models import RegisterState

SECRET_KEY = "secret_key"


def stored_secret_key() -> str:
    """The register's own signing key, made (once, whichever worker comes first) when there is none. Read
    first: an insert that conflicts still fires Postgres's statement triggers (the write generation)."""
    stored = RegisterState.get_or_none(RegisterState.name == SECRET_KEY)
    if stored is not None:
        return stored.value
    RegisterState.insert(name=SECRET_KEY, value=secrets.token_urlsafe(32)).on_conflict_ignore().execute()
    return RegisterState.get_by_id(SECRET_KEY).value


def signing_keys(configured: str | None, fallbacks: Sequence[str] = ()) -> list[str]:
    """The keys for itsdangerous, oldest first: the last one signs, every one verifies. ``configured``
    is SECRET_KEY (the register's stored key when unset), ``fallbacks`` SECRET_KEY_FALLBACKS (newest
    first, as Flask and Django take them)."""
    current = configured or stored_secret_key()
    return [*reversed([k for k in fallbacks if k and k != current]), current]
