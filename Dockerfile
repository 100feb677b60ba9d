# study-register: the REST service, served by gunicorn.
#
# Online build (a registry that serves python:3.12-slim):
#   docker build -t study-register .
# Offline build (no container registry, no network in the build; docker/README.md):
#   docker/build-local-images.sh wheels python      # host wheelhouse + debootstrapped base
#   docker build --network none --build-arg BASE=local/debian-python:bookworm -t study-register .
#
# BASE must provide CPython >= 3.11 with the venv module, callable as ${PYTHON}:
# python:3.12-slim has /usr/local/bin/python3, the debootstrapped Debian base has
# /usr/bin/python3 (+ python3-venv). Both call it python3, the default.
ARG BASE=python:3.12-slim

# ---- builder: a self-contained venv in /opt/venv -----------------------------
FROM ${BASE} AS builder
ARG PYTHON=python3
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src

# Local wheelhouse: docker/wheels/*.whl, made on the host by
# `docker/build-local-images.sh wheels` (pip download, binary wheels only; the
# folder is git-ignored, so it may not exist). .dockerignore lets only that
# script and docker/wheels/ into the context, so this COPY always has a source.
# With wheels present pip installs from them alone (--no-index) and the build
# needs no network; without, pip uses the index as usual. The image runs on PostgreSQL (the compose
# files): the `postgres` extra brings its driver (psycopg2-binary); the package alone is SQLite-only.
COPY docker/ /build/docker/
# The wheel carries seeds/*.json and gunicorn.conf.py (pyproject.toml's force-include): both must be here.
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY seeds/ ./seeds/
COPY service/ ./service/
RUN "${PYTHON}" -m venv /opt/venv \
 && if ls /build/docker/wheels/*.whl >/dev/null 2>&1; then \
        echo "pip: installing from the local wheelhouse only"; \
        set -- --no-index --find-links=/build/docker/wheels; \
    else \
        set --; \
    fi \
 && /opt/venv/bin/pip install --no-cache-dir "$@" ".[postgres]" \
 && /opt/venv/bin/pip uninstall --yes pip \
 && DATABASE_URL=sqlite:////tmp/import-check.db /opt/venv/bin/python -c "import psycopg2, service.wsgi"

# ---- runtime: no compilers, no pip, no wheelhouse, non-root -------------------
FROM ${BASE}

LABEL org.opencontainers.image.title="study-register" \
      org.opencontainers.image.description="Study-based register of clinical research, REST/JSON API" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    SERVE_WITH=nginx \
    SEED_ON_START=1

# nginx, the buffering proxy in front of gunicorn (boot.sh): a Debian package, the one thing the final
# stage installs (the offline base has it already: docker/build-local-images.sh). Not pinned: the
# version is the base's Debian release's, with its security updates.
# hadolint ignore=DL3008
RUN if ! command -v nginx >/dev/null 2>&1; then \
        apt-get update \
     && apt-get install -y --no-install-recommends nginx \
     && rm -rf /var/lib/apt/lists/*; \
    fi

# Numeric UID/GID so that `runAsNonRoot`-style checks can verify it without /etc/passwd.
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --no-log-init \
        --shell /usr/sbin/nologin app \
 && mkdir -p /app/var \
 && chown 10001:10001 /app/var

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY gunicorn.conf.py boot.sh ./
COPY docker/nginx.conf ./docker/nginx.conf
COPY seeds/ ./seeds/

USER 10001:10001
EXPOSE 8000

# Slim images have no curl: probe /health with the venv's Python. urlopen raises
# on a non-2xx answer (503 when the database is down), so the exit code is 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; port = os.environ.get('PORT', '8000'); urllib.request.urlopen('http://127.0.0.1:%s/health' % port, timeout=4)"]

# boot.sh: `study-register db upgrade`, `seed --if-empty` when SEED_ON_START=1, nginx on PORT in front
# (SERVE_WITH=gunicorn: none), then `exec gunicorn -c gunicorn.conf.py --no-control-socket service.wsgi:app`.
# Any other command runs as given, e.g. `docker run IMAGE study-register token create --name ci`.
CMD ["/app/boot.sh"]
