"""Do SQLite and Postgres give the same sets? Runs strategies on two registers filled from the same
files (e.g. `make real-data` into each) and compares, per strategy and resource, the ids found.

    python bench/search_agreement.py --sqlite sqlite:///var/real.db \
        --postgres postgresql://postgres@127.0.0.1:5432/real_register \
        [--strategy bench/strategies/covid-drug-rct.txt]

Every match is walked with `cursor` (sort=id) through the Flask test client. Prints one line per
strategy and resource: the totals and the ids only one database found; exits 1 when any differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import create_app  # noqa: E402

STUDY_STRATEGIES = [
    "remdesivir NOT placebo", "remdesivir AND (placebo OR standard)", "remdesiv*", "vaccinat*",
    "hospitaliz*", "covid* OR coronavir*", "random* placebo*", '"intensive care"', '"stem cells"',
    '"severe acute respiratory syndrome"', "title:(remdesivir OR favipiravir)", "author:wang",
    'abstract:"convalescent plasma" NOT title:plasma', "registry:ISRCTN", "registration:NCT0428*",
    "report_title:vaccin*", "patients hospital", "NCT04280705", "tocilizumab OR remdesivir NOT placebo",
    '(ivermectin OR "convalescent plasma") -(children OR pregnan*)',
]
REFERENCE_STRATEGIES = [s for s in STUDY_STRATEGIES if not s.startswith(("registry:", "registration:",
                                                                         "report_title:"))] + [
    "source:lancet", 'doi:"10.1056"', "author:(wang OR zhang) title:covid*",
]


def found(client, path: str, q: str) -> set[int] | int:
    """The ids of every match, or the status of a refusal."""
    response = client.get(f"{path}?q={quote(q)}&page_size=100&sort=id&cursor=*")
    ids: set[int] = set()
    while True:
        if response.status_code != 200:
            return response.status_code
        body = response.get_json()
        ids |= {item["id"] for item in body["items"]}
        if not body["next"]:
            return ids
        response = client.get(body["next"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--strategy", action="append", default=[],
                        help="a file holding a strategy, searched on studies and references")
    args = parser.parse_args()
    extra = [Path(f).read_text(encoding="utf-8") for f in args.strategy]
    searches = [(path, q) for path, strategies in (("/studies", STUDY_STRATEGIES),
                                                   ("/references", REFERENCE_STRATEGIES))
                for q in strategies + extra]
    # One database after the other: the service's database is one per process (the last app made).
    answers = []
    for url in (args.sqlite, args.postgres):
        client = create_app({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}).test_client()
        answers.append([found(client, path, q) for path, q in searches])
    differ = 0
    for (path, q), lite, pg in zip(searches, *answers, strict=True):
        label = " ".join(q.split())[:60]
        if isinstance(lite, int) or isinstance(pg, int):
            print(f"{path:12} {label:62} status sqlite={lite if isinstance(lite, int) else 200} "
                  f"postgres={pg if isinstance(pg, int) else 200}")
        else:
            print(f"{path:12} {label:62} sqlite={len(lite):6,} postgres={len(pg):6,} "
                  f"only sqlite={len(lite - pg):,} only postgres={len(pg - lite):,}")
        differ += lite != pg
    print(f"{differ} of {len(searches)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
