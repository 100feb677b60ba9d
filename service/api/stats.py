"""Blueprint "stats": the register in numbers."""

from __future__ import annotations

from flask.views import MethodView

from ..domain.stats import register_stats
from .caching import record_response
from .parser import IF_NONE_MATCH, Blueprint
from .schemas.stats import StatsSchema

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
