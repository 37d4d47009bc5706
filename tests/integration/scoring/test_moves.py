"""A branch moved from one city to another: its aggregates follow it and every level's figures add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scoring import repository
from services.scoring.aggregation import feedback_stats
from services.scoring.statistics import MetricStats, merge_all
from shared.events import Envelope, Ratings
from shared.storage import DEAD_LETTERS, Database
from shared.tree import lineage
from tests.harness import RunningService, Stack, deliver, handled, staged_events, unique
from tests.integration.scoring.conftest import (
    every_period,
    figures,
    in_one_batch,
    received,
    unit_created,
)

pytestmark = pytest.mark.integration

# Regions, cities, branches; b1 has a counter, d1, to show that descendants follow.
TREE = (
    "north",
    "north/beijing",
    "north/beijing/b1",
    "north/beijing/b1/d1",
    "north/beijing/b2",
    "south",
    "south/shanghai",
    "south/shanghai/s1",
)


def moved(org: str, previous_path: str, path: str) -> Envelope:
    """The unit.changed event the feedback service publishes for one unit of a moved subtree."""
    return unit_created(org, path, previous_path=previous_path)


def expected(org: str, placed: list[tuple[str, datetime, Ratings]]) -> dict[str, MetricStats]:
    """Every aggregate that feedback at these (final) unit paths makes: the sum over its lineage and periods."""
    parts: dict[str, list[MetricStats]] = {}
    for path, moment, ratings in placed:
        for key, stats in every_period(org, lineage(path), moment, feedback_stats(ratings, None)).items():
            parts.setdefault(key, []).append(stats)
    return {key: merge_all(stats) for key, stats in parts.items()}


async def _last_published(db: Database, org: str) -> dict[tuple[str, str], int]:
    """The sample size of the last score.updated this service staged per unit path and period start, for ``all``."""
    last: dict[tuple[str, str], int] = {}
    for staged in await staged_events(db, "score.updated"):
        event = staged["value"]
        if event["org"] == org and event["period"] == "all":
            last[event["unit_path"], event["period_start"]] = event["sample_size"]
    return last


async def test_moved_branch__aggregates_follow_it_and_every_level_adds_up(stack: Stack, scoring: RunningService):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    earlier = now - timedelta(days=40)
    feedback = {
        "b1": ("north/beijing/b1", now, Ratings(csat=5, nps=10)),
        "d1": ("north/beijing/b1/d1", now, Ratings(csat=2, nps=6)),
        "d1 earlier": ("north/beijing/b1/d1", earlier, Ratings(csat=1, nps=0)),
        "b2": ("north/beijing/b2", now, Ratings(csat=4, nps=9)),
        "s1": ("south/shanghai/s1", earlier, Ratings(csat=3, nps=8)),
    }
    units = [unit_created(org, path) for path in TREE]
    events = [received(org, path, moment, ratings) for path, moment, ratings in feedback.values()]
    await deliver(stack, *units, *events)
    await handled(db, *units, *events)
    assert await figures(db, org) == expected(org, list(feedback.values()))

    moves = [
        moved(org, "north/beijing/b1", "south/shanghai/b1"),
        moved(org, "north/beijing/b1/d1", "south/shanghai/b1/d1"),
    ]
    await deliver(stack, *moves)
    await handled(db, *moves)

    after = {
        "b1": ("south/shanghai/b1", now, Ratings(csat=5, nps=10)),
        "d1": ("south/shanghai/b1/d1", now, Ratings(csat=2, nps=6)),
        "d1 earlier": ("south/shanghai/b1/d1", earlier, Ratings(csat=1, nps=0)),
        "b2": feedback["b2"],
        "s1": feedback["s1"],
    }
    # The aggregates of a tree where b1 had always been in Shanghai, none under its old path, and the old
    # ancestors' periods that held only b1's feedback emptied (kept, as an erasure keeps them).
    assert await figures(db, org) == {
        **every_period(org, ["north", "north/beijing"], earlier, MetricStats.empty()),
        **expected(org, list(after.values())),
    }
    assert await db[DEAD_LETTERS].count_documents({"org": org}) == 0
    all_time = "1970-01-01T00:00:00Z"
    published = await _last_published(db, org)
    assert {path: published[path, all_time] for path in ("north", "north/beijing", "south", "south/shanghai")} == {
        "north": 1,
        "north/beijing": 1,
        "south": 4,
        "south/shanghai": 4,
    }
    assert (published["south/shanghai/b1", all_time], published["south/shanghai/b1/d1", all_time]) == (3, 2)
    async with httpx.AsyncClient(base_url=scoring.url, headers=stack.headers(org, "analyst")) as http:
        body = (await http.get("/api/v1/scores/b1")).json()
        ranking = (await http.get("/api/v1/scores/shanghai/children", params={"indicator": "csat"})).json()
    assert (body["unit_path"], body["sample_size"]) == ("south/shanghai/b1", 3)
    assert [(child["unit_id"], child["sample_size"]) for child in ranking["children"]] == [("b1", 3), ("s1", 1)]


async def test_moved_three_times_in_one_batch__ends_where_the_last_move_puts_it(stack: Stack, scoring: RunningService):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    units = [unit_created(org, path) for path in TREE]
    placed = received(org, "north/beijing/b2", now, Ratings(csat=4))
    await deliver(stack, *units, placed)
    await handled(db, *units, placed)

    there_and_back = [
        moved(org, "north/beijing/b2", "south/shanghai/b2"),
        moved(org, "south/shanghai/b2", "north/beijing/b2"),
        moved(org, "north/beijing/b2", "south/b2"),
    ]
    await in_one_batch(scoring, ("on_unit_changed", there_and_back))

    assert await figures(db, org) == {
        **expected(org, [("south/b2", now, Ratings(csat=4))]),
        # Emptied, not deleted: the ancestors that the branch passed through keep a zeroed aggregate.
        **every_period(org, ["north", "north/beijing", "south/shanghai"], now, MetricStats.empty()),
    }
    assert (await db[repository.UNITS].find_one({"org": org, "id": "b2"}) or {}).get("path") == "south/b2"


async def test_feedback_sent_before_a_move_but_handled_after__counts_where_the_unit_is_now(
    stack: Stack, scoring: RunningService
):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    units = [unit_created(org, path) for path in TREE]
    await deliver(stack, *units)
    await handled(db, *units)
    move = moved(org, "north/beijing/b2", "south/shanghai/b2")
    await deliver(stack, move)
    await handled(db, move)

    in_flight = received(org, "north/beijing/b2", now, Ratings(csat=4, nps=9))
    await deliver(stack, in_flight)
    await handled(db, in_flight)

    assert await figures(db, org) == expected(org, [("south/shanghai/b2", now, Ratings(csat=4, nps=9))])
