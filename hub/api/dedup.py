"""Dedup, seen by people: why tickets were grouped, the review queue of doubtful matches, and the
audited, undoable corrections (merge, split, link elsewhere, undo)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from hub.api.auth import READERS, fail, hub_ctx, load_caller, require_role
from hub.api.schemas import (
    CaseOperationSchema,
    MatchExplanationSchema,
    MergeArgs,
    ReviewDecisionSchema,
    ReviewItemSchema,
    ReviewLinkArgs,
    ReviewListArgs,
    ReviewNoteArgs,
    ReviewPageSchema,
    SplitArgs,
    UndoArgs,
)
from hub.services import dedup_ops
from hub.services.dedup_ops import OperationError

blp = Blueprint("dedup", __name__, url_prefix="/api/v1",
                description="Dedup: match explanations, the review queue, merge / split / undo")
blp.before_request(load_caller)

OPERATORS = ("admin", "operator")
T = TypeVar("T")


def _answer(call: Callable[[], T]) -> T:
    """A refused operation becomes its JSON error (404 also for what lies outside the caller's
    jurisdiction, so a scoped token learns nothing about other districts)."""
    try:
        return call()
    except OperationError as exc:
        fail(exc.status, exc.message)


def _actor() -> str:
    return str(g.caller["name"])


def _scope() -> str:
    return str(g.caller["scope"] or "")


def _addr() -> str:
    return request.remote_addr or ""


@blp.route("/cases/<int(max=2147483647):case_id>/match-explanations")
class MatchExplanations(MethodView):
    @require_role(*READERS)
    @blp.response(200, MatchExplanationSchema)
    @blp.alt_response(404, description="no such case (or outside the caller's jurisdiction)")
    def get(self, case_id: int) -> dict[str, Any]:
        """Why each ticket is in the case: its matching decisions (newest first) with every
        feature's contribution, and the operations people did on the case."""
        return _answer(lambda: dedup_ops.match_explanations(hub_ctx(), case_id, scope=_scope()))


@blp.route("/cases/<int(max=2147483647):case_id>/operations")
class CaseOperations(MethodView):
    @require_role(*READERS)
    @blp.response(200, CaseOperationSchema(many=True))
    @blp.alt_response(404, description="no such case (or outside the caller's jurisdiction)")
    def get(self, case_id: int) -> list[dict[str, Any]]:
        """Every merge, split, review decision and undo that involved the case, newest first."""
        return _answer(lambda: dedup_ops.case_operations(hub_ctx(), case_id, scope=_scope()))


@blp.route("/cases/<int(max=2147483647):case_id>/merge")
class CaseMerge(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(MergeArgs)
    @blp.response(200, CaseOperationSchema)
    @blp.alt_response(404, description="either case does not exist (or lies outside the caller's jurisdiction)")
    @blp.alt_response(409, description="same case, or a case cancelled or merged away")
    def post(self, args: dict[str, Any], case_id: int) -> dict[str, Any]:
        """Merge this case into ``into_case_id``: all its tickets move there and it is cancelled,
        pointing at the case that absorbed it. Undoable."""
        return _answer(lambda: dedup_ops.merge_cases(hub_ctx(), case_id, args["into_case_id"], _actor(),
                                                     args["reason"], scope=_scope(), remote_addr=_addr()))


@blp.route("/tickets/<text:system_key>/<text:external_id>/split")
class TicketSplit(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(SplitArgs)
    @blp.response(200, CaseOperationSchema)
    @blp.alt_response(404, description="no such ticket or case (or outside the caller's jurisdiction)")
    @blp.alt_response(409, description="the only ticket of its case, already in that case, or the case is "
                                       "cancelled or merged away")
    def post(self, args: dict[str, Any], system_key: str, external_id: str) -> dict[str, Any]:
        """Take the ticket out of its case into a new case, or into ``case_id`` (link elsewhere).
        Undoable."""
        return _answer(lambda: dedup_ops.split_ticket(hub_ctx(), system_key, external_id, _actor(), args["reason"],
                                                      args.get("case_id"), scope=_scope(), remote_addr=_addr()))


@blp.route("/case-operations/<int(max=2147483647):op_id>/undo")
class OperationUndo(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(UndoArgs)
    @blp.response(200, CaseOperationSchema)
    @blp.alt_response(404, description="no such operation (or it involves cases outside the caller's jurisdiction)")
    @blp.alt_response(409, description="already undone, an undo itself, or one of its tickets has moved since")
    def post(self, args: dict[str, Any], op_id: int) -> dict[str, Any]:
        """Revert an operation exactly; answers with the undo, itself recorded as an operation."""
        return _answer(lambda: dedup_ops.undo_operation(hub_ctx(), op_id, _actor(), args["reason"],
                                                        scope=_scope(), remote_addr=_addr()))


@blp.route("/review-queue")
class ReviewQueue(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(ReviewListArgs, location="query")
    @blp.response(200, ReviewPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Doubtful matches: each ticket beside the case it probably belongs to, with every
        feature's contribution. Pending items oldest first; decided ones newest first."""
        return _answer(lambda: dedup_ops.list_reviews(hub_ctx(), args["status"], args["limit"], args["offset"],
                                                      scope=_scope()))


@blp.route("/review-queue/<int(max=2147483647):review_id>")
class ReviewDetail(MethodView):
    @require_role(*OPERATORS)
    @blp.response(200, ReviewItemSchema)
    @blp.alt_response(404, description="no such review item (or outside the caller's jurisdiction)")
    def get(self, review_id: int) -> dict[str, Any]:
        """One review item."""
        return _answer(lambda: dedup_ops.get_review(hub_ctx(), review_id, scope=_scope()))


@blp.route("/review-queue/<int(max=2147483647):review_id>/accept")
class ReviewAccept(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(ReviewNoteArgs)
    @blp.response(200, ReviewDecisionSchema)
    @blp.alt_response(404, description="no such review item (or outside the caller's jurisdiction)")
    @blp.alt_response(409, description="already reviewed, or superseded: the ticket moved meanwhile")
    def post(self, args: dict[str, Any], review_id: int) -> dict[str, Any]:
        """Same incident: move the ticket into the proposed case (its own case, left empty, is
        merged away). Undoable."""
        return _answer(lambda: dedup_ops.accept_review(hub_ctx(), review_id, _actor(), args["note"],
                                                       scope=_scope(), remote_addr=_addr()))


@blp.route("/review-queue/<int(max=2147483647):review_id>/reject")
class ReviewReject(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(ReviewNoteArgs)
    @blp.response(200, ReviewDecisionSchema)
    @blp.alt_response(404, description="no such review item (or outside the caller's jurisdiction)")
    @blp.alt_response(409, description="already reviewed, or superseded: the ticket moved meanwhile")
    def post(self, args: dict[str, Any], review_id: int) -> dict[str, Any]:
        """A different incident: the ticket stays in its own case; the decision stays on record."""
        return _answer(lambda: dedup_ops.reject_review(hub_ctx(), review_id, _actor(), args["note"],
                                                       scope=_scope(), remote_addr=_addr()))


@blp.route("/review-queue/<int(max=2147483647):review_id>/link")
class ReviewLink(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(ReviewLinkArgs)
    @blp.response(200, ReviewDecisionSchema)
    @blp.alt_response(404, description="no such review item or case (or outside the caller's jurisdiction)")
    @blp.alt_response(409, description="already reviewed, superseded, already in that case, or the case is "
                                       "cancelled or merged away")
    def post(self, args: dict[str, Any], review_id: int) -> dict[str, Any]:
        """Neither: the ticket belongs to ``case_id``; move it there. Undoable."""
        return _answer(lambda: dedup_ops.link_review_elsewhere(hub_ctx(), review_id, args["case_id"], _actor(),
                                                               args["note"], scope=_scope(), remote_addr=_addr()))
