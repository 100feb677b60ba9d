"""Blueprint "registrations": resolve any written form of a registration identifier to its study."""

from __future__ import annotations

from flask.views import MethodView

from ..domain import studies as domain
from .parser import IF_NONE_MATCH, Blueprint
from .schemas.studies import StudySchema
from .studies import study_response

blp = Blueprint("registrations", __name__, url_prefix="/registrations",
                description="Trial registration identifiers, in any written form.")


@blp.route("/<path(maxlength=100):identifier>")
class RegistrationByIdentifier(MethodView):
    @blp.response(200, StudySchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.alt_response(304, response="NOT_MODIFIED", description="Your copy (If-None-Match) is current.")
    @blp.header(IF_NONE_MATCH)
    @blp.alt_response(404, response="NOT_FOUND", description="No study has this registration.")
    def get(self, identifier):
        """Find the study that owns a registration identifier

        Any written form resolves: `NCT 04280705`, `nct04280705`, `EUCTR2020-001909-22-FR`,
        `JPRN-UMIN000040341`, `CTRI/2020/12/029986`. Answers the study, as `GET /studies/{id}` does.
        """
        return study_response(domain.study_owning(identifier))
