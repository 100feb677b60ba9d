"""Blueprint "duplicates": candidate duplicate studies, rejecting a pair, merging, splitting, and the
feed of merged ids (all under /studies)."""

from __future__ import annotations

import math
from urllib.parse import urlencode

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import fields, validate

from ..domain import merging
from ..domain.ordering import SortKey
from ..models import MergedStudy
from .caching import if_match
from .links import link, link_for
from .paging import paginate
from .parser import IF_MATCH, Blueprint
from .schemas.common import OPTIONAL, Instant, Int, QueryArgsSchema, Text, envelope, paging_fields
from .schemas.studies import RegistrationRecordSchema, StudySchema
from .studies import study_response

blp = Blueprint("duplicates", __name__, url_prefix="/studies",
                description="Duplicate studies: candidate pairs, merging two studies into one, "
                            "splitting one in two, and the ids merged away.")

STUDY_ID = "<int(max=2147483647):study_id>"
STUDY_ID_FIELD = {"strict": True, "validate": validate.Range(1, 2147483647)}
_PAGING = paging_fields({}, "id")


# ---- schemas --------------------------------------------------------------------------------------

class CandidateStudySchema(ma.Schema):
    id = fields.Integer(metadata={"example": 12})
    name = fields.String(metadata={"example": "NCT04343001"})
    title = fields.String()
    registrations = fields.List(fields.Nested(RegistrationRecordSchema))


class ReasonSchema(ma.Schema):
    kind = fields.String(validate=validate.OneOf(["same_title", "article_cites_both"]), metadata={
        "description": "`same_title`: a title of one study equals one of the other's (case, accents "
                       "and punctuation ignored); `article_cites_both`: a reference that is not a "
                       "registry record cites registrations of both. Either only when the two share no "
                       "registry (one registry does not register one trial twice).",
        "example": "same_title"})
    title = fields.String(metadata={"description": "`same_title`: the title, as one study has it.",
                                    **OPTIONAL})
    reference_id = fields.Integer(metadata={"description": "`article_cites_both`: the reference.",
                                            **OPTIONAL})
    studies_named = fields.Integer(metadata={
        **OPTIONAL,
        "description": "`article_cites_both`: how many studies the reference's identifiers name "
                       "(2 or 3; more is a review and no signal)."})


class CandidateSchema(ma.Schema):
    study_ids = fields.List(fields.Integer(), metadata={"description": "The pair, lower id first.",
                                                        "example": [12, 40]})
    score = fields.Float(metadata={
        "description": "0–1: `1 − (1 − t)(1 − a)`, t = 0.7 for a shared title, a = the strongest "
                       "article signal: 0.3 for a reference citing exactly these two studies, 0.1 for one "
                       "citing three (articles do not add up). One title 0.7, one article 0.3, both 0.79.",
        "example": 0.79})
    status = fields.String(metadata={"description": "`open` or `rejected`.", "example": "open"})
    decided = Instant(allow_none=True, metadata={"description": "When the pair was rejected."})
    reasons = fields.List(fields.Nested(ReasonSchema), metadata={
        "description": "The signals joining the pair (a rejected pair may have none left)."})
    studies = fields.List(fields.Nested(CandidateStudySchema))


CandidatePageSchema = envelope(CandidateSchema, "DuplicateCandidatePage")

CandidateQueryArgsSchema = QueryArgsSchema.from_dict({
    "status": fields.String(load_default="open", validate=validate.OneOf(merging.STATUSES), metadata={
        "description": "`open` (default): pairs not decided; `rejected`: pairs a curator rejected "
                       "(or a split made); `all`: both."}),
    "page": Int(validate=validate.Range(1, 10_000), metadata={
        "description": "Page number, from 1 (the candidates are few: no `cursor` here)."}),
    "page_size": _PAGING["page_size"],
}, name="DuplicateCandidateQueryArgs")


class RejectSchema(ma.Schema):
    study_ids = fields.List(Int(**STUDY_ID_FIELD), required=True,
                            validate=validate.Length(equal=2), metadata={
                                "description": "The two studies that are not duplicates.",
                                "example": [12, 40]})


class DecisionSchema(ma.Schema):
    study_ids = fields.List(fields.Integer(), metadata={"example": [12, 40]})
    status = fields.String(metadata={"example": "rejected"})
    decided = Instant()


class MergeSchema(ma.Schema):
    from_ = Int(data_key="from", required=True, **STUDY_ID_FIELD, metadata={
        "description": "The id of the study merged into this one (it goes away).", "example": 40})


class SplitSchema(ma.Schema):
    registrations = fields.List(
        Text(validate=validate.Length(1, 100)), required=True, validate=validate.Length(1, 50),
        metadata={"description": "Registration identifiers of the study (any written form) that "
                                 "become a new study; at least one must stay.",
                  "example": ["PACTR202006473370201"]})


class MergedStudySchema(ma.Schema):
    id = fields.Integer(metadata={"description": "The merged study's former id.", "example": 40})
    into = fields.Integer(attribute="into_id", metadata={
        "description": "The study it is now part of.", "example": 12})
    name = fields.String(metadata={"description": "The merged study's name.",
                                   "example": "PACTR202006473370201"})
    merged = Instant()


MergedPageSchema = envelope(MergedStudySchema, "MergedStudyPage")

MergedQueryArgsSchema = QueryArgsSchema.from_dict({
    "since": Instant(metadata={"description": "Merged at or after this instant (or day)."}),
    "page": _PAGING["page"],
    "page_size": _PAGING["page_size"],
    "cursor": _PAGING["cursor"],
}, name="MergedStudyQueryArgs")


# ---- views ----------------------------------------------------------------------------------------

def _page_url(page: int) -> str:
    params = [(k, v) for k, v in request.args.items(multi=True) if k != "page"] + [("page", page)]
    return link(request.path) + "?" + urlencode(params)


@blp.route("/duplicates")
class DuplicateCandidates(MethodView):
    @blp.arguments(CandidateQueryArgsSchema, location="query")
    @blp.response(200, CandidatePageSchema, headers={"Link": {
        "description": "RFC 8288 links: next, prev, first.", "schema": {"type": "string"}}})
    def get(self, args):
        """List candidate duplicate studies

        Pairs of studies that may be one trial: a title shared across registries (the studies'
        own titles, their registry records' and their source records'; placeholder titles and
        titles of fewer than three words ignored, nor a title more than four studies share), or a
        reference that is not a registry record citing registrations of both (one naming more than
        three studies is a review, not a signal); either only between studies with no registry in
        common. Best `score` first, then by ids. Computed from the whole register at each request
        (about 0.5 s at 11,000 studies); paged by `page` only (no `cursor`).
        """
        page, size = args.get("page") or 1, args["page_size"]
        start = (page - 1) * size
        total, items = merging.list_candidates(status=args["status"], offset=start, limit=size)
        next_url = _page_url(page + 1) if start + size < total else None
        prev_url = _page_url(min(page - 1, math.ceil(total / size))) if page > 1 and total else None
        links = [f'<{url}>; rel="{rel}"' for url, rel in ((next_url, "next"), (prev_url, "prev")) if url]
        links.append(f'<{_page_url(1)}>; rel="first"')
        return ({"items": items, "total": total, "page": page, "page_size": size,
                 "next": next_url, "prev": prev_url}, 200, {"Link": ", ".join(links)})


@blp.route("/duplicates/reject")
class DuplicateRejection(MethodView):
    @blp.write("studies")
    @blp.body_errors
    @blp.arguments(RejectSchema, example={"study_ids": [12, 40]})
    @blp.response(200, DecisionSchema, description="Already rejected: nothing changed.")
    @blp.alt_response(201, schema=DecisionSchema, description="Rejected: no longer listed as open.")
    def post(self, data):
        """Reject a candidate pair

        The two studies are not duplicates: the pair is no longer listed as `open` (it is with
        `status=rejected`). Idempotent. Studies that do not exist (or were merged) are a 422
        naming them.
        """
        decision, created = merging.reject_candidate(data["study_ids"])
        return decision, 201 if created else 200


@blp.route("/merged")
class MergedStudies(MethodView):
    @blp.arguments(MergedQueryArgsSchema, location="query")
    @blp.response(200, MergedPageSchema, headers={"Link": {
        "description": "RFC 8288 links: next, prev, first.", "schema": {"type": "string"}}})
    def get(self, args):
        """List the ids merged away

        A change feed for mirrors: each study merged into another (`id` its former id, `into` the
        study it is now part of, `name`, `merged` when), oldest first, newest last; `since` keeps
        those merged at or after an instant. An id merged into a study that was later merged itself
        points at the last survivor. A merged id answers `308` with `Location` at `/studies/{id}`.
        """
        args["sort"] = "merged"
        keys = [SortKey(MergedStudy.merged, False, "merged"), SortKey(MergedStudy.id, False, "id")]
        query = merging.merged_studies(args.get("since"))
        envelope_, headers = paginate(
            query, args=args, keys=keys, serialize=lambda rows: rows,
            rows_of=lambda top: MergedStudy.select().join(top, on=(MergedStudy.id == top.c.id)))
        return envelope_, 200, headers


@blp.route(f"/{STUDY_ID}/merge")
class StudyMerge(MethodView):
    @blp.write("studies")
    @blp.body_errors
    @blp.arguments(MergeSchema, example={"from": 40})
    @blp.response(200, StudySchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.alt_response(308, response="PERMANENT_REDIRECT", description="This study was merged itself.")
    @blp.alt_response(404, response="NOT_FOUND", description="No such study (`errors.from` for the other).")
    @blp.alt_response(409, response="CONFLICT", description="The study `from` names was already merged.")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def post(self, data, study_id):
        """Merge another study into this one

        In one transaction the study `from` names gives this one its registrations, its links
        (where both link one reference, a manual link wins over an automatic one), its curators'
        unlinks (which beat automatic links; where the two curators disagree, this study's
        decision stands), the fields its curator set that this study's curator did not, and its
        duplicate decisions; it is then deleted. Its id answers `308 Permanent Redirect` to this study from
        then on and appears in `GET /studies/merged`. This study's fields are derived again from
        all its records and its `updated` moves. `If-Match` takes this study's ETag. Merging a
        study into itself is a 422; an unknown `from` a 404, an already merged one a 409.
        """
        merging.merge_studies(study_id, data["from_"], if_match=if_match())
        return study_response(study_id)


@blp.route(f"/{STUDY_ID}/split")
class StudySplit(MethodView):
    @blp.write("studies")
    @blp.body_errors
    @blp.arguments(SplitSchema, example={"registrations": ["PACTR202006473370201"]})
    @blp.response(201, StudySchema, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(308, response="PERMANENT_REDIRECT", description="This study was merged.")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is stale.")
    @blp.header(IF_MATCH)
    def post(self, data, study_id):
        """Split registrations off into a new study

        The registrations named (any written form) move to a new study named after the first, titled
        as its registry record (else as this study), its fields derived from its records. References
        citing the moved registrations are linked to the new study and unlinked from this one unless
        they also cite a registration it keeps (automatic linking's rule); manual links stay here.
        The two are remembered as not duplicates. A registration the study lacks, or all of them,
        is a 422.
        """
        new_id = merging.split_study(study_id, data["registrations"], if_match=if_match())
        return study_response(new_id, status=201, headers={
            "Location": link_for("studies.StudyById", study_id=new_id)})
