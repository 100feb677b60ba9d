"""Spec-driven fuzzing: no request the OpenAPI document allows (or nearly allows) may make a 500."""

from __future__ import annotations

import gzip

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import make_token
from tests.helpers import create_reference, create_study

pytestmark = pytest.mark.slow

schema = schemathesis.pytest.from_fixture("api_schema")
# POST /imports takes files as raw bodies of these types: fuzz them as bytes.
for media_type in ("text/csv", "application/x-research-info-systems", "application/x-ndjson"):
    schemathesis.serializer.alias(media_type, "application/octet-stream")


@schemathesis.hook
def after_call(context, case, response):
    """schemathesis' WSGI transport sends `requests`' `Accept-Encoding: gzip, deflate...` but checks the
    body as the app sent it: decoded here as an HTTP client decodes it (api/compression.py)."""
    if response.headers.get("content-encoding") == ["gzip"]:
        response.content = gzip.decompress(response.content)
        response.content_size = len(response.content)
        del response.headers["content-encoding"]


@pytest.fixture
def api_schema(app, client):
    # No rate limits while fuzzing: schemathesis's invalid-token probes would block the address after
    # ten, and every later case, with the right token too, would be a 429 that reaches no endpoint
    # (tests/test_rate_limits.py tests the limits).
    app.extensions["rate_limits"].enabled = False
    token = make_token()
    auth = {"Authorization": f"Bearer {token}"}
    # Some real records, so reads and writes by id reach existing rows too.
    study = create_study(client, auth)
    create_reference(client, auth, study_ids=[study["id"]])
    client.post("/notices", json={"message": "Holiday delay"}, headers=auth)
    loaded = schemathesis.openapi.from_wsgi("/openapi.json", app)

    # The token as an auth provider, not a configured header: schemathesis then knows the credentials
    # are the real ones. (With `config.headers` it took the header for one it had generated whenever a
    # write by id succeeded, e.g. PATCH /searches/{id} on a search it had saved, and failed the call
    # as "API accepts invalid authentication"; the server had refused every other token.)
    @loaded.auth()
    class Bearer:
        def get(self, case, context):
            return token

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return loaded


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case):
    # Every check runs but one: positive_data_acceptance expects any schema-valid request to be
    # accepted, while the contract demands a 422 for rules OpenAPI 3.0 cannot state (page and
    # cursor together, an unparseable opaque cursor, page x page_size over 10,000, a `year` that
    # contradicts `published`, a registry that cannot be derived, a notice ending before it starts).
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_stateful_sequences_of_writes_and_reads_never_fail(api_schema):
    """schemathesis' stateful run: sequences linking one operation's answer to the next (a study made,
    then read, changed, linked, merged, deleted), with the token so writes happen; a bounded number of
    steps. The same checks as the per-operation run."""
    from hypothesis import stateful

    machine = api_schema.as_state_machine()
    calls: list[tuple[str, int]] = []

    class Register(machine):
        def after_call(self, response, case):
            super().after_call(response, case)
            calls.append((case.method.upper(), response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, additional_checks=additional_checks,
                                   excluded_checks=[positive_data_acceptance])

    assert machine.bundles, "schemathesis found no links between operations"
    stateful.run_state_machine_as_test(Register, settings=settings(
        max_examples=15, stateful_step_count=8, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    # The token was used: writes were accepted (a few calls are schemathesis' own checks without it).
    assert any(method != "GET" and status < 300 for method, status in calls), calls

