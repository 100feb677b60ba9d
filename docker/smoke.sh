#!/bin/sh
# Smoke test of a built image against a running Docker engine (not part of CI: CI has no engine).
#
#   docker/smoke.sh [IMAGE]        # default study-register (docker build ... -t study-register .)
#
# Starts IMAGE (SQLite in the container, nginx in front of gunicorn) on a free 127.0.0.1 port in its own
# network and checks, through nginx: /health 200; GET /studies 200 JSON; a 20 kB header -> 431
# problem+json; a 300 MB body to /imports -> 413 problem+json (before it is read); the HEALTHCHECK turns
# healthy; killing nginx inside makes the container exit 1. Prints one line per check, exits 1 on the
# first failure. Needs curl. Removes its container and network on the way out.
set -eu

IMAGE="${1:-study-register}"
NAME="study-register-smoke-$$"
NET="$NAME"
TMP="$(mktemp -d)"

cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*" >&2; docker logs "$NAME" 2>&1 | tail -20 >&2; exit 1; }

# A user-defined bridge: also works with an engine started with --bridge none (docker/README.md).
docker network create "$NET" >/dev/null
docker run -d --name "$NAME" --network "$NET" -p 127.0.0.1::8000 "$IMAGE" >/dev/null
PORT="$(docker port "$NAME" 8000/tcp | head -1 | sed 's/.*://')"
URL="http://127.0.0.1:$PORT"

i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ]; do
    i=$((i + 1))
    [ "$i" -lt 300 ] || fail "/health did not answer 200 within 60 s"
    [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container exited"
    sleep 0.2
done
ok "/health 200 after $((i / 5)) s"

# $1 what, $2 expected status, $3 expected content type, rest: curl arguments
check() {
    what="$1"; want_status="$2"; want_type="$3"; shift 3
    got="$(curl -sS -o "$TMP/body" -D "$TMP/head" -w '%{http_code} %{content_type}' "$@")" || true
    case "$got" in
        "$want_status $want_type"*) ok "$what: $got" ;;
        *) fail "$what: got '$got', want '$want_status $want_type': $(head -c 300 "$TMP/body")" ;;
    esac
}

check "GET /health through nginx" 200 application/json -H 'Accept: application/json' "$URL/health"
grep -qi '^server: nginx' "$TMP/head" || fail "/health was not answered through nginx"
check "GET /studies" 200 application/json "$URL/studies?page_size=2"
big_header="$(head -c 20000 /dev/zero | tr '\0' a)"
check "a 20 kB header" 431 application/problem+json -H "X-Big: $big_header" "$URL/health"
truncate -s 300M "$TMP/big"
check "a 300 MB body to /imports" 413 application/problem+json -X POST \
    -H 'Content-Type: application/octet-stream' -T "$TMP/big" "$URL/imports"
rm -f "$TMP/big"

i=0
until [ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ]; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || fail "HEALTHCHECK: $(docker inspect -f '{{.State.Health.Status}}' "$NAME") after 60 s"
    sleep 1
done
ok "HEALTHCHECK healthy"

docker exec "$NAME" sh -c 'kill "$(cat /tmp/nginx/nginx.pid)"'
i=0
until [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" = false ]; do
    i=$((i + 1))
    [ "$i" -lt 30 ] || fail "the container still runs 30 s after nginx was killed"
    sleep 1
done
code="$(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
[ "$code" = 1 ] || fail "the container exited $code after nginx was killed, want 1"
ok "nginx killed: the container exited 1 within $i s"
