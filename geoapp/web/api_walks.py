"""Walks: POST /api/v1/walks (chunks of a GPS trace) and GET /api/v1/walks."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import BadRequest

from ..domain.errors import BodyTooLarge
from ..domain.inputs import refusal
from ..domain.walks import Walker, WalkRules, list_stretches, parse_chunk, parse_query, record_chunk
from . import database, read_session, settings
from .doors import api_login_required

bp = Blueprint("api_walks", __name__, url_prefix="/api/v1")

# A chunk of 2,000 points is about 200 KB of JSON: more than the 64 KB other JSON bodies may have.
WALK_BODY_MAX = 384 * 1024


@bp.before_request
def _allow_walk_chunks():
    if request.endpoint == "api_walks.post_chunk":
        if (request.content_length or 0) > WALK_BODY_MAX:
            raise BodyTooLarge(size_kb=request.content_length / 1024, max_kb=WALK_BODY_MAX / 1024)
        request.max_content_length = WALK_BODY_MAX


def _json_body():
    try:
        return request.get_json(silent=False) if request.is_json else None
    except (BadRequest, RecursionError):  # malformed JSON, or nested too deep for the parser
        raise refusal("body", "object") from None


@bp.post("/walks")
@api_login_required
def post_chunk():
    chunk = parse_chunk(_json_body())
    user = g.user
    walker = Walker(user.id, user.representative.id if user.representative is not None else None)
    with database().transaction() as session:
        answer, created = record_chunk(session, walker, chunk, WalkRules.from_settings(settings()))
    return jsonify(answer), 201 if created else 200


@bp.get("/walks")
@api_login_required
def stretches():
    query = parse_query(request.args.to_dict())
    return jsonify({"stretches": list_stretches(read_session(), g.viewer, query, settings().display_tz)})
