"""Rules on one feedback: a serious complaint, a lowest rating with a comment, a poor mystery-shopper audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from services.alerts.rules.base import UNCHANGED, Feedback, RuleParams, State, Verdict

KIND = "event"
SOURCE = "feedback"
SEVERITIES = ("minor", "moderate", "serious", "critical")


class Params(RuleParams):
    """Which single feedback fires at once, and how long its alert stays open without another."""

    kind: Literal["event"]
    indicator: str = Field(default="feedback", min_length=1, max_length=100)
    match: Literal["complaint", "low_rating", "audit"] = "complaint"
    severity_at_least: Literal["minor", "moderate", "serious", "critical"] = "serious"
    rating_at_most: int = Field(default=1, ge=1, le=5, description="CSAT rating (1–5) at or below which it fires")
    with_comment: bool = Field(default=True, description="Low ratings fire only when they carry a comment")
    audit_below: float = Field(default=60.0, gt=0, le=100, description="Audit score in percent below which it fires")
    resolve_after_seconds: int = Field(default=86400, ge=60, le=90 * 86400, description="Quiet time that resolves it")


def matches(params: Params, feedback: Feedback) -> tuple[float, float] | None:
    """The feedback's figure and the bound it crossed, when it matches the rule."""
    if params.match == "complaint" and feedback.complaint_severity in SEVERITIES:
        rank = SEVERITIES.index(feedback.complaint_severity)
        threshold = SEVERITIES.index(params.severity_at_least)
        return (float(rank), float(threshold)) if rank >= threshold else None
    if params.match == "low_rating" and feedback.csat is not None:
        hit = feedback.csat <= params.rating_at_most and (feedback.has_comment or not params.with_comment)
        return (float(feedback.csat), float(params.rating_at_most)) if hit else None
    if params.match == "audit" and feedback.audit_percent is not None:
        return (feedback.audit_percent, params.audit_below) if feedback.audit_percent < params.audit_below else None
    return None


def evaluate(params: Params, state: State, feedback: Feedback, *, firing: bool) -> tuple[Verdict, State]:
    """Fire on a matching feedback; a later match keeps the alert open longer instead of raising another."""
    hit = matches(params, feedback)
    if hit is None:
        return UNCHANGED, state
    value, bound = hit
    due = feedback.at + timedelta(seconds=params.resolve_after_seconds)
    state = {**state, "matched": state.get("matched", 0) + 1, "last_at": feedback.at.isoformat()}
    return (
        Verdict(
            holds=None if firing else True,
            value=value,
            threshold=bound,
            clear_bound=None,
            comparison="above" if params.match == "complaint" else "below",
            sample_size=1,
            reason=f"{params.match} matched",
            recheck_at=due,
        ),
        state,
    )


def recheck(params: Params, state: State, at: datetime, *, firing: bool) -> tuple[Verdict, State]:
    """Resolve once ``resolve_after_seconds`` passed since the last matching feedback."""
    last = datetime.fromisoformat(state["last_at"]) if state.get("last_at") else None
    if not firing or last is None:
        return UNCHANGED, state
    due = last + timedelta(seconds=params.resolve_after_seconds)
    if at < due:
        return Verdict(holds=None, recheck_at=due), state
    return Verdict(holds=False, sample_size=0, reason="quiet since the last match"), state
