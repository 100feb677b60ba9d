"""gunicorn settings for study-register (gunicorn 27).

Everything tunable comes from the environment, so the same file serves a
laptop (`gunicorn -c gunicorn.conf.py service.wsgi:app`) and the container
(boot.sh sets GUNICORN_BIND: 127.0.0.1:8001 behind nginx, 0.0.0.0:$PORT with SERVE_WITH=gunicorn).

    GUNICORN_BIND      address(es) to bind, comma-separated   default 127.0.0.1:8000
    WEB_CONCURRENCY    worker processes                       default 2
    GUNICORN_THREADS   threads per worker (>1 => gthread)     default 2
    GUNICORN_TIMEOUT   worker timeout, seconds                default 30
    TRUSTED_PROXIES    peers whose X-Forwarded-Proto is read  default none
    LOG_LEVEL          gunicorn log level (debug..critical)   default info

A request line (method, URL, protocol) of up to 8,190 bytes reaches the app, the most gunicorn reads
(service/config.py's MAX_REQUEST_LINE is the same number); a longer one is answered 414 as
application/problem+json by the workers below, pointing to the POST searches, instead of gunicorn's
HTML page (and so are gunicorn's other refusals: 400, 417, 431, 501).
"""

import http as _http
import json as _json
import os
import signal as _signal
import time as _time

# Names without `_` are read as settings: the modules and classes are imported under private names.
from gunicorn import util as _util
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
limit_request_fields = 100  # gunicorn's defaults, named here for the 431 problem's detail
limit_request_field_size = 8190
timeout = _int_env("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = 5
# gunicorn reads X-Forwarded-Proto (wsgi.url_scheme) only from these peers: the app's TRUSTED_PROXIES
# (service/config.py), none when it is unset (gunicorn's default would trust 127.0.0.1).
forwarded_allow_ips = ",".join(os.environ.get("TRUSTED_PROXIES", "").replace(",", " ").split())

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


def _stop_long_gunicorn(server, pid: int) -> None:
    """SIGTERM boot.sh's gunicorn for exports and imports (our child: boot.sh became this process) and
    wait for it as long as a graceful stop may take: its running requests finish (an import that is
    cut short is one transaction, rolled back), where the container's end would SIGKILL it."""
    try:
        os.kill(pid, _signal.SIGTERM)
    except ProcessLookupError:
        return
    server.log.info("Stopping the gunicorn for exports and imports (pid %s)", pid)
    deadline = _time.monotonic() + graceful_timeout + 5
    while _time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child, or reaped already: poll it
            try:
                os.kill(pid, 0)
                done = 0
            except ProcessLookupError:
                return
        if done:
            return
        _time.sleep(0.1)
    server.log.warning("The gunicorn for exports and imports (pid %s) did not stop in time", pid)


def on_exit(server):
    """boot.sh stops gunicorn when nginx (or the gunicorn for exports and imports) has exited, and
    leaves a note in $BOOT_HELPER_EXITED first: then exit 1, so the container's exit says it failed
    (gunicorn exits 0 after any SIGTERM, as after `docker stop`). Otherwise this is an orderly stop:
    the gunicorn for exports and imports ($LONG_GUNICORN_PID) is stopped gracefully too."""
    note = os.environ.get("BOOT_HELPER_EXITED", "")
    if note and os.path.exists(note):
        with open(note, encoding="utf-8") as fh:
            server.log.error("Exiting 1: %s", fh.read().strip() or "a helper process exited")
        raise SystemExit(1)
    long_pid = os.environ.get("LONG_GUNICORN_PID", "").strip()
    if long_pid.isdigit() and int(long_pid) != os.getpid():
        _stop_long_gunicorn(server, int(long_pid))


# --- gunicorn's own answers as problems: gunicorn refuses some requests before the app sees them (a
# request line over `limit_request_line`: 414; a bad request line, method, version, header or chunk:
# 400; too many or too large header fields: 431; an Expect it cannot meet: 417; a transfer coding it
# does not know: 501) and writes each with gunicorn.util.write_error, an HTML page. These workers
# replace that function, in their own process only (init_process runs after the fork), with one that
# writes the same status as application/problem+json, as the app answers errors. The 414 says what
# the app's own 414 says (service/api/limits.py), pointing to the POST searches.
_TOO_LONG = _json.dumps({
    "type": "about:blank", "title": "Request-URI Too Long", "status": 414,  # as the app's problems say
    "detail": f"The request line (method, URL and protocol) is over the {limit_request_line:,} bytes "
              "this service reads. Send a long search as a JSON body to `POST /studies/search` or "
              "`POST /references/search` instead: the same parameters, `q` up to 20,000 characters.",
}).encode()

def _problem_body(status: int, mesg: str) -> bytes:
    if status == 414:
        return _TOO_LONG
    try:
        title = _http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    if status == 431:
        detail = (f"Over {limit_request_fields} header fields, or one over {limit_request_field_size:,} "
                  f"bytes. {mesg}")
    elif status >= 500 and status != 501:
        detail = "The server could not read this request."  # gunicorn logs the traceback
    else:
        detail = mesg or title
    return _json.dumps({"type": "about:blank", "title": title, "status": status,
                        "detail": detail.strip()}).encode()


def _write_problem(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's signature and status line, with a problem+json body."""
    body = _problem_body(int(status_int), str(mesg or ""))
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            "Content-Type: application/problem+json\r\nAccess-Control-Allow-Origin: *\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    _util.write_nonblock(sock, head.encode("latin-1") + body)


class _ProblemErrors:
    def init_process(self):
        _util.write_error = _write_problem  # this worker process only; base.handle_error calls it
        super().init_process()


class ProblemThreadWorker(_ProblemErrors, _ThreadWorker):
    """gthread, answering gunicorn's own refusals (400, 414, 417, 431, 501) with application/problem+json."""


class ProblemSyncWorker(_ProblemErrors, _SyncWorker):
    """sync, answering gunicorn's own refusals (400, 414, 417, 431, 501) with application/problem+json."""


# What gunicorn would pick (gthread with threads, else sync), with the problems above. `-k` overrides
# it (and gives gunicorn's own HTML pages back).
worker_class = ProblemThreadWorker if threads > 1 else ProblemSyncWorker
