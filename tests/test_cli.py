"""CLI commands through Flask's runner: tokens and seeding."""

from __future__ import annotations

from service.db import database
from service.models import ApiToken
from tests.conftest import assert_problem
from tests.helpers import study_body


def test_token_create_prints_a_working_token_once_and_stores_only_its_hash(runner, client):
    result = runner.invoke(args=["token", "create", "--name", "curator", "--scope", "studies"])
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("sr_") and len(token) > 40
    with database.connection_context():
        stored = ApiToken.get()
    assert token not in (stored.token_hash, stored.prefix, stored.name) and len(stored.token_hash) == 64
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/studies", json=study_body(), headers=headers).status_code == 201
    assert_problem(client.post("/notices", json={"message": "x"}, headers=headers), 403)

    listing = runner.invoke(args=["token", "list"])
    assert "curator" in listing.output and token not in listing.output
    revoked = runner.invoke(args=["token", "revoke", stored.prefix])
    assert revoked.exit_code == 0
    assert_problem(client.post("/studies", json=study_body("NCT04280705"), headers=headers), 401)
    assert runner.invoke(args=["token", "revoke", "nope"]).exit_code != 0


def test_token_scope_must_be_known(runner):
    result = runner.invoke(args=["token", "create", "--name", "x", "--scope", "admin"])
    assert result.exit_code != 0
