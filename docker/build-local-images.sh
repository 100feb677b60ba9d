#!/bin/sh
# Build everything the offline container build needs, without any container
# registry (see docker/README.md):
#
#   wheels  host-side wheelhouse in docker/wheels/ (pip download from PyPI)
#   python  local/debian-python:bookworm   debootstrap + docker import
#   pg      local/postgres:15              debootstrap + docker import + docker/postgres/Dockerfile
#   all     wheels python pg (the default)
#
# Needs root (debootstrap), the debootstrap package, and a running Docker engine
# reachable through DOCKER_HOST. Images that already exist are kept unless
# FORCE=1. Environment knobs:
#   MIRROR   Debian mirror (default: the first URIs: line of the apt sources)
#   WORKDIR  scratch dir for the rootfs trees (default /tmp/study-register-images)
#   PYVER    Python version the wheels are for, with its patch level (default 3.11.2 =
#            bookworm's python3; e.g. 3.12.12 for the python:3.12-slim base)
#   PY       Python that runs pip and the marker check (default python3)
#   PIP      pip command used for the wheelhouse (default: $PY -m pip)
#   WHEELS   wheelhouse directory (default docker/wheels, the one the Dockerfile copies)
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
WORKDIR="${WORKDIR:-/tmp/study-register-images}"
SUITE=bookworm
PY_IMAGE="local/debian-python:$SUITE"
PG_ROOTFS_IMAGE="local/debian-postgres-rootfs:$SUITE"
PG_IMAGE="local/postgres:15"
PYVER="${PYVER:-3.11.2}"
PY="${PY:-python3}"
PIP="${PIP:-$PY -m pip}"

log() { printf '%s [build-local-images] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mirror() {
    if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        m="$(awk '/^URIs:/{print $2; exit}' "$f")"
        if [ -n "$m" ]; then echo "$m"; return; fi
    done
    m="$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
    echo "${m:-http://deb.debian.org/debian}"
}

have_image() {
    [ "${FORCE:-0}" != "1" ] && docker image inspect "$1" >/dev/null 2>&1
}

# debootstrap a minbase rootfs with extra packages, strip caches, docker import it.
bootstrap_import() { # $1 image, $2 include-list, $3 dir name, rest: --change args
    image="$1"; include="$2"; dir="$WORKDIR/$3"; shift 3
    rm -rf "$dir"
    mkdir -p "$WORKDIR"
    log "debootstrap $SUITE ($include) -> $dir"
    debootstrap --variant=minbase --include="$include" "$SUITE" "$dir" "$(mirror)" \
        > "$WORKDIR/$(basename "$dir").debootstrap.log" 2>&1 \
        || { tail -20 "$WORKDIR/$(basename "$dir").debootstrap.log" >&2; exit 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/tmp/*
    for p in ${STRIP:-}; do rm -rf "${dir:?}/$p"; done
    log "docker import -> $image"
    tar -C "$dir" --numeric-owner -c . | docker import "$@" - "$image" >/dev/null
    rm -rf "$dir"
}

build_wheels() {
    wheels="${WHEELS:-$HERE/wheels}"
    arch="$(uname -m)"
    log "wheelhouse for CPython $PYVER/$arch -> $wheels"
    reqs="$(python3 - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)
print("\n".join(project["build-system"]["requires"] + project["project"]["dependencies"]
                + project["project"]["optional-dependencies"]["postgres"]))
PY
)"
    reqfile="$(mktemp)"
    printf '%s\n' "$reqs" > "$reqfile"
    # Binary wheels only, for the image's interpreter rather than the host's.
    download() {
        $PIP download --quiet --disable-pip-version-check --dest "$wheels" \
            --only-binary=:all: --implementation cp --python-version "$PYVER" \
            --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" \
            --platform "manylinux2014_$arch" --platform "linux_$arch" "$@"
    }
    download --requirement "$reqfile"
    rm -f "$reqfile"
    # pip evaluates environment markers with the interpreter it runs on, not --python-version: a
    # dependency only the image's Python needs (redis: `async-timeout; python_full_version < "3.11.3"`,
    # bookworm has 3.11.2, the host may have 3.11.7) is not downloaded, and the offline build fails
    # with "No matching distribution". Evaluate the wheels' markers for PYVER and fetch what is missing.
    for _ in 1 2 3 4 5; do
        missing="$($PY - "$wheels" "$PYVER" <<'PY'
import pathlib, re, sys, zipfile
try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement

wheels, version = pathlib.Path(sys.argv[1]), sys.argv[2]
env = dict(default_environment(), python_full_version=version,
           python_version=".".join(version.split(".")[:2]))
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
have = {norm(w.name.split("-")[0]) for w in wheels.glob("*.whl")}
need = set()
for w in wheels.glob("*.whl"):
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode("utf-8", "replace").splitlines()
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        # Extras' requirements are the same on any interpreter: pip already fetched the asked ones.
        if req.marker is None or "extra" in str(req.marker) or not req.marker.evaluate(env):
            continue
        if norm(req.name) not in have:
            req.marker = None
            need.add(str(req))
print(" ".join(sorted(need)))
PY
)"
        [ -n "$missing" ] || break
        log "for CPython $PYVER only: $missing"
        # shellcheck disable=SC2086  # one argument per requirement
        download $missing
    done
    log "wheelhouse: $(find "$wheels" -name '*.whl' | wc -l) wheels"
}

build_python() {
    if have_image "$PY_IMAGE"; then log "$PY_IMAGE exists (FORCE=1 rebuilds)"; return; fi
    bootstrap_import "$PY_IMAGE" python3,python3-venv,ca-certificates,nginx rootfs-python \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]'
    docker run --rm --network none "$PY_IMAGE" python3 -V
}

build_pg() {
    if have_image "$PG_IMAGE"; then log "$PG_IMAGE exists (FORCE=1 rebuilds)"; return; fi
    if ! have_image "$PG_ROOTFS_IMAGE"; then
        # The postgresql-15 postinst creates a default 15/main cluster: drop it,
        # the entrypoint runs initdb on first start like the official image.
        STRIP="var/lib/postgresql/15 etc/postgresql/15" \
            bootstrap_import "$PG_ROOTFS_IMAGE" postgresql-15,ca-certificates rootfs-postgres \
            --change 'CMD ["/bin/bash"]'
    fi
    log "docker build -> $PG_IMAGE"
    docker build --network none --build-arg BASE="$PG_ROOTFS_IMAGE" -t "$PG_IMAGE" "$HERE/postgres"
}

targets="${*:-all}"
for t in $targets; do
    case "$t" in
        wheels) build_wheels ;;
        python) build_python ;;
        pg) build_pg ;;
        all) build_wheels; build_python; build_pg ;;
        *) echo "usage: $0 [wheels|python|pg|all]..." >&2; exit 2 ;;
    esac
done
log "done"
