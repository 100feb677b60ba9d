"""gunicorn settings for study-register (gunicorn 27).

Everything tunable comes from the environment, so the same file serves a
laptop (`gunicorn -c gunicorn.conf.py service.wsgi:app`) and the container
(boot.sh; the image sets GUNICORN_BIND=0.0.0.0:8000).

    GUNICORN_BIND      address(es) to bind, comma-separated   default 127.0.0.1:8000
    WEB_CONCURRENCY    worker processes                       default 2
    GUNICORN_THREADS   threads per worker (>1 => gthread)     default 2
    GUNICORN_TIMEOUT   worker timeout, seconds                default 30
    LOG_LEVEL          gunicorn log level (debug..critical)   default info

A request line (method, URL, protocol) of up to 8,190 bytes reaches the app, the most gunicorn reads
(service/config.py's MAX_REQUEST_LINE is the same number); a longer one is answered 414 as
application/problem+json by the workers below, pointing to the POST searches, instead of gunicorn's
HTML page.
"""

import json as _json
import os

# Names without `_` are read as settings: the modules and classes are imported under private names.
from gunicorn import util as _util
from gunicorn.http.errors import LimitRequestLine as _LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker
from gunicorn.workers.sync import SyncWorker as _SyncWorker


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
limit_request_line = 8190  # gunicorn's most (0 would read lines of any length into memory)
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


# --- 414 as a problem: gunicorn refuses a request line over `limit_request_line` before the app
# sees it, with an HTML page; these workers answer that one refusal as the app answers errors.
_TOO_LONG = _json.dumps({
    "type": "about:blank", "title": "Request-URI Too Long", "status": 414,  # as the app's problems say
    "detail": f"The request line (method, URL and protocol) is over the {limit_request_line:,} bytes "
              "this service reads. Send a long search as a JSON body to `POST /studies/search` or "
              "`POST /references/search` instead: the same parameters, `q` up to 20,000 characters.",
}).encode()


class _ProblemErrors:
    def handle_error(self, req, client, addr, exc):
        if not isinstance(exc, _LimitRequestLine):
            return super().handle_error(req, client, addr, exc)
        self.log.warning("Request line too long from ip=%s: %s", (addr or ("",))[0], exc)
        head = ("HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n"
                "Content-Type: application/problem+json\r\nAccess-Control-Allow-Origin: *\r\n"
                f"Content-Length: {len(_TOO_LONG)}\r\n\r\n")
        try:
            _util.write_nonblock(client, head.encode("latin-1") + _TOO_LONG)
        except Exception:  # noqa: BLE001 - the client went away: nothing to tell it
            self.log.debug("Failed to send the 414.")
        return None


class ProblemThreadWorker(_ProblemErrors, _ThreadWorker):
    """gthread, answering a too long request line with application/problem+json."""


class ProblemSyncWorker(_ProblemErrors, _SyncWorker):
    """sync, answering a too long request line with application/problem+json."""


# What gunicorn would pick (gthread with threads, else sync), with the 414 above. `-k` overrides it
# (and gives gunicorn's own HTML 414 back).
worker_class = ProblemThreadWorker if threads > 1 else ProblemSyncWorker
