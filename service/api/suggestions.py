"""Blueprint "suggestions": studies suggested for references with no `reports` link, the queue of them, and
accepting (a manual link) or rejecting one."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from ..domain import suggestions as domain
from .paging import paginate
from .parser import Blueprint
from .schemas.common import Instant, QueryArgsSchema, envelope, paging_fields

blp = Blueprint("suggestions", __name__, url_prefix="/",
                description="Suggested studies for references with no `reports` link (no registration "
                            "number to link them by): ranked candidates with their reasons, the curators' "
                            "queue, accepting one (a manual link) or rejecting it (remembered).")

REFERENCE_ID = "<int(max=2147483647):reference_id>"
SUGGESTION_ID = "<int(max=2147483647):suggestion_id>"
KINDS = ["title", "acronym", "authors", "intervention", "country", "named"]


class SuggestionReasonSchema(ma.Schema):
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={
        "description": "`title`: the reference's title is like one of the study's titles (its own, its "
                       "registry records', a registry's, another report's; cosine similarity of character "
                       "n-gram TF-IDF vectors); `acronym`: a trial acronym of the reference's title (or "
                       "named as a trial in its abstract) is in the study's titles; `authors`: authors of "
                       "the reference wrote another report of the study; `intervention`: distinctive words "
                       "of the reference are in the study's interventions; `country`: the reference names "
                       "a country where the study recruits; `named`: the reference names the study's "
                       "registration, but linking left it a citation.",
        "example": "title"})
    detail = fields.String(metadata={
        "description": "The signal in words: the matched title and its similarity, the acronym, the "
                       "authors, the words, the country.",
        "example": "Title like a registry record's title: “Hydrocortisone for COVID-19 and Severe "
                   "Hypoxia” (similarity 0.62)."})
    score = fields.Float(metadata={
        "description": "0–1: the signal's strength (a similarity, `1/n` for an acronym `n` studies "
                       "hold, the rarity of shared words or authors).", "example": 0.62})


class SuggestionSchema(ma.Schema):
    id = fields.Integer(metadata={"description": "The suggestion (accept or reject it by this id).",
                                  "example": 31})
    reference_id = fields.Integer(metadata={"example": 11551})
    reference_title = fields.String(metadata={"description": "The reference's title."})
    study_id = fields.Integer(metadata={"description": "The suggested study.", "example": 2346})
    study_name = fields.String(metadata={"description": "The study's name.", "example": "NCT04331795"})
    study_title = fields.String(metadata={"description": "The study's title."})
    score = fields.Float(metadata={
        "description": "0–1: `1 − Π(1 − w·s)` over the reasons, weights title 1, acronym 0.6, authors "
                       "0.6, intervention 0.25, country 0.2. On the real data set a first suggestion "
                       "scoring 0.7 or more was the right study for 84 % of the references checked, "
                       "0.5–0.7 for 61 %, below 0.4 for few.",
        "example": 0.752})
    reasons = fields.List(fields.Nested(SuggestionReasonSchema), metadata={
        "description": "What the reference and the study share, strongest signal first."})
    status = fields.String(validate=validate.OneOf(domain.STATUSES), metadata={
        "description": "`open`: for a curator to decide; `accepted`: the reference is linked to the study "
                       "by hand (it reports it); `rejected`: not the reference's study, never suggested "
                       "again.", "example": "open"})
    created = Instant(metadata={"description": "When it was first suggested."})
    decided = Instant(allow_none=True, metadata={"description": "When it was accepted or rejected."})


SuggestionPageSchema = envelope(SuggestionSchema, "SuggestionPage")

_PAGING = paging_fields(domain.QUEUE_SORTS, "-score")

SuggestionQueryArgsSchema = QueryArgsSchema.from_dict({
    "status": fields.String(load_default=domain.OPEN, validate=validate.OneOf(domain.STATUSES), metadata={
        "description": "`open` (default): not decided yet; `accepted` or `rejected`: a curator's "
                       "decisions."}),
    "min_score": fields.Float(validate=validate.Range(0, 1), metadata={
        "description": "Only suggestions scoring this or more (0-1). In a hand-check of 50 random top "
                       "suggestions of the real register, those under 0.5 were never right: most references "
                       "without a report link report no registered study.", "example": 0.5}),
    **{name: _PAGING[name] for name in ("page", "page_size", "cursor", "sort")},
}, name="SuggestionQueryArgs")


# ---- views ----------------------------------------------------------------------------------------

@blp.route(f"references/{REFERENCE_ID}/suggestions")
class ReferenceSuggestions(MethodView):
    @blp.response(200, SuggestionSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND", description="No such reference.")
    def get(self, reference_id):
        """List the studies suggested for a reference

        For a reference with no `reports` link: the studies it may report, from what the two share
        (titles, a trial acronym, authors, intervention words, a country; `reasons`), open ones best
        `score` first (at most 5, scoring 0.2 or more), then those a curator accepted or rejected,
        latest first. Never a study the reference reports, nor one whose link a curator gave a role (a
        study it only cites can be: its text names the trial, reason `named`). Suggestions are
        computed by `study-register suggest` and after imports; a reference with a `reports` link has
        no open ones.
        """
        return domain.for_reference(reference_id)


@blp.route("suggestions")
class Suggestions(MethodView):
    @blp.arguments(SuggestionQueryArgsSchema, location="query")
    @blp.response(200, SuggestionPageSchema, headers={"Link": {
        "description": "RFC 8288 links: next, prev, first.", "schema": {"type": "string"}}})
    def get(self, args):
        """List suggestions: the curators' queue

        Every suggestion with `status` (`open` by default), best `score` first unless `sort` says
        otherwise, each with its reference's and its study's titles and its reasons. Paged like the
        other lists (`page`, or `cursor=*` then `next`).
        """
        args["sort"] = args.get("sort") or "-score"
        keys = domain.queue_keys(args["sort"])
        envelope_, headers = paginate(
            domain.queue(args["status"], min_score=args.get("min_score")), args=args, keys=keys,
            serialize=lambda rows: [domain.suggestion_dict(r) for r in rows], rows_of=domain.queue_rows)
        return envelope_, 200, headers


@blp.route(f"suggestions/{SUGGESTION_ID}/accept")
class SuggestionAcceptance(MethodView):
    @blp.write("studies")
    @blp.response(200, SuggestionSchema, description="Accepted: the reference now reports the study.")
    @blp.alt_response(404, response="NOT_FOUND", description=(
        "No such suggestion (its study or reference was deleted, or it was no longer among the best "
        "when suggestions were computed again)."))
    @blp.alt_response(409, response="CONFLICT", description="Already accepted or rejected: nothing changed.")
    def post(self, suggestion_id):
        """Accept a suggestion

        Links the reference to the study by hand, as a report of it (as `PUT
        /studies/{study_id}/references/{reference_id}` does: automation never removes the link), marks
        the suggestion `accepted` and drops the reference's other open suggestions, in one
        transaction. A suggestion already accepted or rejected is a 409 and nothing changes.
        """
        return domain.accept(suggestion_id)


@blp.route(f"suggestions/{SUGGESTION_ID}/reject")
class SuggestionRejection(MethodView):
    @blp.write("studies")
    @blp.response(200, SuggestionSchema, description="Already rejected: nothing changed.")
    @blp.alt_response(201, schema=SuggestionSchema, description="Rejected: never suggested again.")
    @blp.alt_response(404, response="NOT_FOUND", description=(
        "No such suggestion (its study or reference was deleted, or it was no longer among the best "
        "when suggestions were computed again)."))
    @blp.alt_response(409, response="CONFLICT", description="Accepted already: unlink the reference instead.")
    def post(self, suggestion_id):
        """Reject a suggestion

        The study is not the reference's: the suggestion becomes `rejected` and the pair is never
        suggested again, however suggestions are recomputed. Idempotent (a rejected one answers 200,
        unchanged). An accepted one is a 409: unlink the reference from the study instead.
        """
        suggestion, changed = domain.reject(suggestion_id)
        return suggestion, 201 if changed else 200
