"""The quality console in headless Chromium against the whole platform: incident → red branch → breach on the
trend → alert acknowledged → action done → verified; a branch manager sees only their branch."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from services.scoring.index_system import ahp_weights
from shared.auth import issue_token
from tests.e2e.conftest import Platform
from tests.e2e.console_support import DESKTOP, PHONE, chromium, open_page, post, screenshot_folder, script_errors
from tests.harness import Stack, eventually, unique

pytestmark = pytest.mark.e2e
POOR = "#c0392b"
TOO_FEW = "#b8b8b8"


async def test_console__incident_to_verified_action_and_a_branch_managers_view(stack: Stack, platform: Platform):
    org = unique("console")
    admin = {"Authorization": f"Bearer {stack.token(org, 'admin')}"}
    manager_token = issue_token(
        stack.private_key.read_bytes(), org=org, roles=["quality_manager", "admin"], subject="li.wei"
    )
    branch_token = issue_token(
        stack.private_key.read_bytes(), org=org, roles=["unit_manager"], scopes=["north/b-002"], subject="wang.fang"
    )
    shots = screenshot_folder()
    async with httpx.AsyncClient(base_url=platform.gateway, headers=admin, timeout=10) as http:
        await _organisation(http)
        alert = await eventually(lambda: _open_alert(http, "b-001"))
        action = await eventually(lambda: _action_for(http, alert["id"]))

        async with chromium() as browser:
            page = await open_page(browser, DESKTOP, poll_seconds=1)
            await page.goto(f"{platform.gateway}/console/")
            await expect(page.locator("main h1")).to_have_text("Sign in")
            await page.screenshot(path=shots / "signin-desktop.png", full_page=True)
            await page.goto(f"{platform.gateway}/console/#token={manager_token}")
            await expect(page.locator("#treemap svg")).to_be_visible()
            assert "token=" not in page.url, "the token is stripped from the address bar"
            assert await page.evaluate("sessionStorage.getItem('ql.token')") == manager_token

            # The heat map: drill into the region (by keyboard); the branch with the incident is red (poor),
            # with its label; a branch with fewer feedback than the minimum sample is hatched grey.
            await page.get_by_role("button", name="华北区: drill down").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#rank-b-001")).to_have_attribute("data-band", "poor")
            await expect(page.locator("#rank-b-002")).to_have_attribute("data-band", "good")
            await expect(page.locator("#rank-b-001")).to_contain_text("Poor")
            await expect(page.locator("#rank-b-001")).to_contain_text("Red")
            treemap = page.locator("#treemap svg")
            await expect(treemap).to_contain_text("北京一分行")
            await expect(page.locator("#rank-b-003")).to_have_attribute("data-band", "insufficient")
            await expect(page.locator("#rank-b-003")).to_contain_text("Too few samples")
            await page.screenshot(path=shots / "map-desktop.png", full_page=True)
            assert await _treemap_style(page, "b-001") == {"color": POOR, "hatched": False}
            assert await _treemap_style(page, "b-003") == {"color": TOO_FEW, "hatched": True}
            # Hovering a unit shows its sample size and interval.
            await page.locator("#treemap svg text", has_text="北京一分行").first.hover()
            tooltip = page.locator("#treemap div", has_text="95% interval")
            await expect(tooltip.last).to_contain_text("3 feedback")
            await expect(tooltip.last).to_contain_text("Composite: 5.9 (score 6)95% interval 0 – 61.6")
            # Coloured by another indicator: CSAT alone.
            await page.locator("#indicator").select_option("csat")
            await expect(page).to_have_url(re.compile("indicator=csat"))
            await expect(page.locator("#rank-b-001")).to_have_attribute("data-band", "poor")

            # Its unit page: the breach on the CSAT trend, with the rule's threshold and the alert marked.
            await page.locator("#rank-b-001 a").first.click()
            trend = page.locator("#trend-csat svg")
            await expect(trend).to_contain_text("CSAT floor: below 60")
            await expect(trend).to_contain_text("Red alert")
            await expect(trend).to_contain_text("CSAT control: CL 80")
            await expect(trend).to_contain_text("LCL 65")
            await expect(page.locator("#figures [data-indicator='csat']")).to_have_attribute("data-band", "poor")
            await expect(page.locator("#unit-alerts")).to_contain_text("CSAT floor")
            await page.screenshot(path=shots / "unit-desktop.png", full_page=True)

            # The alerts board: acknowledge with a comment.
            await page.goto(f"{platform.gateway}/console/#/alerts")
            card = page.locator(f"#alert-{alert['id']}")
            await expect(card).to_have_attribute("data-status", "firing")
            await page.screenshot(path=shots / "alerts-desktop.png", full_page=True)
            await card.get_by_role("button", name=re.compile("^Acknowledge")).click()
            await page.locator("dialog textarea[name='comment']").fill("查看中：午间排队")
            await page.locator("dialog button[type='submit']").click()
            await expect(page.locator(f"#column-acknowledged #alert-{alert['id']}")).to_be_visible()
            acknowledged = (await http.get(f"/api/v1/alerts/{alert['id']}")).json()
            assert acknowledged["status"] == "acknowledged"
            assert acknowledged["comment"] == "查看中：午间排队"
            await page.locator(f"#alert-{alert['id']}").get_by_role("button", name="Silence").click()
            await page.locator("dialog input[name='hours']").fill("2")
            await page.locator("dialog textarea[name='comment']").fill("区域经理已知悉")
            await page.locator("dialog button[type='submit']").click()
            silences = await eventually(lambda: _silences(http))
            assert silences[0]["matchers"] == {
                **silences[0]["matchers"],
                "scope": "north/b-001",
                "rule_ids": [alert["rule_id"]],
            }
            assert silences[0]["comment"] == "区域经理已知悉"
            await page.screenshot(path=shots / "alerts-acknowledged-desktop.png", full_page=True)

            # The actions board: in progress, a root cause, done.
            await page.goto(f"{platform.gateway}/console/#/actions?open={action['id']}")
            detail = page.locator("#action-detail")
            await detail.locator("button[data-to='in_progress']").click()
            await expect(page.locator("#action-state")).to_have_text("In progress")
            await detail.get_by_role("button", name="Root cause").click()
            await page.locator("dialog select[name='category']").select_option("people")
            await page.locator("dialog textarea[name='description']").fill("午间只有一名柜员")
            await page.locator("dialog button[type='submit']").click()
            await expect(page.locator("#root-cause")).to_contain_text("午间只有一名柜员")
            await detail.locator("button[data-to='done']").click()
            await expect(page.locator("#action-state")).to_have_text("Done")
            assert (await http.get(f"/api/v1/actions/{action['id']}")).json()["status"] == "done"
            await page.screenshot(path=shots / "actions-done-desktop.png", full_page=True)

            # Customers are happy again: the scores recover and the service verifies the action.
            for _ in range(12):
                await post(http, "/api/v1/feedback", {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": 5}})
            await eventually(lambda: _status_is(http, action["id"], "verified"))
            # No reload: the page polls (every second here) and redraws what changed.
            await expect(page.locator("#action-state")).to_have_text("Verified")
            await expect(page.locator("#verification")).to_contain_text("verified")
            await page.screenshot(path=shots / "actions-verified-desktop.png", full_page=True)

            await _admin_pages(page, platform.gateway, shots)

            # Two more branches of the region slip: the board shows their alerts as the service groups them.
            for unit, ratings in (("b-002", (1, 2, 1, 1, 2, 1)), ("b-003", (1, 1, 2))):
                for rating in ratings:
                    await post(
                        http, "/api/v1/feedback", {"unit_id": unit, "channel": "app", "ratings": {"csat": rating}}
                    )
            group = await eventually(lambda: _grouped_firing(http, {"b-002", "b-003"}))
            await page.goto(f"{platform.gateway}/console/#/alerts")
            box = page.locator(f"#column-firing section.group[data-group='{group}']")
            await expect(box.locator("article")).to_have_count(3)
            await expect(box).to_contain_text("north/b-002")
            await expect(box).to_contain_text("north/b-003")
            await page.screenshot(path=shots / "alerts-grouped-desktop.png", full_page=True)
            await page.locator("#level").select_option("blue")
            await expect(page.locator("#column-firing article")).to_have_count(0)
            await page.locator("#level").select_option("red")
            await expect(page.locator("#column-firing article")).to_have_count(3)
            assert script_errors(page) == []
            await _phone_and_chinese(browser, platform.gateway, manager_token, alert["unit_id"], shots)

            # A branch manager's sign-in: their branch only.
            branch = await open_page(browser, DESKTOP)
            await branch.goto(f"{platform.gateway}/console/#token={branch_token}")
            await expect(branch.locator("#treemap svg")).to_contain_text("北京二分行")
            body = await branch.locator("main").inner_text()
            assert "北京一分行" not in body and "上海一分行" not in body and "华东区" not in body
            await branch.screenshot(path=shots / "branch-manager-map-desktop.png", full_page=True)
            await branch.goto(f"{platform.gateway}/console/#/alerts")
            await expect(branch.locator("#column-firing")).to_be_visible()
            assert "b-001" not in await branch.locator("main").inner_text()
            # Another branch's page by its address: the API answers 404, and the page shows nothing of it.
            await branch.goto(f"{platform.gateway}/console/#/unit/b-001")
            await expect(branch.locator("main .error")).to_contain_text("outside what your sign-in may see")
            assert "北京一分行" not in await branch.locator("main").inner_text()
    print(f"screenshots in {shots}")


async def _organisation(http: httpx.AsyncClient) -> None:
    """Two regions, three branches, a red CSAT rule, who is responsible; happy branches and one incident."""
    await post(http, "/api/v1/units", {"id": "north", "name": "华北区", "kind": "region"})
    await post(http, "/api/v1/units", {"id": "b-001", "name": "北京一分行", "kind": "branch", "parent_id": "north"})
    await post(http, "/api/v1/units", {"id": "b-002", "name": "北京二分行", "kind": "branch", "parent_id": "north"})
    await post(http, "/api/v1/units", {"id": "b-003", "name": "北京三分行", "kind": "branch", "parent_id": "north"})
    await post(http, "/api/v1/units", {"id": "east", "name": "华东区", "kind": "region"})
    await post(http, "/api/v1/units", {"id": "b-101", "name": "上海一分行", "kind": "branch", "parent_id": "east"})
    rule = {"name": "CSAT floor", "indicator": "csat", "threshold": 60, "min_samples": 3, "level": "red"}
    await post(http, "/api/v1/rules", rule)
    # A control chart on completed days (none yet): its limits are drawn, it cannot fire today.
    control = {"kind": "spc", "name": "CSAT control", "indicator": "csat", "period": "day", "centre": 80, "sigma": 5}
    await post(http, "/api/v1/rules", control)
    await post(http, "/api/v1/responsibilities", {"scope": "north/b-001", "responsible": "li.wei"})
    receiver = f"{str(http.base_url).rstrip('/')}/healthz"
    webhook = {"type": "webhook", "url": receiver, "secret": "whsec_" + "A" * 44}
    await post(http, "/api/v1/channels", {"name": "值班群", "config": webhook})
    for unit in ("b-002", "b-101"):
        for rating in (5, 5, 4, 5):
            await post(http, "/api/v1/feedback", {"unit_id": unit, "channel": "app", "ratings": {"csat": rating}})
    await post(http, "/api/v1/feedback", {"unit_id": "b-003", "channel": "app", "ratings": {"csat": 4}})
    for rating, comment in ((1, "排队太久了，柜员态度冷淡"), (2, "等了一个小时"), (1, "排队太久")):
        body = {"unit_id": "b-001", "channel": "kiosk", "ratings": {"csat": rating}, "comment": comment}
        await post(http, "/api/v1/feedback", body)


async def _open_alert(http: httpx.AsyncClient, unit_id: str) -> dict[str, Any] | None:
    alerts = (await http.get("/api/v1/alerts", params={"status": "firing"})).json()["items"]
    return next((a for a in alerts if a["unit_id"] == unit_id), None)


async def _action_for(http: httpx.AsyncClient, alert_id: str) -> dict[str, Any] | None:
    actions = (await http.get("/api/v1/actions", params={"alert_id": alert_id})).json()["items"]
    return actions[0] if actions else None


async def _status_is(http: httpx.AsyncClient, action_id: str, status: str) -> bool:
    return (await http.get(f"/api/v1/actions/{action_id}")).json()["status"] == status


async def _grouped_firing(http: httpx.AsyncClient, units: set[str]) -> str | None:
    """The group of the firing alerts of these units and their region, once all three fire in one group."""
    firing = (await http.get("/api/v1/alerts", params={"status": "firing"})).json()["items"]
    groups = {a["group_id"] for a in firing if a["unit_id"] in {*units, "north"}}
    members = [a for a in firing if a["group_id"] in groups]
    if len(groups) == 1 and {a["unit_id"] for a in members} == {*units, "north"}:
        return groups.pop()
    return None


async def _silences(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await http.get("/api/v1/silences")).json()["items"])


async def _treemap_style(page: Page, unit_id: str) -> dict[str, Any]:
    """The colour the treemap drew a unit's rectangle with, and whether it is hatched."""
    style: dict[str, Any] = await page.evaluate(
        """(id) => {
            const find = (nodes) => nodes.flatMap((n) => [n, ...find(n.children || [])]);
            const option = window.qualityConsole.optionOf('treemap');
            const node = find(option.series[0].data).find((n) => n.id === id);
            return { color: node.itemStyle.color.toLowerCase(), hatched: Boolean(node.itemStyle.decal) };
        }""",
        unit_id,
    )
    return style


async def _admin_pages(page: Page, gateway: str, shots: Path) -> None:
    """The AHP editor's consistency ratio matches the scoring service's; every admin tab renders."""
    await page.goto(f"{gateway}/console/#/admin?tab=index")
    await page.locator("#ahp-0-1").fill("9")
    await page.locator("#ahp-1-2").fill("1/7")
    shown = float(await page.locator("#ahp-cr [data-cr]").get_attribute("data-cr") or "nan")
    n = await page.locator("#ahp-matrix tbody tr").count()
    upper = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            upper[i][j] = _judgement(await page.locator(f"#ahp-{i}-{j}").input_value())
    matrix = [[1.0 if i == j else upper[i][j] if i < j else 1 / upper[j][i] for j in range(n)] for i in range(n)]
    expected = ahp_weights(matrix, max_consistency_ratio=math.inf).consistency_ratio
    assert shown == pytest.approx(expected, abs=1e-4)
    if expected >= 0.1:
        await expect(page.locator("#ahp-save")).to_be_disabled()
    await page.screenshot(path=shots / "admin-index-desktop.png", full_page=True)

    await page.goto(f"{gateway}/console/#/admin?tab=rules")
    # Rules are listed newest first: the floor is picked by name.
    await page.locator("#try-rule select[name='rule_id']").select_option(label="CSAT floor")
    await page.locator("#try-rule select[name='unit_id']").select_option("b-001")
    await page.locator("#try-rule button[type='submit']").click()
    await expect(page.locator("#try-result")).to_contain_text("firing at the end")
    await expect(page.locator("#try-chart svg")).to_contain_text("CSAT floor: below 60")
    await page.screenshot(path=shots / "admin-rules-desktop.png", full_page=True)
    for tab in ("silences", "responsibilities", "channels", "risks"):
        await page.goto(f"{gateway}/console/#/admin?tab={tab}")
        await expect(page.locator(f"#tab-{tab}")).to_have_attribute("aria-selected", "true")
        if tab == "responsibilities":
            await expect(page.locator("main table")).to_contain_text("li.wei")
        if tab == "channels":
            # Test-send through a webhook channel whose receiver (the gateway's health answer) says 200.
            await page.get_by_role("button", name="Test-send").click()
            await expect(page.locator("[id^='test-']")).to_have_text("Test: delivered (HTTP 200)")
        if tab == "risks":
            await page.locator("#f-title").fill("午间柜员不足")
            await page.locator("#f-owner").fill("li.wei")
            await page.locator("#f-likelihood").select_option("4")
            await page.get_by_role("button", name="Create").click()
            await expect(page.locator("main table")).to_contain_text("4 × 3 = 12")
        await page.screenshot(path=shots / f"admin-{tab}-desktop.png", full_page=True)


def _judgement(text: str) -> float:
    if "/" in text:
        top, bottom = text.split("/")
        return float(top) / float(bottom)
    return float(text)


async def _phone_and_chinese(browser: Any, gateway: str, token: str, unit_id: str, shots: Path) -> None:
    """Every page at phone width; the language switch turns the console Chinese."""
    page = await open_page(browser, PHONE)
    await page.goto(f"{gateway}/console/")
    await expect(page.locator("main h1")).to_have_text("Sign in")
    await page.screenshot(path=shots / "signin-phone.png", full_page=True)
    await page.goto(f"{gateway}/console/#token={token}")
    await expect(page.locator("#treemap svg")).to_be_visible()
    await page.screenshot(path=shots / "map-phone.png", full_page=True)
    await page.get_by_role("button", name="切换到中文").click()
    await expect(page.locator("header nav")).to_contain_text("热力图")
    await expect(page.locator("main h1")).to_have_text("热力图")
    await page.screenshot(path=shots / "map-phone-zh.png", full_page=True)
    for name, route in (("unit", f"unit/{unit_id}"), ("alerts", "alerts"), ("actions", "actions"), ("admin", "admin")):
        await page.goto(f"{gateway}/console/#/{route}")
        await expect(page.locator("main h1")).to_be_visible()
        await expect(page.locator("#live-status")).to_be_visible()
        await page.screenshot(path=shots / f"{name}-phone-zh.png", full_page=True)
