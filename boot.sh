#!/bin/sh
# Container start-up: migrate, optionally seed, start nginx in front (unless SERVE_WITH=gunicorn), then
# hand PID 1 to gunicorn. Extra arguments are passed on to gunicorn (e.g. `boot.sh --log-level debug`).
#
#   PORT            where clients connect (nginx, or gunicorn alone)      default 8000
#   SERVE_WITH      nginx (a buffering proxy in front) or gunicorn        default nginx
#   UPSTREAM_PORT   gunicorn's loopback port behind nginx                 default 8001
#   LONG_WORKERS    workers of a second gunicorn for exports and imports  default 1 (0: none, one pool)
#   LONG_PORT       its loopback port                                     default 8002
#   LONG_THREADS    its threads per worker                                default 4
#   LONG_NICE       its niceness (reads and /health get the CPU first)    default 10
#   NGINX_RUN_DIR   nginx's pid file, rendered config and temporary files default /tmp/nginx
#
# Behind nginx, gunicorn listens on 127.0.0.1 only and TRUSTED_PROXIES defaults to 127.0.0.1 (nginx
# sets X-Forwarded-For/-Proto/-Host itself and clears the others a client sends).
set -eu

cd "$(dirname "$0")"

# A helper process that dies takes the service down with it: gunicorn (PID $$ once exec'd below) is
# stopped, so the container exits and its restart policy starts it again, rather than running on
# without its proxy (gunicorn's arbiter reaps the dead child, so `kill -0` sees it gone).
# The watcher leaves a note in $BOOT_HELPER_EXITED first: gunicorn.conf.py's on_exit then makes gunicorn
# exit 1, not 0 as after a plain SIGTERM (`docker stop`), so an on-failure restart policy restarts it too.
watch() { # $1 pid, $2 name
    while kill -0 "$1" 2>/dev/null; do sleep 2; done
    echo "boot: $2 exited; stopping gunicorn" >&2
    echo "$2 exited" > "$BOOT_HELPER_EXITED"
    kill -TERM $$
}

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

PORT="${PORT:-8000}"
case "${SERVE_WITH:-nginx}" in
    gunicorn)
        GUNICORN_BIND="${GUNICORN_BIND:-0.0.0.0:$PORT}"
        ;;
    nginx)
        run_dir="${NGINX_RUN_DIR:-/tmp/nginx}"
        mkdir -p "$run_dir"
        # A restarted container keeps its /tmp: an old note must not fail the new run.
        BOOT_HELPER_EXITED="$run_dir/helper-exited"
        rm -f "$BOOT_HELPER_EXITED"
        export BOOT_HELPER_EXITED
        GUNICORN_BIND="127.0.0.1:${UPSTREAM_PORT:-8001}"
        TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1}"
        export TRUSTED_PROXIES
        long_bind="$GUNICORN_BIND"
        if [ "${LONG_WORKERS:-1}" != "0" ]; then
            long_bind="127.0.0.1:${LONG_PORT:-8002}"
            echo "boot: starting gunicorn for exports and imports on $long_bind"
            GUNICORN_BIND="$long_bind" WEB_CONCURRENCY="${LONG_WORKERS:-1}" \
                GUNICORN_THREADS="${LONG_THREADS:-4}" GUNICORN_TIMEOUT="${LONG_TIMEOUT:-300}" \
                nice -n "${LONG_NICE:-10}" gunicorn -c gunicorn.conf.py --no-control-socket "$@" service.wsgi:app &
            # gunicorn.conf.py's on_exit stops it (SIGTERM, then waits as long as gunicorn's graceful
            # timeout) once this gunicorn has stopped: a `docker stop` lets its imports and exports finish.
            LONG_GUNICORN_PID=$!
            export LONG_GUNICORN_PID
            watch "$LONG_GUNICORN_PID" "the gunicorn for exports and imports" &
        fi
        python -m service.proxy "$run_dir/nginx.conf" --template "$PWD/docker/nginx.conf" \
            --listen "0.0.0.0:$PORT" --upstream "$GUNICORN_BIND" --long-upstream "$long_bind" \
            --run-dir "$run_dir"
        echo "boot: starting nginx on :$PORT in front of gunicorn on $GUNICORN_BIND"
        nginx -c "$run_dir/nginx.conf" -e stderr &
        watch $! nginx &
        ;;
    *)
        echo "boot: SERVE_WITH must be nginx or gunicorn, got ${SERVE_WITH}" >&2
        exit 2
        ;;
esac
export GUNICORN_BIND

echo "boot: starting gunicorn"
exec gunicorn -c gunicorn.conf.py --no-control-socket "$@" service.wsgi:app
