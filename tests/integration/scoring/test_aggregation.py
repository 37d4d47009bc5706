"""Feedback through Kafka into a three-level tree: every level's figures, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.scoring.aggregation import period_start
from shared.events import Ratings
from shared.storage import Database
from tests.harness import RunningService, Stack, deliver, handled, unique
from tests.integration.scoring.conftest import erased, received, unit_created

pytestmark = pytest.mark.integration

TREE = ("north", "north/beijing", "north/beijing/b1", "north/beijing/b2")


async def _stats(db: Database, org: str, path: str, period: str, start: datetime) -> dict[str, Any]:
    document = await db.aggregates.find_one(
        {"org": org, "unit_path": path, "period": period, "period_start": period_start(period, start)}
    )
    assert document is not None, f"no {period} aggregate for {path}"
    stats: dict[str, Any] = document["stats"]
    return stats


def _csat_nps(stats: dict[str, Any]) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """n, CSAT sum, and the non-zero CSAT and NPS histograms."""
    return (
        stats["n"],
        stats["csat"]["sum"],
        {k: v for k, v in stats["csat"]["h"].items() if v},
        {k: v for k, v in stats["nps"]["h"].items() if v},
    )


async def test_feedback_through_kafka__every_level_adds_up_exactly(stack: Stack, scoring: RunningService):
    db: Database = scoring.app.state.runtime.db
    org = unique("org")
    now = datetime.now(UTC)
    late = now - timedelta(days=3)
    units = [unit_created(org, path) for path in TREE]
    b1_promoter = received(org, "north/beijing/b1", now, Ratings(csat=5, nps=10))
    b1_passive = received(org, "north/beijing/b1", now, Ratings(csat=3, nps=8))
    b1_late = received(org, "north/beijing/b1", late, Ratings(csat=1, nps=7))
    b2_detractor = received(org, "north/beijing/b2", now, Ratings(csat=4, nps=3))
    b2_erased = received(org, "north/beijing/b2", now, Ratings(csat=2, nps=9))

    await deliver(stack, *units, b1_promoter, b1_passive, b1_promoter, b2_detractor, b2_erased, b1_late)
    await handled(db, *units, b1_promoter, b1_passive, b2_detractor, b2_erased, b1_late)
    # The erasure goes on another topic: sent once the feedback it erases is counted.
    erasure = erased(b2_erased)
    await deliver(stack, erasure)
    await handled(db, erasure)

    b1_all = (3, 9, {"5": 1, "3": 1, "1": 1}, {"10": 1, "8": 1, "7": 1})
    b2_all = (1, 4, {"4": 1}, {"3": 1})
    above_all = (4, 13, {"5": 1, "4": 1, "3": 1, "1": 1}, {"10": 1, "8": 1, "7": 1, "3": 1})
    expected_all = {TREE[0]: above_all, TREE[1]: above_all, TREE[2]: b1_all, TREE[3]: b2_all}
    for path, figures in expected_all.items():
        assert _csat_nps(await _stats(db, org, path, "all", now)) == figures, path
    for period in ("day", "hour"):
        assert _csat_nps(await _stats(db, org, "north", period, now)) == (
            3,
            12,
            {"5": 1, "4": 1, "3": 1},
            {"10": 1, "8": 1, "3": 1},
        )
        assert _csat_nps(await _stats(db, org, "north/beijing/b1", period, late)) == (1, 1, {"1": 1}, {"7": 1})
        assert _csat_nps(await _stats(db, org, "north", period, late)) == (1, 1, {"1": 1}, {"7": 1})
    assert (await _stats(db, org, "north/beijing/b2", "all", now))["nps"]["sum"] == 3

    # Read through the API: CSAT share of 4–5 and NPS with the passives in n.
    expected_scores = {
        "north": (4, 100 * 2 / 4, 100 * (1 - 1) / 4),
        "beijing": (4, 100 * 2 / 4, 100 * (1 - 1) / 4),
        "b1": (3, 100 * 1 / 3, 100 * (1 - 0) / 3),
        "b2": (1, 100 * 1 / 1, 100 * (0 - 1) / 1),
    }
    async with httpx.AsyncClient(base_url=scoring.url, headers=stack.headers(org, "analyst")) as http:
        for unit_id, (n, csat_share, nps) in expected_scores.items():
            response = await http.get(f"/api/v1/scores/{unit_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["unit_path"].endswith(unit_id)
            assert (body["sample_size"], body["indicators"]["csat"]["value"], body["indicators"]["nps"]["value"]) == (
                n,
                csat_share,
                nps,
            ), unit_id
            assert body["indicators"]["csat"]["insufficient"] is (n < 2)
        day = (await http.get("/api/v1/scores/b1", params={"period": "day"})).json()
        assert day["period_start"].startswith(period_start("day", now).date().isoformat())
        assert (day["sample_size"], day["indicators"]["csat"]["value"], day["indicators"]["nps"]["value"]) == (
            2,
            100 * 1 / 2,
            100 * 1 / 2,
        )
