"""The scoring API: series, rolling windows, rankings, comparisons, CSV, the index system, and scopes."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scoring.aggregation import period_start
from shared.events import Ratings
from tests.harness import RunningService, Stack, deliver, handled, staged_events, unique
from tests.integration.scoring.conftest import received, unit_created

pytestmark = pytest.mark.integration

TREE = ("north", "north/beijing", "north/beijing/b1", "north/beijing/b2")


@dataclass(frozen=True)
class Tree:
    """An organisation with a fed tree, and when its feedback happened."""

    org: str
    now: datetime


@pytest.fixture(scope="module")
async def tree(stack: Stack, scoring: RunningService) -> Tree:
    """b1: two ratings now, one a day ago, one eight days ago; b2: one rating now."""
    org = unique("org")
    now = datetime.now(UTC)
    events = [
        *(unit_created(org, path) for path in TREE),
        received(org, TREE[2], now, Ratings(csat=5, nps=10)),
        received(org, TREE[2], now, Ratings(csat=4, nps=9)),
        received(org, TREE[2], now - timedelta(days=1), Ratings(csat=2, nps=2)),
        received(org, TREE[2], now - timedelta(days=8), Ratings(csat=1)),
        received(org, TREE[3], now, Ratings(csat=3, nps=8)),
    ]
    await deliver(stack, *events)
    await handled(scoring.app.state.runtime.db, *events)
    return Tree(org, now)


def _client(stack: Stack, scoring: RunningService, org: str, *roles: str, scopes: tuple[str, ...] = ("*",)):
    return httpx.AsyncClient(base_url=scoring.url, headers=stack.headers(org, *roles, scopes=scopes))


def _day(moment: datetime) -> str:
    return period_start("day", moment).isoformat()


async def test_series__one_point_per_day_with_feedback(stack: Stack, scoring: RunningService, tree: Tree):
    async with _client(stack, scoring, tree.org, "analyst") as http:
        response = await http.get(
            "/api/v1/scores/b1/series",
            params={
                "indicator": "csat",
                "period": "day",
                "start": _day(tree.now - timedelta(days=10)),
                "end": _day(tree.now),
            },
        )
    assert response.status_code == 200, response.text
    points = [(p["period_start"], p["value"], p["sample_size"]) for p in response.json()["points"]]
    assert [(datetime.fromisoformat(at), value, n) for at, value, n in points] == [
        (period_start("day", tree.now - timedelta(days=8)), 0.0, 1),
        (period_start("day", tree.now - timedelta(days=1)), 0.0, 1),
        (period_start("day", tree.now), 100.0, 2),
    ]


async def test_rolling_windows__sum_the_stored_periods(stack: Stack, scoring: RunningService, tree: Tree):
    async with _client(stack, scoring, tree.org, "analyst") as http:
        figures = {}
        for window in ("rolling_24h", "rolling_7d", "rolling_30d"):
            body = (await http.get("/api/v1/scores/b1", params={"period": window})).json()
            figures[window] = (body["sample_size"], body["indicators"]["csat"]["value"])
    assert figures == {
        "rolling_24h": (2, 100 * 2 / 2),
        "rolling_7d": (3, 100 * 2 / 3),
        "rolling_30d": (4, 100 * 2 / 4),
    }


async def test_children__ranked_best_first(stack: Stack, scoring: RunningService, tree: Tree):
    async with _client(stack, scoring, tree.org, "analyst") as http:
        response = await http.get("/api/v1/scores/beijing/children", params={"indicator": "csat"})
    assert response.status_code == 200, response.text
    ranking = [(c["rank"], c["unit_id"], c["value"], c["sample_size"]) for c in response.json()["children"]]
    assert ranking == [(1, "b1", 100 * 2 / 4, 4), (2, "b2", 0.0, 1)]


async def test_compare__two_days_and_how_far_each_indicator_moved(stack: Stack, scoring: RunningService, tree: Tree):
    async with _client(stack, scoring, tree.org, "analyst") as http:
        response = await http.get(
            "/api/v1/scores/b1/compare",
            params={"period": "day", "a": _day(tree.now - timedelta(days=1)), "b": _day(tree.now)},
        )
    assert response.status_code == 200, response.text
    changes = {
        c["indicator"]: (c["a"]["value"], c["b"]["value"], c["difference"])
        for c in response.json()["indicators"]
        if c["a"]
    }
    assert changes["csat"] == (0.0, 100.0, 100.0)
    assert changes["nps"] == (-100.0, 100.0, 200.0)


async def test_csv__by_query_or_accept_header(stack: Stack, scoring: RunningService, tree: Tree):
    async with _client(stack, scoring, tree.org, "analyst") as http:
        by_query = await http.get("/api/v1/scores/beijing/children", params={"indicator": "csat", "format": "csv"})
        by_header = await http.get(
            "/api/v1/scores/b1/series", params={"indicator": "nps"}, headers={"Accept": "text/csv"}
        )
    assert by_query.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(by_query.text)))
    assert [(r["rank"], r["unit_id"], r["sample_size"]) for r in rows] == [("1", "b1", "4"), ("2", "b2", "1")]
    series = list(csv.DictReader(io.StringIO(by_header.text)))
    # Eight days ago had feedback but no NPS rating: an empty value, not a zero.
    assert [r["value"] for r in series] == ["", "-100.0", "100.0"]


async def test_unknown_indicator__answers_422(stack: Stack, scoring: RunningService, tree: Tree):
    async with _client(stack, scoring, tree.org, "analyst") as http:
        response = await http.get("/api/v1/scores/b1/series", params={"indicator": "happiness"})
    assert response.status_code == 422
    assert "happiness" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/scores/b1",
        "/api/v1/scores/b1/series",
        "/api/v1/scores/b1/children",
        "/api/v1/scores/b1/compare?a=2026-11-01&b=2026-11-02",
        "/api/v1/scores/beijing/children",
    ],
)
async def test_scopes__another_org_or_a_sibling_subtree_gets_404(
    stack: Stack, scoring: RunningService, tree: Tree, path: str
):
    async with _client(stack, scoring, unique("org"), "admin") as other_org:
        assert (await other_org.get(path)).status_code == 404
    async with _client(stack, scoring, tree.org, "analyst", scopes=("north/beijing/b2",)) as sibling:
        response = await sibling.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert (await sibling.get("/api/v1/scores/b2")).status_code == 200


CSAT_AND_NPS = {
    "name": "CSAT and NPS",
    "indicators": [
        {"id": "csat", "name": "CSAT", "metric": "csat.share"},
        {"id": "nps", "name": "NPS", "metric": "nps"},
    ],
    "ahp": [[1, 3], [1 / 3, 1]],
}


async def test_index_system__a_change_needs_the_role(stack: Stack, scoring: RunningService):
    async with _client(stack, scoring, unique("org"), "analyst") as http:
        response = await http.put("/api/v1/index-systems/current", json=CSAT_AND_NPS)
    assert response.status_code == 403


async def test_index_system__inconsistent_ahp_is_refused_with_the_reason(stack: Stack, scoring: RunningService):
    inconsistent = {
        "name": "Inconsistent",
        "indicators": [
            {"id": "csat", "name": "CSAT", "metric": "csat.share"},
            {"id": "nps", "name": "NPS", "metric": "nps"},
            {"id": "ces", "name": "CES", "metric": "ces"},
        ],
        # csat ≫ nps ≫ ces, yet ces ≫ csat: CR far above 0.1.
        "ahp": [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]],
    }
    async with _client(stack, scoring, unique("org"), "quality_manager") as http:
        response = await http.put("/api/v1/index-systems/current", json=inconsistent)
        current = (await http.get("/api/v1/index-systems/current")).json()
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "consistency ratio" in response.json()["detail"]
    assert current["index_system"]["version"] == 1


async def test_index_system__a_change_is_a_new_version_that_scores_use(stack: Stack, scoring: RunningService):
    org = unique("org")
    async with _client(stack, scoring, org, "quality_manager") as http:
        before = (await http.get("/api/v1/index-systems/current")).json()
        changed = await http.put("/api/v1/index-systems/current", json={**CSAT_AND_NPS, "version": 1})
        stale = await http.put("/api/v1/index-systems/current", json={**CSAT_AND_NPS, "version": 1})
        after = (await http.get("/api/v1/index-systems/current")).json()

        feedback = received(org, "r/b", datetime.now(UTC), Ratings(csat=5, nps=0))
        units = [unit_created(org, "r"), unit_created(org, "r/b")]
        await deliver(stack, *units, feedback)
        await handled(scoring.app.state.runtime.db, *units, feedback)
        score = (await http.get("/api/v1/scores/b")).json()

    assert before["index_system"]["version"] == 1
    assert changed.status_code == 200, changed.text
    assert stale.status_code == 409
    [consistency] = after["consistency"]
    assert consistency["consistency_ratio"] == 0.0
    assert consistency["weights"] == pytest.approx({"csat": 0.75, "nps": 0.25})
    assert after["index_system"]["version"] == 2
    assert [i["weight"] for i in after["index_system"]["indicators"]] == pytest.approx([0.75, 0.25])
    # CSAT share 100 → 100; NPS −100 → 0.
    assert score["index_version"] == 2
    assert score["composite"] == pytest.approx(75.0)
    assert set(score["indicators"]) == {"composite", "csat", "nps"}
    # This service's own outbox: other scoring services of the session consume the same topic.
    published = await staged_events(scoring.app.state.runtime.db, "score.updated")
    versions = {event["value"]["index_version"] for event in published if event["value"]["org"] == org}
    assert versions == {2}


async def test_index_system__an_organisations_minimum_sample_flags_its_figures(stack: Stack, scoring: RunningService):
    org = unique("org")
    async with _client(stack, scoring, org, "quality_manager") as http:
        default = (await http.get("/api/v1/index-systems/current")).json()
        refused = await http.put("/api/v1/index-systems/current", json={**CSAT_AND_NPS, "min_samples": 0})
        raised = await http.put("/api/v1/index-systems/current", json={**CSAT_AND_NPS, "min_samples": 3})
        kept = await http.put("/api/v1/index-systems/current", json=CSAT_AND_NPS)

        units = [unit_created(org, "r"), unit_created(org, "r/b")]
        feedback = [received(org, "r/b", datetime.now(UTC), Ratings(csat=5, nps=9)) for _ in range(2)]
        await deliver(stack, *units, *feedback)
        await handled(scoring.app.state.runtime.db, *units, *feedback)
        score = (await http.get("/api/v1/scores/b")).json()

    # The service's default (2 in these tests) until the organisation sets its own.
    assert default["min_samples"] == 2
    assert refused.status_code == 422
    assert (raised.status_code, raised.json()["min_samples"]) == (200, 3)
    assert (kept.json()["index_system"]["version"], kept.json()["min_samples"]) == (3, 3)
    # Two feedback: enough by the service's default, too few by the organisation's minimum of 3.
    assert score["sample_size"] == 2
    assert (score["indicators"]["csat"]["insufficient"], score["indicators"]["composite"]["insufficient"]) == (
        True,
        True,
    )
    published = await staged_events(scoring.app.state.runtime.db, "score.updated")
    minimums = {event["value"]["min_samples"] for event in published if event["value"]["org"] == org}
    assert minimums == {3}


async def test_index_system__each_change_is_audited_with_the_version_before_and_after(
    stack: Stack, scoring: RunningService
):
    org = unique("org")
    async with _client(stack, scoring, org, "quality_manager") as http:
        assert (await http.put("/api/v1/index-systems/current", json=CSAT_AND_NPS)).status_code == 200
        second = {**CSAT_AND_NPS, "min_samples": 7}
        assert (await http.put("/api/v1/index-systems/current", json=second)).status_code == 200
        refused = await http.put("/api/v1/index-systems/current", json={**CSAT_AND_NPS, "version": 1})
        assert refused.status_code == 409
    async with _client(stack, scoring, org, "admin") as http:
        entries = (await http.get("/api/v1/audit/scoring", params={"kind": "index_system"})).json()["items"]
    latest, first = entries  # newest first; the refused change left none
    assert (first["before"], first["after"]["index_system"]["version"]) == (None, 2)
    assert (latest["before"]["index_system"]["version"], latest["after"]["index_system"]["version"]) == (2, 3)
    assert (latest["before"]["min_samples"], latest["after"]["min_samples"]) != (7, 7)
    assert latest["after"]["min_samples"] == 7 and latest["object_id"] == org and latest["action"] == "update"
