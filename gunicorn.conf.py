"""gunicorn settings for study-register (gunicorn 27).

Everything tunable comes from the environment, so the same file serves a
laptop (`gunicorn -c gunicorn.conf.py service.wsgi:app`) and the container
(boot.sh; the image sets GUNICORN_BIND=0.0.0.0:8000).

    GUNICORN_BIND      address(es) to bind, comma-separated   default 127.0.0.1:8000
    WEB_CONCURRENCY    worker processes                       default 2
    GUNICORN_THREADS   threads per worker (>1 => gthread)     default 2
    GUNICORN_TIMEOUT   worker timeout, seconds                default 30
    LOG_LEVEL          gunicorn log level (debug..critical)   default info
"""

import os


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


_binds = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
bind = [b.strip() for b in _binds.split(",") if b.strip()]
workers = _int_env("WEB_CONCURRENCY", 2)
# Two threads (gthread): a long export stream keeps its worker's heartbeat going, where a sync
# worker was killed at `timeout` (a 150,000-reference RIS export takes ~40 s); and one slow
# client no longer holds a whole worker.
threads = _int_env("GUNICORN_THREADS", 2)
timeout = _int_env("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = 5

# Logs: access log to stdout, error log to stderr (the container runtime collects both).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").strip().lower() or "info"

# gunicorn >= 25.1 opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl or
# $HOME/.gunicorn/gunicorn.ctl by default; the container user has no writable
# home. Same as the CLI flag --no-control-socket (which boot.sh also passes).
control_socket_disable = True

# Worker heartbeat files: use tmpfs where there is one (Docker mounts /dev/shm).
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"

# Migrations run before gunicorn starts (boot.sh), so no preload is needed and
# each worker opens its own database connections after the fork.
preload_app = False
