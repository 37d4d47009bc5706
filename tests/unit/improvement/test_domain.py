"""Routing a breach to the person responsible, and when the action is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.improvement.domain import Responsibility, due_at, route

MATRIX = [
    Responsibility(id="org", scope="*", responsible="quality.head"),
    Responsibility(id="north", scope="north", responsible="north.manager"),
    Responsibility(id="b1", scope="north/b-1", responsible="b1.manager"),
    Responsibility(id="b1-nps", scope="north/b-1", responsible="b1.cx", indicator="nps"),
]


def _owner(unit_path: str, indicator: str) -> str | None:
    entry = route(MATRIX, unit_path, indicator)
    return entry.responsible if entry else None


def test_route__picks_the_deepest_scope_covering_the_unit():
    assert _owner("north/b-1", "csat") == "b1.manager"
    assert _owner("north/b-2", "csat") == "north.manager"
    assert _owner("south/b-9", "csat") == "quality.head"


def test_route__prefers_an_indicator_specific_entry_at_the_same_depth():
    assert _owner("north/b-1", "nps") == "b1.cx"


def test_route__does_not_mistake_a_name_prefix_for_a_subtree():
    assert route(MATRIX[1:], "northeast/b-1", "csat") is None


def test_due_at__the_worse_the_level_the_sooner():
    raised = datetime(2026, 11, 25, tzinfo=UTC)
    assert due_at("red", raised) == raised + timedelta(days=1)
    assert due_at("orange", raised) < due_at("yellow", raised) < due_at("blue", raised)
