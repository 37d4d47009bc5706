"""The demo's feedback generator: the tree it builds, ratings that follow quality, incidents that bite."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from devstack.simulator import Incident, build_organisation, feedback_stream, one_feedback

MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_organisation__has_the_default_shape_with_unique_ids_and_parents_before_children() -> None:
    org = build_organisation()

    kinds = [u.kind for u in org.units]
    assert (kinds.count("region"), kinds.count("city"), kinds.count("branch")) == (3, 30, 1000)
    assert len({u.id for u in org.units}) == len(org.units)
    seen: set[str] = set()
    for unit in org.units:
        assert unit.parent_id is None or unit.parent_id in seen
        seen.add(unit.id)
    assert all(org.paths[b.id].count("/") == 2 for b in org.branches)


def test_ratings__follow_the_branch_quality_and_a_collapse_turns_them_bad() -> None:
    org = build_organisation(branches=30)
    branch = org.branches[0].id
    rng = random.Random(1)

    def satisfied_share(moment: datetime) -> float:
        bodies = [one_feedback(org, branch, moment, rng) for _ in range(400)]
        return sum(b["ratings"]["csat"] >= 4 for b in bodies) / len(bodies)

    before = satisfied_share(MONDAY_NOON)
    org.incidents.append(Incident("collapse", org.paths[branch], MONDAY_NOON + timedelta(hours=1), quality=0.1))
    after = satisfied_share(MONDAY_NOON + timedelta(hours=2))

    assert abs(before - org.quality[branch]) < 0.1
    assert after < 0.2


def test_stream__is_repeatable_busier_at_noon_than_at_night_and_quiet_on_sunday() -> None:
    org = build_organisation(branches=100)

    def count(start: datetime, hours: float) -> int:
        return sum(1 for _ in feedback_stream(org, start=start, hours=hours, per_hour=600, seed=5))

    assert list(feedback_stream(org, start=MONDAY_NOON, hours=1, per_hour=300)) == list(
        feedback_stream(org, start=MONDAY_NOON, hours=1, per_hour=300)
    )
    assert count(MONDAY_NOON, 1) > 5 * max(1, count(MONDAY_NOON.replace(hour=2), 1))
    assert count(MONDAY_NOON + timedelta(days=6), 1) < count(MONDAY_NOON, 1)


def test_a_complaint_burst__adds_serious_complaints_at_its_branch() -> None:
    org = build_organisation(branches=30)
    branch = org.branches[3]
    org.incidents.append(Incident("complaint_burst", org.paths[branch.id], MONDAY_NOON, per_hour=120))

    bodies = list(feedback_stream(org, start=MONDAY_NOON, hours=1, per_hour=10))

    serious = [b for b in bodies if b.get("complaint", {}).get("severity") == "serious" and b["unit_id"] == branch.id]
    assert len(serious) > 60
