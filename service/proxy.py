"""The nginx configuration that fronts gunicorn (docker/nginx.conf, a template), filled in.

    python -m service.proxy OUT [--listen 0.0.0.0:8000] [--upstream 127.0.0.1:8001]
                                [--long-upstream 127.0.0.1:8002] [--run-dir DIR]

boot.sh writes it on start; the tests and bench/slow_clients.py render the same template. The largest
body nginx takes is MAX_IMPORT_BYTES (the app refuses smaller bodies per endpoint itself).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .config import load_config

TEMPLATE = Path(__file__).resolve().parent.parent / "docker" / "nginx.conf"


def render_nginx_conf(*, listen: str, upstream: str, run_dir: str | os.PathLike, max_body: int,
                      long_upstream: str | None = None, workers: str = "auto",
                      template: Path | None = None) -> str:
    """docker/nginx.conf with its @NAMES@ replaced; ``run_dir`` gets the temporary-file folders.
    Without ``long_upstream`` exports and imports go to ``upstream`` too. Either may name several
    servers, comma-separated (app replicas: nginx balances them round-robin and passes a request that
    finds one down to the next)."""
    run_dir = Path(run_dir)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    text = (template or TEMPLATE).read_text()
    for name, addresses in (("UPSTREAM", upstream), ("LONG_UPSTREAM", long_upstream or upstream)):
        listed = [a.strip() for a in addresses.split(",") if a.strip()]  # an upstream's server lines
        text = text.replace(f"server @{name}@;", "\n        ".join(f"server {a};" for a in listed))
    names = {"LISTEN": listen, "UPSTREAM": upstream, "LONG_UPSTREAM": long_upstream or upstream,
             "RUN_DIR": str(run_dir), "MAX_BODY": str(max_body), "WORKERS": workers}
    for name, value in names.items():
        text = text.replace(f"@{name}@", value)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--listen", default="0.0.0.0:8000")
    parser.add_argument("--upstream", default="127.0.0.1:8001", help="host:port, or several comma-separated")
    parser.add_argument("--long-upstream", default=None, help="exports and imports (default: --upstream)")
    parser.add_argument("--run-dir", default="/tmp/nginx")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--template", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = load_config(os.environ)
    args.out.write_text(render_nginx_conf(listen=args.listen, upstream=args.upstream,
                                          long_upstream=args.long_upstream, run_dir=args.run_dir,
                                          max_body=settings["MAX_IMPORT_BYTES"], workers=args.workers,
                                          template=args.template))


if __name__ == "__main__":
    main()
