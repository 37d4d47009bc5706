"""Feedback rules in plain Python: unit paths, validation beyond the schema, pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Literal

Kind = Literal["rating", "comment", "complaint", "audit", "measure"]


class Rejected(ValueError):
    """Input that breaks a rule; names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def child_path(parent_path: str | None, unit_id: str) -> str:
    """The materialised path of a unit under its parent."""
    return f"{parent_path}/{unit_id}" if parent_path else unit_id


def check_occurred_at(occurred_at: datetime | None, *, now: datetime, max_skew: timedelta) -> datetime:
    """When the feedback happened, in UTC; a time beyond the allowed clock skew is rejected."""
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise Rejected("occurred_at", "must carry a time zone, e.g. 2026-11-25T09:30:00+08:00")
    occurred_at = occurred_at.astimezone(UTC)
    if occurred_at > now + max_skew:
        raise Rejected("occurred_at", f"is in the future (more than {int(max_skew.total_seconds())} s ahead)")
    return occurred_at


def check_comment(comment: str | None, *, max_chars: int) -> str | None:
    """The comment stripped of surrounding blanks; an oversized one is rejected."""
    if comment is None:
        return None
    comment = comment.strip()
    if len(comment) > max_chars:
        raise Rejected("comment", f"has {len(comment)} characters, more than the {max_chars} allowed")
    return comment or None


def check_kind(
    kind: Kind | None,
    *,
    has_scores: bool,
    has_measures: bool,
    has_comment: bool,
    has_complaint: bool,
    has_audit: bool,
) -> Kind:
    """The feedback's kind, inferred when not given; a kind without the part it needs is rejected."""
    if kind is None:
        if has_complaint:
            kind = "complaint"
        elif has_audit:
            kind = "audit"
        elif has_scores:
            kind = "rating"
        elif has_measures:
            kind = "measure"
        else:
            kind = "comment"
    needs: dict[Kind, tuple[bool, str, str]] = {
        "rating": (has_scores, "ratings", "a rating needs at least one of csat, nps, ces, servqual, dimensions"),
        "measure": (has_measures, "ratings.measures", "a measure needs at least one operational measure"),
        "comment": (has_comment, "comment", "a comment needs a non-empty comment"),
        "complaint": (has_complaint, "complaint", "a complaint needs its category and severity"),
        "audit": (has_audit, "audit", "an audit needs its visit date and checklist"),
    }
    present, field, reason = needs[kind]
    if not present:
        raise Rejected(field, reason)
    if has_complaint and kind != "complaint":
        raise Rejected("complaint", f"only a complaint carries one, not a {kind}")
    if has_audit and kind != "audit":
        raise Rejected("audit", f"only an audit carries one, not a {kind}")
    return kind


def pseudonym(key: bytes, org: str, customer_ref: str) -> str:
    """A keyed hash of a customer reference, per organisation: stable, but not reversible without the key."""
    return hmac.new(key, f"{org}\x1f{customer_ref}".encode(), hashlib.sha256).hexdigest()
