"""How far a register's links can be trusted, judged against DIRECCT's hand-found (trial, publication) pairs.

    python bench/linking_report.py --database-url sqlite:////tmp/x.db [--json FILE] [--samples FILE.md]
    python bench/linking_report.py --database-url postgresql://postgres@127.0.0.1:5432/NAME [--seed 7]

The register must be built like `make real-data` but without `links/direcct_results.csv.gz`, so that
DIRECCT's results are a truth the register never saw. The script only reads it, with plain SQL through
``service.db``; it runs on the schema before link roles (no ``role``, ``confidence``, ``evidence``, no
``suggestion`` table: every link then counts as ``reports`` and suggestion figures print ``n/a``) and after.
Identifiers are read with this checkout's ``service.identifiers``, so every register is judged alike.

Ground truth. Each row of ``links/direcct_results.csv.gz`` with a DOI or PMID is a publication of the
DIRECCT trial ``id``; rows with neither (registry pages, press releases) are skipped. A publication is
a register reference with the same DOI (lower-cased, from ``10.``) or PMID (leading zeros stripped). A
trial is every study owning one of its TRNs (``links/direcct_registrations.csv.gz``, canonicalised by
``service.identifiers.canonical``): usually one, several when its registrations were not merged.

- GT pair: (reference, study) for a publication of a trial and each study of that trial.
- Held pair: (reference, trial) with the reference and at least one study of the trial in the register.
- GT reference: a reference that is a publication of some trial.
- Searched study: a study with a registration of a trial DIRECCT recorded a result for (any row of
  the results file, a registry page or press release too: DIRECCT looked for that trial's reports).

Figures (count / denominator and share):

1. held pairs, GT references present;
2. recall: held pairs whose reference has a ``reports`` link to a study of the trial; the same with
   a link of any role;
3. precision of the links of GT references (other references' links are not judged), for ``reports``
   links, automatic ``reports`` links, and links of any role. Strict: every link counts, right iff a
   GT pair. Judged (lenient): a link that is not a GT pair and points to a study that is not a
   searched study is left out (DIRECCT says nothing about it);
4. references with more than 3 ``reports`` links, how many of them have every such link backed by
   evidence of kind ``registration_id`` or ``registration_statement``, the largest count, the most
   linked references; reports links and links per reference (1, 2, 3, 4+, over references with any);
5. links by role, by kind (auto/manual), confidence in 0.1 buckets per role; references with no
   ``reports`` link, by type;
6. hand-check samples (``--seed``): 100 ``reports`` and 50 ``cites`` links, a registry record's link to
   its own study left out (trivially right), with the evidence text (the evidence items' ``text``;
   for a link without evidence, as on the old schema, the identifier found in title, abstract or
   notes with ~110 characters before its end and 40 after) and the GT verdict (right, wrong, not
   judged, or no GT: not a GT reference);
7. suggestions, for GT references with no registration number in title or abstract and no
   ``reports`` link to a study of their GT pairs: how many have a suggestion, how many have a right
   study as top-1 (highest score; rejected suggestions left out) and in the top 5; 50 of them with
   a top-1 suggestion, for checking;
8. studies with a ``reports`` link (and with any link) from a reference whose title or abstract
   says "TOCIVID" (the spread of a trial acronym, the search's ``q`` widening).

``--json FILE`` writes every figure and sample; ``--samples FILE.md`` the link samples and the
suggestion sample as Markdown tables (with an empty "ok?" column to fill in).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service import db as service_db  # noqa: E402
from service.identifiers import canonical, find_identifiers  # noqa: E402

NA = "n/a"
BACKING = {"registration_id", "registration_statement"}
REGISTRY_RECORD = "trial_registry_record"
ACRONYM = "tocivid"


def share(count: int, total: int) -> dict:
    return {"count": count, "of": total, "share": round(count / total, 4) if total else None}


def shown(figure) -> str:
    if not isinstance(figure, dict) or "of" not in figure:
        return NA if figure is None else str(figure)
    percent = f"{100 * figure['share']:.1f} %" if figure["share"] is not None else NA
    return f"{figure['count']:,} / {figure['of']:,} = {percent}"


def doi_of(text: str | None) -> str | None:
    m = re.search(r"10\.\d{4,}/\S+", (text or "").strip().lower())
    return m.group(0) if m else None


def pmid_of(text: str | None) -> str | None:
    text = (text or "").strip().lstrip("0")
    return text if text.isdigit() else None


def csv_rows(path: Path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def clip(text: str | None, width: int) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= width else text[:width - 1] + "…"


class Register:
    """The tables the figures need, read once."""

    def __init__(self, database):
        def rows(sql):
            return database.execute_sql(sql).fetchall()
        tables = set(database.get_tables())
        columns = {c.name for c in database.get_columns("study_reference")}
        self.roles = "role" in columns
        self.has_suggestions = "suggestion" in tables
        self.study_title = dict(rows("SELECT id, title FROM study"))
        self.owner = dict(rows("SELECT identifier, study_id FROM registration"))
        self.refs = {r[0]: dict(zip(("id", "type", "title", "abstract", "doi", "pmid", "notes",
                                     "registration_id"), r, strict=True))
                     for r in rows("SELECT id, type, title, abstract, doi, pmid, notes, registration_id "
                                   "FROM reference")}
        extra = "role, confidence, evidence" if self.roles else "'reports', NULL, NULL"
        self.links = [dict(zip(("ref", "study", "link", "identifier", "role", "confidence", "evidence"),
                               r, strict=True))
                      for r in rows(f"SELECT reference_id, study_id, link, identifier, {extra} "
                                    "FROM study_reference ORDER BY id")]
        for link in self.links:
            stored = json.loads(link["evidence"]) if link["evidence"] else None
            # {"rule": ..., "items": [...]} (a list of items in registers written before rules were named)
            link["rule"] = stored.get("rule") if isinstance(stored, dict) else None
            link["evidence"] = stored.get("items") if isinstance(stored, dict) else stored
        self.suggestions = defaultdict(list)  # reference -> [(score, study, reasons)], best first
        if self.has_suggestions:
            for ref, study, score, reasons in rows(
                    "SELECT reference_id, study_id, score, reasons FROM suggestion "
                    "WHERE status <> 'rejected' ORDER BY score DESC, id"):
                self.suggestions[ref].append((score, study, json.loads(reasons or "[]")))


class Truth:
    """DIRECCT's (trial, publication) pairs, mapped onto the register's references and studies."""

    def __init__(self, data: Path, reg: Register):
        by_doi, by_pmid = defaultdict(set), defaultdict(set)
        for ref in reg.refs.values():
            if doi := doi_of(ref["doi"]):
                by_doi[doi].add(ref["id"])
            if pmid := pmid_of(ref["pmid"]):
                by_pmid[pmid].add(ref["id"])
        self.studies_of = defaultdict(set)  # DIRECCT trial -> register studies
        for row in csv_rows(data / "links" / "direcct_registrations.csv.gz"):
            found = canonical(row["trn"])
            if found and found[0] in reg.owner:
                self.studies_of[row["id"]].add(reg.owner[found[0]])
        self.publications = 0
        self.refs_of_trial = defaultdict(set)
        published, searched = set(), set()
        for row in csv_rows(data / "links" / "direcct_results.csv.gz"):
            searched.add(row["id"])
            doi, pmid = doi_of(row["doi"]), pmid_of(row["pmid"])
            if not (doi or pmid):
                continue
            self.publications += 1
            published.add(row["id"])
            self.refs_of_trial[row["id"]] |= by_doi.get(doi, set()) | by_pmid.get(pmid, set())
        self.refs = set().union(*self.refs_of_trial.values())
        self.held = {(ref, trial) for trial, refs in self.refs_of_trial.items() if self.studies_of[trial]
                     for ref in refs}
        self.pairs = {(ref, study) for ref, trial in self.held for study in self.studies_of[trial]}
        self.searched_studies = set().union(*(self.studies_of[t] for t in searched))
        self.trials, self.searched = len(published), len(searched)

    def verdict(self, ref: int, study: int) -> str:
        if ref not in self.refs:
            return "no GT"
        if (ref, study) in self.pairs:
            return "right"
        return "wrong" if study in self.searched_studies else "not judged"


def fig_truth(truth: Truth) -> dict:
    return {"publications_rows": truth.publications, "trials_with_publications": truth.trials,
            "trials_with_results_rows": truth.searched,
            "held_pairs": len(truth.held), "gt_pairs": len(truth.pairs),
            "gt_references_present": len(truth.refs),
            "held_trials": len({trial for _, trial in truth.held})}


def fig_recall(reg: Register, truth: Truth) -> dict:
    reports = {(x["ref"], x["study"]) for x in reg.links if x["role"] == "reports"}
    linked = {(x["ref"], x["study"]) for x in reg.links}

    def found(pairs):
        return sum(1 for ref, trial in truth.held if any((ref, s) in pairs for s in truth.studies_of[trial]))
    held = len(truth.held)
    return {"reports": share(found(reports), held), "any_role": share(found(linked), held)}


def fig_precision(reg: Register, truth: Truth) -> dict:
    out = {}
    for name, keep in (("reports", lambda x: x["role"] == "reports"),
                       ("auto_reports", lambda x: x["role"] == "reports" and x["link"] == "auto"),
                       ("any_role", lambda x: True)):
        verdicts = Counter(truth.verdict(x["ref"], x["study"]) for x in reg.links
                           if x["ref"] in truth.refs and keep(x))
        right, wrong, unjudged = verdicts["right"], verdicts["wrong"], verdicts["not judged"]
        out[name] = {"strict": share(right, right + wrong + unjudged), "judged": share(right, right + wrong),
                     "not_judged": unjudged}
    return out


def backed(link: dict) -> bool:
    return any(item.get("kind") in BACKING for item in link["evidence"] or [])


def buckets(counts) -> dict:
    found = Counter(min(n, 4) for n in counts)
    return {"1": found[1], "2": found[2], "3": found[3], "4+": found[4]}


def fig_per_reference(reg: Register, truth: Truth) -> dict:
    reports, every = defaultdict(list), Counter()
    for link in reg.links:
        every[link["ref"]] += 1
        if link["role"] == "reports":
            reports[link["ref"]].append(link)
    many = {ref: links for ref, links in reports.items() if len(links) > 3}
    most = sorted(reports, key=lambda ref: (-len(reports[ref]), ref))[:10]
    return {"references_over_3_reports": len(many),
            "over_3_all_backed": sum(1 for links in many.values() if all(map(backed, links)))
            if reg.roles else NA,
            "over_3_gt_references": sum(1 for ref in many if ref in truth.refs),
            "max_reports": len(reports[most[0]]) if most else 0,
            "most_linked": [{"reference": ref, "type": reg.refs[ref]["type"], "reports": len(reports[ref]),
                             "gt_right": sum(truth.verdict(ref, x["study"]) == "right" for x in reports[ref])
                             if ref in truth.refs else None,
                             "title": clip(reg.refs[ref]["title"], 120)} for ref in most],
            "reports_per_reference": buckets(len(v) for v in reports.values()),
            "links_per_reference": buckets(every.values())}


def fig_counts(reg: Register) -> dict:
    confidence = defaultdict(Counter)
    for link in reg.links:
        value = link["confidence"]
        confidence[link["role"]][NA if value is None else f"{min(int(value * 10), 9) / 10:.1f}"] += 1
    with_reports = {x["ref"] for x in reg.links if x["role"] == "reports"}
    types = Counter(ref["type"] for ref in reg.refs.values())
    missing = Counter(ref["type"] for ref in reg.refs.values() if ref["id"] not in with_reports)
    return {"links": len(reg.links), "by_role": dict(Counter(x["role"] for x in reg.links)),
            "by_kind": dict(Counter(x["link"] for x in reg.links)),
            "by_kind_and_role": dict(Counter(f"{x['link']} {x['role']}" for x in reg.links)),
            "confidence": {role: dict(sorted(c.items())) for role, c in confidence.items()}
            if reg.roles else NA,
            "no_reports_link": {t: share(missing[t], types[t]) for t in sorted(types)}}


def evidence_of(reg: Register, link: dict) -> tuple[list[str], str]:
    """The kinds and the text of a link's evidence; without any (old schema), where its identifier is."""
    if link["evidence"]:
        kinds = sorted({item.get("kind", "?") for item in link["evidence"]})
        return kinds, clip(" | ".join(item.get("text") or item.get("span") or ""
                                   for item in link["evidence"]), 150)
    ref = reg.refs[link["ref"]]
    for field in ("title", "abstract", "notes"):
        text = ref[field] or ""
        for found in find_identifiers(text):
            if found.identifier == link["identifier"]:
                return [f"{field} (found)"], clip(text[max(0, found.end - 110):found.end + 40], 150)
    if link["identifier"] and link["identifier"] == ref["registration_id"]:
        return ["registration_id (field)"], ""
    return [], ""


def sample_links(reg: Register, truth: Truth, role: str, size: int, rng: random.Random) -> list[dict]:
    def own_record(link):
        ref = reg.refs[link["ref"]]
        return ref["type"] == REGISTRY_RECORD and link["identifier"] == ref["registration_id"]
    pool = [x for x in reg.links if x["role"] == role and not own_record(x)]
    out = []
    for link in rng.sample(pool, min(size, len(pool))):
        ref = reg.refs[link["ref"]]
        kinds, text = evidence_of(reg, link)
        out.append({"reference": ref["id"], "type": ref["type"], "title": clip(ref["title"], 120),
                    "study": link["study"], "study_title": clip(reg.study_title.get(link["study"]), 100),
                    "identifier": link["identifier"], "link": link["link"], "confidence": link["confidence"],
                    "evidence_kinds": kinds, "evidence": text, "gt": truth.verdict(ref["id"], link["study"])})
    return out


def fig_suggestions(reg: Register, truth: Truth, rng: random.Random) -> dict:
    if not reg.has_suggestions:
        return {"needing": NA, "with_suggestion": NA, "top1_right": NA, "top5_right": NA, "sample": []}
    reports = {(x["ref"], x["study"]) for x in reg.links if x["role"] == "reports"}
    right = defaultdict(set)
    for ref, study in truth.pairs:
        right[ref].add(study)
    needing = [ref for ref in sorted(truth.refs)
               if not find_identifiers(f"{reg.refs[ref]['title']}\n{reg.refs[ref]['abstract'] or ''}")
               and not any((ref, s) in reports for s in right[ref])]
    suggested = [ref for ref in needing if reg.suggestions[ref]]
    top1 = [ref for ref in suggested if reg.suggestions[ref][0][1] in right[ref]]
    top5 = [ref for ref in suggested if any(s in right[ref] for _, s, _ in reg.suggestions[ref][:5])]
    sample = []
    for ref in rng.sample(suggested, min(50, len(suggested))):
        score, study, reasons = reg.suggestions[ref][0]
        sample.append({"reference": ref, "title": clip(reg.refs[ref]["title"], 120), "study": study,
                       "study_title": clip(reg.study_title.get(study), 100), "score": score,
                       "reasons": reasons, "gt": "right" if study in right[ref] else "wrong"})
    return {"needing": len(needing), "with_suggestion": share(len(suggested), len(needing)),
            "top1_right": share(len(top1), len(needing)), "top5_right": share(len(top5), len(needing)),
            "top1_right_of_suggested": share(len(top1), len(suggested)), "sample": sample}


def fig_acronym(reg: Register) -> dict:
    saying = {ref["id"] for ref in reg.refs.values()
              if ACRONYM in f"{ref['title']} {ref['abstract'] or ''}".lower()}
    links = [x for x in reg.links if x["ref"] in saying]
    return {"references": len(saying),
            "studies_reports": len({x["study"] for x in links if x["role"] == "reports"}),
            "studies_any_link": len({x["study"] for x in links})}


def summary(figures: dict, reg: Register) -> list[str]:
    t, r, p, per, c, s, a = (figures[k] for k in ("1_truth", "2_recall", "3_precision", "4_per_reference",
                                                   "5_counts", "7_suggestions", "8_acronym"))
    lines = [f"schema: {'link roles' if reg.roles else 'old (no roles: every link counts as reports)'}",
             f"1. DIRECCT: {t['publications_rows']:,} publication rows of"
             f" {t['trials_with_publications']:,} trials;"
             f" held pairs {t['held_pairs']:,} ({t['held_trials']:,} trials, {t['gt_pairs']:,} GT pairs);"
             f" GT references present {t['gt_references_present']:,}",
             f"2. recall, reports link: {shown(r['reports'])}; any link: {shown(r['any_role'])}",
             "3. precision of GT references' links:"]
    for name, figure in p.items():
        lines.append(f"   {name:13} strict {shown(figure['strict'])}; judged {shown(figure['judged'])}"
                     f" ({figure['not_judged']:,} not judged)")
    lines += [f"4. references with >3 reports links: {per['references_over_3_reports']:,}"
              f" ({per['over_3_gt_references']:,} GT references), every link backed by a registration"
              f" statement or id: {per['over_3_all_backed']}; most reports links of one reference:"
              f" {per['max_reports']:,}",
              f"   reports links per reference {per['reports_per_reference']};"
              f" links {per['links_per_reference']}"]
    lines += [f"   {m['reports']:4} reports, {m['gt_right'] if m['gt_right'] is not None else '-'} GT-right:"
              f" #{m['reference']} {m['type']}: {m['title'][:90]}" for m in per["most_linked"][:5]]
    lines += [f"5. links {c['links']:,}; by role {c['by_role']}; by kind {c['by_kind']};"
              f" {c['by_kind_and_role']}",
              f"   confidence per role: {c['confidence']}",
              "   references with no reports link: "
              + "; ".join(f"{k} {shown(v)}" for k, v in c["no_reports_link"].items()),
              f"7. suggestions: GT references with no TRN in title/abstract and no reports link to a right"
              f" study: {s['needing']}; with a suggestion {shown(s['with_suggestion'])};"
              f" top-1 right {shown(s['top1_right'])}; top-5 right {shown(s['top5_right'])}",
              f"8. '{ACRONYM.upper()}' in {a['references']} references: studies with a reports link"
              f" {a['studies_reports']}, with any link {a['studies_any_link']}"]
    return lines


def listed(samples: list[dict]) -> list[str]:
    return [f"{i:3}. [{x['gt']}] ref #{x['reference']} ({x['type']}) {x['title']}\n"
            f"     -> study #{x['study']} {x['study_title']}\n"
            f"     via {x['identifier']} ({x['link']}, confidence {x['confidence']},"
            f" {', '.join(x['evidence_kinds']) or 'no evidence'}): {x['evidence']}"
            for i, x in enumerate(samples, 1)]


def reasons_text(reasons: list) -> str:
    return "; ".join(f"{r.get('kind')}: {r.get('detail')} ({r.get('score')})" if isinstance(r, dict)
                     else str(r) for r in reasons)


def suggested(sample: list[dict]) -> list[str]:
    return [f"{i:3}. [{x['gt']}] ref #{x['reference']} {x['title']}\n"
            f"     -> study #{x['study']} {x['study_title']} (score {x['score']}):"
            f" {reasons_text(x['reasons'])}"
            for i, x in enumerate(sample, 1)]


def markdown(samples: dict[str, list[dict]], suggestions: list[dict]) -> str:
    def cell(value) -> str:
        return str("" if value is None else value).replace("|", "\\|")
    out = []
    for role, rows in samples.items():
        out += [f"## {role} links ({len(rows)})", "",
                "| # | GT | reference | type | title | study | study title | identifier | conf. | evidence |"
                " evidence text | ok? |", "|" + "---|" * 12]
        out += ["| " + " | ".join(cell(v) for v in (
                    i, x["gt"], x["reference"], x["type"], x["title"], x["study"], x["study_title"],
                    x["identifier"], x["confidence"], ", ".join(x["evidence_kinds"]), x["evidence"], ""))
                + " |" for i, x in enumerate(rows, 1)]
        out.append("")
    out += [f"## top-1 suggestions ({len(suggestions)})", "",
            "| # | GT | reference | title | study | study title | score | reasons | ok? |", "|" + "---|" * 9]
    out += ["| " + " | ".join(cell(v) for v in (
                i, x["gt"], x["reference"], x["title"], x["study"], x["study_title"], x["score"],
                reasons_text(x["reasons"]), "")) + " |" for i, x in enumerate(suggestions, 1)]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="sqlite:////path.db or postgresql://user@host:port/name (default $DATABASE_URL)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", metavar="FILE", help="write every figure and sample as JSON to FILE")
    parser.add_argument("--samples", metavar="FILE.md", help="write the link samples as a Markdown table")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is needed")

    started = time.perf_counter()
    database = service_db.init_database(args.database_url)
    with database.connection_context():
        reg = Register(database)
    truth = Truth(args.data, reg)
    read = time.perf_counter() - started
    # One generator per sample: a sample does not move when another pool's size changes.
    samples = {"reports": sample_links(reg, truth, "reports", 100, random.Random(args.seed)),
               "cites": sample_links(reg, truth, "cites", 50, random.Random(args.seed))}
    figures = {"1_truth": fig_truth(truth), "2_recall": fig_recall(reg, truth),
               "3_precision": fig_precision(reg, truth), "4_per_reference": fig_per_reference(reg, truth),
               "5_counts": fig_counts(reg), "6_samples": samples,
               "7_suggestions": fig_suggestions(reg, truth, random.Random(args.seed)),
               "8_acronym": fig_acronym(reg)}
    seconds = {"reading": round(read, 2), "total": round(time.perf_counter() - started, 2)}

    url = re.sub(r"//([^:@/]+):[^@/]+@", r"//\1:***@", args.database_url)
    print(f"register: {url}")
    print("\n".join(summary(figures, reg)))
    for role, rows in samples.items():
        print(f"\n6. {len(rows)} random {role} links (seed {args.seed}):")
        print("\n".join(listed(rows)))
    top = figures["7_suggestions"]["sample"]
    print(f"\n7. {len(top)} random top-1 suggestions of GT references needing one (seed {args.seed}):")
    print("\n".join(suggested(top)))
    print(f"\nseconds: {seconds}")
    if args.json:
        report = {"database_url": url, "schema": "roles" if reg.roles else "old", "seed": args.seed,
                  "figures": figures, "seconds": seconds}
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"written {args.json}")
    if args.samples:
        Path(args.samples).write_text(markdown(samples, top))
        print(f"written {args.samples}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
