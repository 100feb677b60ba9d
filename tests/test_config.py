"""Configuration: defaults for a local run, clear errors for bad values."""

from __future__ import annotations

import pytest

from service.config import ConfigError, load_config


def test_defaults_are_a_local_sqlite_register():
    config = load_config({})
    assert config["DATABASE_URL"] == "sqlite:///var/register.db"
    assert config["LOG_LEVEL"] == "INFO" and config["MAX_CONTENT_LENGTH"] == 1_048_576


@pytest.mark.parametrize("environ, message", [
    ({"DATABASE_URL": "mysql://x/y"}, "scheme"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"DATABASE_MAX_CONNECTIONS": "many"}, "DATABASE_MAX_CONNECTIONS"),
    ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES"),
    ({"IDEMPOTENCY_KEY_HOURS": "0"}, "IDEMPOTENCY_KEY_HOURS"),
    ({"IDEMPOTENCY_KEY_HOURS": "a day"}, "IDEMPOTENCY_KEY_HOURS"),
])
def test_bad_values_stop_the_start(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ)


def test_signing_keys_and_idempotency_hours():
    assert load_config({})["SECRET_KEY"] is None and load_config({})["SECRET_KEY_FALLBACKS"] == []
    assert load_config({})["IDEMPOTENCY_KEY_HOURS"] == 24
    config = load_config({"SECRET_KEY": "now", "SECRET_KEY_FALLBACKS": " before , long ago,,",
                          "IDEMPOTENCY_KEY_HOURS": "48"})
    assert config["SECRET_KEY"] == "now" and config["SECRET_KEY_FALLBACKS"] == ["before", "long ago"]
    assert config["IDEMPOTENCY_KEY_HOURS"] == 48
