"""Logging to stdout for the app and gunicorn alike; SQL echo through the `peewee` logger."""

from __future__ import annotations

import logging.config


def configure_logging(level: str, *, sql_echo: bool = False) -> None:
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "plain",
                       "stream": "ext://sys.stdout"},
            # SQL is logged at DEBUG; this handler shows it only when SQL_ECHO is on.
            "sql": {"class": "logging.StreamHandler", "formatter": "plain",
                    "stream": "ext://sys.stdout", "level": "DEBUG" if sql_echo else "WARNING"},
        },
        "loggers": {
            "service": {"level": level, "handlers": ["stdout"], "propagate": False},
            "peewee": {"level": "DEBUG" if sql_echo else "WARNING", "handlers": ["sql"],
                       "propagate": False},
        },
    })
