"""The REST API: validation naming the field, scopes (404 outside, 403 without role), revisions, try,
counts, and an unreachable channel that never blocks alerting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts import repository
from services.alerts.notify import new_webhook_secret
from shared.events import IndexSystemChanged
from tests.harness import eventually, staged_events, unique
from tests.integration.alerts.conftest import Org, db_of, envelope, score

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"threshold": 60, "period": "rolling_7d"}, "threshold.period"),
        ({"threshold": 60, "clear_bound": 50}, "threshold"),
        ({"kind": "baseline"}, "baseline.change"),
        ({"kind": "spc", "lambda": 1.5}, "spc.lambda"),
        ({"kind": "spc", "western_electric": [5]}, "spc.western_electric.0"),
        ({"kind": "event", "match": "rumour"}, "event.match"),
        ({"kind": "burn_rate", "objective": 0.9}, "burn_rate"),
        (
            {"kind": "burn_rate", "windows": [{"burn_rate": 2, "long_seconds": 600, "short_seconds": 900}]},
            "burn_rate.windows.0",
        ),
        ({"kind": "sql"}, ""),
    ],
)
async def test_rules__bad_parameters_answer_problem_json_naming_the_field(org: Org, body, field):
    response = await org.http.post("/api/v1/rules", json={"name": "bad", **body})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in response.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields


async def test_rules__an_unknown_indicator_is_refused(org: Org):
    response = await org.http.post("/api/v1/rules", json={"name": "x", "indicator": "happiness", "threshold": 1})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "indicator"


async def test_rules__updates_are_revisions_and_alerts_name_theirs(org: Org):
    await org.tree("north", "north/b-001")
    rule = await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    response = await org.http.put(
        f"/api/v1/rules/{rule['id']}", json={"name": "CSAT floor", "threshold": 70, "min_samples": 5, "level": "red"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["revision"], response.json()["threshold"]) == (2, 70)
    await org.send(score(org.name, "north/b-001", 65))
    [alert] = await org.alerts(status="firing")
    assert (alert["rule_revision"], alert["level"], alert["threshold"]) == (2, "red", 70)
    assert (await org.http.post(f"/api/v1/rules/{rule['id']}/disable")).json()["enabled"] is False
    [resolved] = await org.alerts(status="resolved")  # a rule no longer evaluated resolves its alerts
    assert resolved["history"][-1]["why"] == "rule disabled"
    assert (await org.http.delete(f"/api/v1/rules/{rule['id']}")).status_code == 204
    assert (await org.http.get(f"/api/v1/rules/{rule['id']}")).status_code == 404


async def test_scopes__other_organisations_and_sibling_subtrees_answer_404(org: Org):
    await org.tree("north", "north/b-001", "south")
    rule = await org.rule(scope="north", indicator="csat", threshold=60, min_samples=5)
    silence = (
        await org.http.post("/api/v1/silences", json={"matchers": {"scope": "north"}, "dates": ["2026-10-01"]})
    ).json()
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    stranger = org.client("admin")
    stranger.headers.update(org.stack.headers("another-org", "admin"))
    async with stranger, org.client("quality_manager", scopes=("south",)) as sibling:
        for client in (stranger, sibling):
            assert (await client.get(f"/api/v1/alerts/{alert['id']}")).status_code == 404
            assert (await client.get(f"/api/v1/rules/{rule['id']}")).status_code == 404
            assert (await client.get(f"/api/v1/silences/{silence['id']}")).status_code == 404
            assert (await client.get("/api/v1/alerts")).json()["items"] == []
        assert (await sibling.get("/api/v1/alerts", params={"unit": "north"})).status_code == 404


async def test_scopes__changes_need_the_role_and_a_scope_inside_ones_own(org: Org):
    async with (
        org.client("analyst") as analyst,
        org.client("quality_manager", scopes=("north",)) as regional,
    ):
        rule = {"name": "x", "threshold": 60}
        assert (await analyst.post("/api/v1/rules", json=rule)).status_code == 403
        assert (await regional.post("/api/v1/rules", json=rule)).status_code == 403  # scope * is wider
        assert (await regional.post("/api/v1/rules", json={**rule, "scope": "south"})).status_code == 403
        assert (await regional.post("/api/v1/rules", json={**rule, "scope": "north"})).status_code == 201
        chain = {"steps": [{"wait_minutes": 5, "notify": ["owner_up"]}]}
        assert (await regional.put("/api/v1/escalations/red", json=chain)).status_code == 403
        assert (await org.http.put("/api/v1/escalations/red", json=chain)).status_code == 200


async def test_counts__by_level_and_status_for_a_subtree(org: Org):
    await org.tree("north", "north/b-001", "south", "south/b-002")
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="orange")
    await org.send(score(org.name, "north/b-001", 30), score(org.name, "south/b-002", 30))
    counts = (await org.http.get("/api/v1/alerts/counts", params={"unit": "north"})).json()
    assert counts["by_level"] == {"orange": 1} and counts["by_status"] == {"firing": 1}
    everything = (await org.http.get("/api/v1/alerts/counts")).json()
    assert everything["by_level_and_status"] == {"orange": {"firing": 2}}


async def test_try__answers_when_a_rule_would_have_fired_and_cleared(org: Org):
    await org.tree("north", "north/b-001")
    await org.rule(indicator="csat", threshold=10, min_samples=5, period="day")  # keeps the daily series
    start = datetime(2026, 3, 1, tzinfo=UTC)
    values = [80, 75, 55, 50, 72, 80]
    await org.send(
        *[
            score(org.name, "north/b-001", v, period="day", start=start + timedelta(days=i))
            for i, v in enumerate(values)
        ]
    )
    candidate = {"name": "try", "indicator": "csat", "threshold": 60, "clear_bound": 70, "period": "day"}
    response = await org.http.post("/api/v1/rules/try", json={"unit_id": "b-001", "rule": candidate})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["points"] == 6
    assert [(t["at"][:10], t["firing"]) for t in result["transitions"]] == [("2026-03-03", True), ("2026-03-05", False)]


async def test_unreachable_channel__never_blocks_alerting_and_logs_its_attempts(org: Org):
    await org.tree("north", "north/b-001")
    config = {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": new_webhook_secret()}
    channel = {"name": "gone", "config": config}
    response = await org.http.post("/api/v1/channels", json=channel)
    assert response.status_code == 201, response.text
    await org.rule(indicator="csat", threshold=60, min_samples=5)
    await org.send(score(org.name, "north/b-001", 30))
    [alert] = await org.alerts(status="firing")
    breaches = await staged_events(db_of(org.service), "threshold.breached")
    assert any(e["value"]["alert_id"] == alert["id"] for e in breaches)

    async def attempted() -> list:
        detail = (await org.http.get(f"/api/v1/alerts/{alert['id']}")).json()
        return [d for d in detail["deliveries"] if d["attempts"]]

    [delivery] = await eventually(attempted)
    assert delivery["status"] == "retrying"
    assert delivery["attempts"][0]["ok"] is False


async def test_channels__test_send_reaches_the_receiver_and_secrets_never_come_back(org: Org, receiver):
    hooks, url = receiver
    config = {"type": "webhook", "url": url, "secret": hooks.secret, "language": "zh"}
    created = (await org.http.post("/api/v1/channels", json={"name": "ops", "scope": "north", "config": config})).json()
    listed = (await org.http.get("/api/v1/channels")).json()["items"]
    shown = (await org.http.get(f"/api/v1/channels/{created['id']}")).json()
    for channel in (created, *listed, shown):
        assert hooks.secret not in str(channel)
    attempt = (await org.http.post(f"/api/v1/channels/{created['id']}/test")).json()
    assert attempt["ok"] is True
    assert len(hooks.received) == 1 and hooks.rejected == []
    async with org.client("quality_manager", scopes=("south",)) as sibling:
        assert (await sibling.post(f"/api/v1/channels/{created['id']}/test")).status_code == 404


async def test_rules__indicators_follow_the_organisations_index_system(org: Org):
    await org.send(envelope(IndexSystemChanged(org=org.name, index_version=2, indicators=["csat", "waiting"])))
    accepted = await org.http.post("/api/v1/rules", json={"name": "wait", "indicator": "waiting", "threshold": 60})
    assert accepted.status_code == 201, accepted.text
    refused = await org.http.post("/api/v1/rules", json={"name": "nps", "indicator": "nps", "threshold": 0})
    assert refused.status_code == 422
    assert (
        await org.http.post("/api/v1/rules", json={"name": "c", "indicator": "composite", "threshold": 60})
    ).is_success


async def test_alerts__are_read_a_page_at_a_time_filtered(org: Org):
    await org.tree("north", *[f"north/b-{i}" for i in range(3)], "south", "south/b-9")
    await org.rule(indicator="csat", threshold=60, min_samples=5, level="yellow")
    await org.send(*[score(org.name, f"north/b-{i}", 30) for i in range(3)], score(org.name, "south/b-9", 30))
    first = (await org.http.get("/api/v1/alerts", params={"unit": "north", "limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (
        await org.http.get("/api/v1/alerts", params={"unit": "north", "limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    paths = {a["unit_path"] for a in first["items"] + second["items"]}
    assert paths == {"north/b-0", "north/b-1", "north/b-2"}
    assert await org.alerts(level="red") == []
    assert len(await org.alerts(level="yellow", status="firing")) == 4


async def test_start__drops_superseded_indexes_and_gives_older_alerts_rules_and_silences_their_list_keys(org: Org):
    client = org.service.app.state.runtime.client
    db = client[unique("alerts-old")]
    await db["groups"].create_index("key", unique=True, partialFilterExpression={"open": True})
    await db["alerts"].create_index([("org", 1), ("lineage", 1), ("_id", 1)])
    started = datetime(2026, 3, 1, tzinfo=UTC)
    old = {"_id": "al-old", "org": "o", "lineage": ["north", "north/b-1"], "status": "firing", "started_at": started}
    await db["alerts"].insert_one(old)
    # Rules and silences listed in _id order before: a live one and one no list shows any more.
    await db["rules"].insert_many(
        [
            {"_id": "rule-old", "org": "o", "scope": "north", "deleted": False, "created_at": started},
            {"_id": "rule-gone", "org": "o", "scope": "north", "deleted": True, "created_at": started},
        ]
    )
    await db["silences"].insert_one(
        {"_id": "sil-old", "org": "o", "scope": "*", "expired": True, "created_at": started}
    )
    await repository.drop_superseded_indexes(db)
    assert "key_1" not in await db["groups"].index_information()
    assert "org_1_lineage_1__id_1" not in await db["alerts"].index_information()
    stored = await db["alerts"].find_one({"_id": "al-old"})
    assert stored["page_keys"] == repository.alert_page_keys(old)
    assert len(stored["page_keys"]) == 6  # the organisation and two paths, each also per status
    rule = await db["rules"].find_one({"_id": "rule-old"})
    assert [key.split("\x1f")[1] for key in rule["page_keys"]] == ["*", "north", "north#on"]
    assert (await db["rules"].find_one({"_id": "rule-gone"}))["page_keys"] == []
    assert (await db["silences"].find_one({"_id": "sil-old"}))["page_keys"] == []
    await client.drop_database(db.name)


async def test_every_configuration_change__is_audited_and_no_secret_reaches_the_log(org: Org):
    secret = new_webhook_secret()
    http = org.http
    rule = (await http.post("/api/v1/rules", json={"name": "CSAT floor", "threshold": 60})).json()
    replaced = await http.put(f"/api/v1/rules/{rule['id']}", json={"name": "CSAT floor", "threshold": 55})
    assert replaced.status_code == 200, replaced.text
    assert (await http.post(f"/api/v1/rules/{rule['id']}/disable")).status_code == 200
    assert (await http.delete(f"/api/v1/rules/{rule['id']}")).status_code == 204
    silence = (await http.post("/api/v1/silences", json={"comment": "装修", "weekly": [{"days": [5, 6]}]})).json()
    assert (await http.delete(f"/api/v1/silences/{silence['id']}")).status_code == 204
    config = {"type": "webhook", "url": "https://hooks.example.com/ql", "secret": secret}
    channel = (await http.post("/api/v1/channels", json={"name": "ops", "config": config})).json()
    renamed = await http.patch(f"/api/v1/channels/{channel['id']}", json={"name": "ops duty"})
    assert renamed.status_code == 200, renamed.text
    assert (await http.delete(f"/api/v1/channels/{channel['id']}")).status_code == 204
    chain = {"steps": [{"wait_minutes": 5, "notify": ["owner_up"]}]}
    assert (await http.put("/api/v1/escalations/red", json=chain)).status_code == 200
    assert (await http.delete("/api/v1/escalations/red")).status_code == 204
    assert (await http.put("/api/v1/escalations/policy", json={"patience_minutes": 60})).status_code == 200

    log = await http.get("/api/v1/audit/alerts", params={"limit": 100})
    seen = [(e["action"], e["kind"], e["object_id"]) for e in reversed(log.json()["items"])]
    assert seen == [
        ("create", "rule", rule["id"]),
        ("update", "rule", rule["id"]),
        ("disable", "rule", rule["id"]),
        ("delete", "rule", rule["id"]),
        ("create", "silence", silence["id"]),
        ("expire", "silence", silence["id"]),
        ("create", "channel", channel["id"]),
        ("update", "channel", channel["id"]),
        ("delete", "channel", channel["id"]),
        ("update", "escalation_chain", "red"),
        ("delete", "escalation_chain", "red"),
        ("update", "escalation_policy", org.name),
    ]
    entries = {(e["action"], e["kind"]): e for e in log.json()["items"]}
    threshold = entries[("update", "rule")]
    assert (threshold["before"]["threshold"], threshold["after"]["threshold"]) == (60, 55)
    assert entries[("update", "channel")]["after"]["name"] == "ops duty"
    assert entries[("update", "escalation_policy")]["after"]["patience_minutes"] == 60
    assert secret not in log.text and secret.removeprefix("whsec_") not in log.text
    export = await http.get("/api/v1/audit/alerts/export")
    assert export.status_code == 200 and secret.removeprefix("whsec_") not in export.text
