"""API tokens: made once and shown once, stored only as a SHA-256 hash, checked on every write."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from ..db import write_transaction
from ..models import ApiToken, utcnow

# `searches`: saved searches only (a review team's token that changes no record).
SCOPES = ("studies", "references", "notices", "imports", "searches")
TOKEN_PREFIX = "sr_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, scopes: Sequence[str] = SCOPES) -> str:
    """Store a new token's hash and return the token itself (the only time it exists in clear)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    # 32 random bytes: a hash without salt or stretching is enough for a secret this strong.
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction():
        ApiToken.create(name=name, prefix=token[:10], token_hash=_hash(token),
                        scopes=" ".join(sorted(set(scopes))), created=utcnow())
    return token


def find_token(token: str) -> ApiToken | None:
    """The live token record for ``token``, or None when it is unknown or revoked."""
    return ApiToken.get_or_none((ApiToken.token_hash == _hash(token)) & ApiToken.revoked.is_null())


def revoke_token(prefix: str) -> int:
    with write_transaction():
        return ApiToken.update(revoked=utcnow()).where(
            (ApiToken.prefix == prefix) & ApiToken.revoked.is_null()).execute()


def list_tokens() -> list[ApiToken]:
    return list(ApiToken.select().order_by(ApiToken.id))
