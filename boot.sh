#!/bin/sh
# Container start-up: migrate, optionally seed, then hand PID 1 to gunicorn.
# Extra arguments are passed on to gunicorn (e.g. `boot.sh --log-level debug`).
set -eu

cd "$(dirname "$0")"

echo "boot: study-register db upgrade"
study-register db upgrade

if [ "${SEED_ON_START:-1}" = "1" ]; then
    if ls seeds/*.json >/dev/null 2>&1; then
        echo "boot: study-register seed --if-empty"
        study-register seed --if-empty
    else
        echo "boot: no seeds/*.json, nothing to seed"
    fi
fi

echo "boot: starting gunicorn"
exec gunicorn -c gunicorn.conf.py --no-control-socket "$@" service.wsgi:app
