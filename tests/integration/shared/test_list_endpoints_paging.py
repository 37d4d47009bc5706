"""The alerts, actions, audit and configuration lists over REST, on the real database: every item exactly
once while new items arrive and old ones are erased, whatever the filters and the caller's scopes; and the
alert counts read key ranges."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.alerts import repository as alerts_repository
from services.alerts.main import DEFINITION as ALERTS
from services.alerts.settings import AlertsSettings
from services.improvement import repository as improvement_repository
from services.improvement.main import DEFINITION as IMPROVEMENT
from services.improvement.settings import ImprovementSettings
from shared import audit
from shared.app import create_app
from shared.auth import Principal
from shared.ids import new_id
from shared.pagination import PAGE_KEYS
from shared.storage import Database, Document
from shared.tree import WHOLE_ORGANISATION, in_subtree, lineage
from tests.harness import RunningService, Stack, unique

pytestmark = pytest.mark.integration

BRANCHES = ["north/bj/b1", "north/bj/b2", "north/sh/b3", "south/gz/b4"]
LEVELS = ["blue", "yellow", "orange", "red"]
STATUSES = ["firing", "acknowledged", "resolved"]


@pytest.fixture(scope="module")
async def alerts(stack: Stack) -> AsyncIterator[RunningService]:
    settings = AlertsSettings(port=0, database=unique("alerts-paging"))
    service = await RunningService(create_app(ALERTS, stack.platform(), settings)).start()
    yield service
    await service.stop()


@pytest.fixture(scope="module")
async def improvement(stack: Stack) -> AsyncIterator[RunningService]:
    settings = ImprovementSettings(port=0, database=unique("improvement-paging"))
    service = await RunningService(create_app(IMPROVEMENT, stack.platform(), settings)).start()
    yield service
    await service.stop()


def db_of(service: RunningService) -> Database:
    database: Database = service.app.state.runtime.db
    return database


async def api_walk(
    http: httpx.AsyncClient, path: str, params: dict[str, Any], between_pages: Callable[[], Awaitable[None]]
) -> list[str]:
    """Every id the pages give, following next_cursor to the end, with ``between_pages`` run between pages."""
    seen: list[str] = []
    cursor = None
    for _ in range(500):
        response = await http.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        seen.extend(item["id"] for item in response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen
        await between_pages()
    raise AssertionError("the walk did not end")


def assert_each_once(seen: list[str], expected: set[str], erased: set[str], arrived: set[str]) -> None:
    """Nothing twice; everything present throughout; nothing outside the filters."""
    assert expected, "the filters leave something to list"
    assert len(seen) == len(set(seen)), "an item came twice"
    assert not (expected - erased) - set(seen), "an item present throughout was not listed"
    assert set(seen) <= expected | arrived, "an item outside the filters was listed"


def alert(org: str, rng: random.Random, started_at: datetime, status: str | None = None) -> Document:
    """An alert as the alerts service stores it, with its list keys."""
    path = rng.choice(BRANCHES)
    chosen = status or rng.choice(STATUSES)
    document: Document = {
        "_id": new_id("al"),
        "org": org,
        "rule_id": rng.choice(["ru-a", "ru-b"]),
        "fingerprint": new_id("fp"),
        "group_id": new_id("gr"),
        "unit_id": path.rpartition("/")[2],
        "unit_path": path,
        "lineage": lineage(path),
        "indicator": "composite",
        "value": 61.5,
        "level": rng.choice(LEVELS),
        "status": chosen,
        "open": chosen != "resolved",
        "started_at": started_at,
        "history": [],
        "details": {},
    }
    return {**document, PAGE_KEYS: alerts_repository.alert_page_keys(document)}


async def test_alert_list__every_alert_once_per_filter_while_alerts_arrive_and_are_erased(
    stack: Stack, alerts: RunningService
) -> None:
    org, rng, now = unique("org"), random.Random(5), datetime.now(UTC)
    stored = [alert(org, rng, now - timedelta(minutes=rng.randint(1, 60 * 24 * 60))) for _ in range(160)]
    db = db_of(alerts)
    await db[alerts_repository.ALERTS].insert_many(stored)
    cases: list[tuple[dict[str, Any], Callable[[Document], bool]]] = [
        ({}, lambda a: True),
        ({"status": "firing"}, lambda a: a["status"] == "firing"),
        (
            {"status": "resolved", "unit": "north", "level": "red"},
            lambda a: a["status"] == "resolved" and a["lineage"][0] == "north" and a["level"] == "red",
        ),
        (
            {"rule_id": "ru-a", "since": (now - timedelta(days=30)).isoformat()},
            lambda a: a["rule_id"] == "ru-a" and a["started_at"] >= now - timedelta(days=30),
        ),
    ]
    async with httpx.AsyncClient(base_url=alerts.url, headers=stack.headers(org, "admin")) as http:
        for params, wanted in cases:
            churn = AlertChurn(db, org, rng, {a["_id"]: a for a in stored})
            seen = await api_walk(http, "/api/v1/alerts", {**params, "limit": 7}, churn)
            assert_each_once(seen, {a["_id"] for a in stored if wanted(a)}, churn.erased, churn.arrived)
            stored = [a for a in stored if a["_id"] not in churn.erased] + churn.fresh


class AlertChurn:
    """Between pages: a new alert arrives and a stored one is erased."""

    def __init__(self, db: Database, org: str, rng: random.Random, stored: dict[str, Document]) -> None:
        self.db, self.org, self.rng, self.stored = db, org, rng, stored
        self.erased: set[str] = set()
        self.fresh: list[Document] = []

    @property
    def arrived(self) -> set[str]:
        return {a["_id"] for a in self.fresh}

    async def __call__(self) -> None:
        fresh = alert(self.org, self.rng, datetime.now(UTC))
        await self.db[alerts_repository.ALERTS].insert_one(fresh)
        self.fresh.append(fresh)
        victim = self.rng.choice(sorted(set(self.stored) - self.erased))
        await self.db[alerts_repository.ALERTS].delete_one({"_id": victim})
        self.erased.add(victim)


async def test_alert_list_and_counts__a_status_change_moves_the_alert_between_status_lists(
    stack: Stack, alerts: RunningService
) -> None:
    org, rng, now = unique("org"), random.Random(6), datetime.now(UTC)
    old_resolved = [alert(org, rng, now - timedelta(days=90), "resolved") for _ in range(5)]
    recent = [alert(org, rng, now - timedelta(days=1), status) for status in ("firing", "acknowledged", "resolved")]
    db = db_of(alerts)
    await db[alerts_repository.ALERTS].insert_many([*old_resolved, *recent])
    async with httpx.AsyncClient(base_url=alerts.url, headers=stack.headers(org, "admin")) as http:
        counts = (await http.get("/api/v1/alerts/counts")).json()
        assert counts["by_status"] == {"firing": 1, "acknowledged": 1, "resolved": 1}
        year = (now - timedelta(days=365)).isoformat()
        counts = (await http.get("/api/v1/alerts/counts", params={"resolved_since": year})).json()
        assert counts["by_status"]["resolved"] == 6

        firing = recent[0]
        resolved = await http.post(f"/api/v1/alerts/{firing['_id']}/resolve", json={"comment": "fixed"})
        assert resolved.status_code == 200, resolved.text
        listed = (await http.get("/api/v1/alerts", params={"status": "firing"})).json()["items"]
        assert listed == []
        listed = (await http.get("/api/v1/alerts", params={"status": "resolved", "since": year})).json()["items"]
        assert firing["_id"] in {a["id"] for a in listed}
        counts = (await http.get("/api/v1/alerts/counts")).json()
        assert counts["by_status"] == {"acknowledged": 1, "resolved": 2}


def action(org: str, rng: random.Random, created_at: datetime) -> Document:
    """An action as the improvement service stores it, with its list keys."""
    path = rng.choice(BRANCHES)
    document: Document = {
        "_id": new_id("ac"),
        "org": org,
        "unit_id": path.rpartition("/")[2],
        "unit_path": path,
        "lineage": lineage(path),
        "status": rng.choice(["assigned", "in_progress", "verified"]),
        "level": rng.choice(LEVELS),
        "assignee": rng.choice(["wang", "li"]),
        "created_at": created_at,
    }
    return {**document, PAGE_KEYS: improvement_repository.action_page_keys(document)}


async def test_action_list__every_action_once_per_filter_while_actions_arrive_and_are_erased(
    stack: Stack, improvement: RunningService
) -> None:
    org, rng, now = unique("org"), random.Random(7), datetime.now(UTC)
    stored = [action(org, rng, now - timedelta(minutes=rng.randint(1, 60 * 24 * 90))) for _ in range(120)]
    db = db_of(improvement)
    await db[improvement_repository.ACTIONS].insert_many(stored)
    erased: set[str] = set()
    arrived: set[str] = set()

    async def churn() -> None:
        fresh = action(org, rng, datetime.now(UTC))
        await db[improvement_repository.ACTIONS].insert_one(fresh)
        arrived.add(fresh["_id"])
        victim = rng.choice([a["_id"] for a in stored if a["_id"] not in erased])
        await db[improvement_repository.ACTIONS].delete_one({"_id": victim})
        erased.add(victim)

    async with httpx.AsyncClient(base_url=improvement.url, headers=stack.headers(org, "admin")) as http:
        params = {"status": "assigned", "assignee": "wang", "limit": 5}
        seen = await api_walk(http, "/api/v1/actions", params, churn)
    wanted = {a["_id"] for a in stored if a["status"] == "assigned" and a["assignee"] == "wang"}
    assert_each_once(seen, wanted, erased, arrived)


async def test_audit_list__every_entry_once_while_entries_arrive_and_are_erased(
    stack: Stack, improvement: RunningService
) -> None:
    org, rng = unique("org"), random.Random(8)
    runtime = improvement.app.state.runtime
    admins = [Principal(subject=name, org=org, scopes=("*",), roles=frozenset({"admin"})) for name in ("wang", "li")]

    async def record(count: int) -> None:
        work = runtime.unit_of_work()
        for _ in range(count):
            audit.record(work, rng.choice(admins), "update", rng.choice(["plan", "risk"]), new_id("ob"), {}, {})
        await runtime.commit(work)

    await record(90)
    entries = {e["_id"]: e for e in await runtime.db[audit.AUDIT].find({"org": org}).to_list(None)}
    stored = set(entries)
    erased: set[str] = set()

    async def churn() -> None:
        await record(1)
        victim = rng.choice(sorted(stored - erased))
        await runtime.db[audit.AUDIT].delete_one({"_id": victim})
        erased.add(victim)

    async with httpx.AsyncClient(base_url=improvement.url, headers=stack.headers(org, "admin")) as http:
        seen = await api_walk(http, "/api/v1/audit/improvement", {"actor": "wang", "limit": 6}, churn)
    wanted = {ident for ident, entry in entries.items() if entry["actor"] == "wang"}
    arrived_by_wang = {
        e["_id"] for e in await runtime.db[audit.AUDIT].find({"org": org, "actor": "wang"}).to_list(None)
    } - stored
    assert_each_once(seen, wanted, erased, arrived_by_wang)


# Configuration set on subtrees: each list shows what concerns the caller. Alerts' rules, silences and
# channels: set inside the caller's subtree or on a unit above it. Improvement's matrix entries, plans
# and risks: set inside it.
SCOPES = ["*", "north", "north/bj", "north/bj/b1", "north/sh/b3", "south", "south/gz/b4"]
CALLER = "north/bj"
WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/ql", "secret": "whsec_" + "A" * 43 + "="}
CONFIGURATION: dict[str, tuple[str, Callable[[str, int], dict[str, Any]], Callable[[str], bool]]] = {
    "rules": (
        "alerts",
        lambda scope, n: {"name": f"floor {n}", "scope": scope, "indicator": "csat", "threshold": 60},
        lambda scope: in_subtree(scope, CALLER) or in_subtree(CALLER, scope),
    ),
    "silences": (
        "alerts",
        lambda scope, n: {"matchers": {"scope": scope}, "weekly": [{"days": [n % 7]}]},
        lambda scope: in_subtree(scope, CALLER) or in_subtree(CALLER, scope),
    ),
    "channels": (
        "alerts",
        lambda scope, n: {"name": f"duty {n}", "scope": scope, "levels": ["red"], "config": WEBHOOK},
        lambda scope: in_subtree(scope, CALLER) or in_subtree(CALLER, scope),
    ),
    "responsibilities": (
        "improvement",
        lambda scope, n: {"scope": scope, "responsible": f"owner-{n}"},
        lambda scope: scope != WHOLE_ORGANISATION and in_subtree(scope, CALLER),
    ),
    "risks": (
        "improvement",
        lambda scope, n: {"title": f"risk {n}", "scope": scope, "likelihood": 3, "impact": 2, "owner": "li"},
        lambda scope: scope != WHOLE_ORGANISATION and in_subtree(scope, CALLER),
    ),
    "plans": (
        "improvement",
        lambda scope, n: {
            "title": f"plan {n}",
            "unit_id": scope.rpartition("/")[2],
            "target": {"indicator": "csat", "value": 80, "date": "2027-03-31"},
        },
        lambda scope: in_subtree(scope, CALLER),
    ),
}


@pytest.mark.parametrize("collection", list(CONFIGURATION))
async def test_configuration_list__what_concerns_the_caller_once_while_items_arrive_and_are_removed(
    stack: Stack, alerts: RunningService, improvement: RunningService, collection: str
) -> None:
    service_name, body_of, concerns_caller = CONFIGURATION[collection]
    service = alerts if service_name == "alerts" else improvement
    org, rng = unique("org"), random.Random(9)
    # Plans are set on units of the improvement service's copy of the tree; the others on any subtree.
    scopes = [s for s in SCOPES if s != WHOLE_ORGANISATION] if collection == "plans" else SCOPES
    for path in scopes:
        await db_of(improvement)[improvement_repository.UNITS].insert_one(
            {"_id": f"{org}/{path.rpartition('/')[2]}", "org": org, "id": path.rpartition("/")[2], "path": path}
            | {"parent_id": None, "active": True}
        )
    async with (
        httpx.AsyncClient(base_url=service.url, headers=stack.headers(org, "admin")) as admin,
        httpx.AsyncClient(base_url=service.url, headers=stack.headers(org, "analyst", scopes=[CALLER])) as caller,
    ):
        made = 0

        async def create() -> dict[str, Any]:
            nonlocal made
            made += 1
            response = await admin.post(f"/api/v1/{collection}", json=body_of(scopes[made % len(scopes)], made))
            assert response.status_code == 201, response.text
            created: dict[str, Any] = response.json()
            return created

        stored = {item["id"]: item for item in [await create() for _ in range(42)]}
        removed: set[str] = set()
        fresh: set[str] = set()

        async def churn() -> None:
            item = await create()
            if concerns_caller(scope_of(item)):
                fresh.add(item["id"])
            victim = rng.choice(sorted(set(stored) - removed))
            assert (await admin.delete(f"/api/v1/{collection}/{victim}")).status_code == 204
            removed.add(victim)

        seen = await api_walk(caller, f"/api/v1/{collection}", {"limit": 4}, churn)
    wanted = {ident for ident, item in stored.items() if concerns_caller(scope_of(item))}
    assert_each_once(seen, wanted, removed, fresh)


def scope_of(item: dict[str, Any]) -> str:
    """The subtree a listed rule, silence, channel, entry, risk or plan is set on."""
    if "matchers" in item:
        return str(item["matchers"].get("scope", WHOLE_ORGANISATION))
    return str(item.get("scope") or item["unit_path"])
