"""Blueprint "stats": the register in numbers."""

from __future__ import annotations

from flask.views import MethodView

from ..domain.evidence_map import evidence_map
from ..domain.stats import register_stats
from ..domain.studies import STUDY_FILTERS, study_conditions
from ..search.index import search_plan
from .caching import record_response
from .parser import IF_NONE_MATCH, Blueprint
from .schemas.stats import EvidenceMapArgsSchema, EvidenceMapSchema, StatsSchema

blp = Blueprint("stats", __name__, url_prefix="/stats",
                description="Totals and counts for dashboards and evidence maps.")


@blp.route("")
class Stats(MethodView):
    @blp.response(200, StatsSchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.alt_response(304, response="NOT_MODIFIED", description="Your copy (If-None-Match) is current.")
    @blp.header(IF_NONE_MATCH)
    def get(self):
        """The register in numbers

        Totals of studies and references; for every study facet (the four classifications,
        `registry`, `reference_type`, `has_results`) and reference facet (`type`, `has_results`,
        `year`) the count per value, every vocabulary value listed even at 0; and the studies
        first published per month, every month from the first to the last (0 where none).
        Counted live; sends an `ETag`, so `If-None-Match` gives 304 while nothing changed.
        """
        stats = register_stats()
        return record_response(StatsSchema().dump(stats), stats, last_modified=stats["last_updated"])


@blp.route("/map")
class EvidenceMap(MethodView):
    @blp.arguments(EvidenceMapArgsSchema, location="query")
    @blp.response(200, EvidenceMapSchema)
    def get(self, args):
        """The evidence map's counts

        What the page `/map` draws, for the studies `GET /studies` would list with the same `q` and
        filters: studies per month of registration and study type (every month from the first to
        the last registration date, 0 where none), and per study aim × study design (every pair of
        vocabulary values). Two grouped queries, whatever the register's size.
        """
        q = args.get("q")
        filters = {k: args[k] for k in STUDY_FILTERS if args.get(k) is not None}
        with search_plan(q is not None):
            counts = evidence_map(study_conditions(q=q, **filters))
        by_month, matrix = counts["by_month"], counts["matrix"]
        return {
            "studies": matrix["total"],
            "registered": by_month["dated"],
            "study_types": by_month["types"],
            "studies_registered_by_month_and_type": [
                {"month": m["month"], "count": sum(m["counts"].values()),
                 "study_type": [{"value": t, "count": m["counts"][t]} for t in by_month["types"]]}
                for m in by_month["months"]],
            "studies_by_aim_and_design": [
                {"study_aim": aim, "study_design": design, "count": matrix["counts"][aim][design]}
                for aim in matrix["aims"] for design in matrix["designs"]],
        }
