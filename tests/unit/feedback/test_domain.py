"""Feedback rules without servers: kinds, times, comments, strict ratings and audits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.feedback.domain import Rejected, check_comment, check_kind, check_move, check_occurred_at, moved_path
from services.feedback.models import FeedbackCreate

NOTHING = {"has_scores": False, "has_measures": False, "has_comment": False, "has_complaint": False, "has_audit": False}


@pytest.mark.parametrize(
    ("present", "kind"),
    [
        ({"has_complaint": True, "has_scores": True}, "complaint"),
        ({"has_audit": True}, "audit"),
        ({"has_scores": True, "has_measures": True}, "rating"),
        ({"has_measures": True}, "measure"),
        ({"has_comment": True}, "comment"),
    ],
)
def test_check_kind__infers_the_kind_from_what_is_present(present: dict[str, bool], kind: str) -> None:
    assert check_kind(None, **{**NOTHING, **present}) == kind


@pytest.mark.parametrize(
    ("kind", "present", "field"),
    [
        ("complaint", {"has_scores": True}, "complaint"),
        ("audit", {"has_comment": True}, "audit"),
        ("measure", {"has_scores": True}, "ratings.measures"),
        ("rating", {"has_comment": True}, "ratings"),
        ("comment", {}, "comment"),
        ("rating", {"has_scores": True, "has_complaint": True}, "complaint"),
        ("comment", {"has_comment": True, "has_audit": True}, "audit"),
    ],
)
def test_check_kind__rejects_a_kind_without_its_part_or_with_another_kinds(
    kind: Any, present: dict[str, bool], field: str
) -> None:
    with pytest.raises(Rejected) as raised:
        check_kind(kind, **{**NOTHING, **present})
    assert raised.value.field == field


def test_check_occurred_at__rejects_the_future_and_naive_times() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    skew = timedelta(minutes=5)
    assert check_occurred_at(now + timedelta(minutes=4), now=now, max_skew=skew) == now + timedelta(minutes=4)
    with pytest.raises(Rejected, match="future"):
        check_occurred_at(now + timedelta(minutes=6), now=now, max_skew=skew)
    with pytest.raises(Rejected, match="time zone"):
        check_occurred_at(datetime(2026, 1, 1), now=now, max_skew=skew)


def test_check_comment__strips_and_rejects_oversized() -> None:
    assert check_comment("  好  ", max_chars=3) == "好"
    assert check_comment("   ", max_chars=3) is None
    with pytest.raises(Rejected, match="4 characters"):
        check_comment("abcd", max_chars=3)


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"ratings": {"servqual": {"empathy": {"perception": 5, "expectation": 6, "extra": 1}}}}, "extra"),
        ({"ratings": {"servqual": {"kindness": {"perception": 5, "expectation": 6}}}}, "kindness"),
        ({"ratings": {"dimensions": {"speed": 6}}}, "speed"),
        ({"ratings": {"measures": {"Waiting Time": 3}}}, "Waiting Time"),
        ({"complaint": {"category": "queue", "severity": "huge"}}, "severity"),
        ({"audit": {"visit_date": "2026-01-01", "checklist": [{"item": "greeting", "score": 6, "max_score": 5}]}}, "0"),
        ({"audit": {"visit_date": "2026-01-01", "checklist": []}}, "checklist"),
    ],
)
def test_feedback_create__is_strict_about_nested_parts(body: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as raised:
        FeedbackCreate.model_validate({"unit_id": "b", "channel": "app", **body})
    assert any(location in (str(p) for p in error["loc"]) for error in raised.value.errors())


def test_check_move__gives_the_path_under_the_new_parent() -> None:
    assert check_move("north/b-001", "south") == "south/b-001"
    assert check_move("north/b-001", None) == "b-001"
    assert check_move("north", "south/s-001") == "south/s-001/north"
    assert check_move("north", "northeast") == "northeast/north", "a sibling sharing the prefix is no descendant"


@pytest.mark.parametrize("new_parent", ["north", "north/b-001", "north/b-001/c-1"])
def test_check_move__rejects_moving_under_itself_or_a_descendant(new_parent: str) -> None:
    with pytest.raises(Rejected) as raised:
        check_move("north", new_parent)
    assert raised.value.field == "parent_id"


def test_moved_path__replaces_the_subtrees_root_only() -> None:
    assert moved_path("north/b-001/c-1", old_root="north/b-001", new_root="south/b-001") == "south/b-001/c-1"
    assert moved_path("north/b-001", old_root="north/b-001", new_root="b-001") == "b-001"
    with pytest.raises(ValueError, match="not inside"):
        moved_path("north/b-0012", old_root="north/b-001", new_root="south/b-001")
