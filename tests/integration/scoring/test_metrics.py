"""Complaints, audits and comment polarity through Kafka: counted, scored in an index system, erased exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from services.scoring import repository
from services.scoring.aggregation import feedback_stats
from services.scoring.statistics import MetricStats
from shared.events import Audit, AuditItem, Complaint, Envelope, FeedbackErased, FeedbackReceived, Polarity, Ratings
from shared.storage import DEAD_LETTERS, Database
from tests.harness import RunningService, Stack, deliver, handled, staged_events, unique
from tests.integration.scoring.conftest import envelope, every_period, figures, unit_created

pytestmark = pytest.mark.integration

TREE = ("north", "north/b1")
VISIT = Audit(
    visit_date=date(2026, 11, 5),
    checklist=[
        AuditItem(item="Greeting within 30 s", score=8, max_score=10),
        AuditItem(item="Uniform", score=1, max_score=2),
    ],
)
SERIOUS = Complaint(category="queue", severity="serious")
COMPLAINTS_AND_AUDITS = {
    "name": "Complaints, audits and comments",
    "indicators": [
        {"id": "complaints", "name": "Complaints per 100", "weight": 0.4, "metric": "complaint.rate"},
        {"id": "serious", "name": "Serious complaints per 100", "weight": 0.2, "metric": "complaint.rate.serious"},
        {"id": "audit", "name": "Mystery shopper", "weight": 0.2, "metric": "audit.score"},
        {"id": "greeting", "name": "Greeting", "weight": 0.1, "metric": "audit.item.greeting_within_30_s"},
        {"id": "negative", "name": "Negative comments", "weight": 0.1, "metric": "polarity.negative"},
    ],
}


def feedback(
    org: str,
    *,
    complaint: Complaint | None = None,
    audit: Audit | None = None,
    polarity: Polarity | None = None,
    moment: datetime,
) -> Envelope[FeedbackReceived]:
    """A feedback.received at the branch carrying a complaint, an audit or a classified comment."""
    return envelope(
        FeedbackReceived(
            org=org,
            unit_id="b1",
            unit_path=TREE[1],
            feedback_id=unique("fb"),
            channel="survey",
            occurred_at=moment,
            received_at=datetime.now(UTC),
            kind="complaint" if complaint else "audit" if audit else "comment",
            ratings=Ratings(),
            complaint=complaint,
            audit=audit,
            sentiment=None if polarity is None else 0.1,
            polarity=polarity,
        )
    )


def erasure(received: Envelope[FeedbackReceived], *, with_polarity: bool = True) -> Envelope[FeedbackErased]:
    """Its feedback.erased, as the feedback service sends it (an older one without the polarity)."""
    facts = received.data.model_dump(include=set(FeedbackErased.model_fields))
    if not with_polarity:
        facts["polarity"] = None
    return envelope(FeedbackErased.model_validate(facts))


async def _fed(stack: Stack, db: Database, *events: Envelope) -> None:
    await deliver(stack, *events)
    await handled(db, *events)


async def test_complaint_audit_and_polarity__counted_at_every_level_and_erased_exactly(
    stack: Stack, scoring: RunningService
):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    complaint = feedback(org, complaint=SERIOUS, polarity="negative", moment=now)
    audit = feedback(org, audit=VISIT, moment=now)
    comment = feedback(org, polarity="positive", moment=now)
    await _fed(stack, db, *(unit_created(org, path) for path in TREE), complaint, audit, comment)

    counted = await figures(db, org)
    await _fed(stack, db, erasure(complaint, with_polarity=False), erasure(audit))
    left = await figures(db, org)

    three = (
        MetricStats.from_feedback({"complaint": SERIOUS.model_dump(), "polarity": "negative", "sentiment": 0.1})
        + MetricStats.from_feedback({"audit": VISIT.model_dump()})
        + MetricStats.from_feedback({"polarity": "positive", "sentiment": 0.1})
    )
    assert counted == every_period(org, list(TREE), now, three)
    assert three.get("complaint.severity.serious") == 1 and three.get("polarity.n") == 2
    assert three.get("audit.sum") == 75_000 and three.get("audit.item.uniform.sum") == 50_000
    # The complaint's erasure lacked its polarity: the one it was counted with came out all the same.
    assert left == every_period(org, list(TREE), now, feedback_stats(Ratings(), 0.1, polarity="positive"))
    assert await db[DEAD_LETTERS].count_documents({"org": org}) == 0


async def test_erasure__of_a_feedback_counted_before_the_new_metrics_takes_out_only_what_it_added(
    stack: Stack, scoring: RunningService
):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    old = feedback(org, complaint=SERIOUS, polarity="negative", moment=now)
    await _fed(stack, db, *(unit_created(org, path) for path in TREE), old)
    # As the registry's first version left it: no complaint or polarity counters, no version on the row.
    new_only = feedback_stats(Ratings(), 0.1, polarity="negative", complaint=SERIOUS) - feedback_stats(Ratings(), 0.1)
    for aggregate_id in every_period(org, list(TREE), now, new_only):
        await db[repository.AGGREGATES].update_one(
            {"_id": aggregate_id}, {"$inc": {f"stats.{k}": -v for k, v in new_only.to_increments().items()}}
        )
    key = repository.feedback_key(org, old.data.feedback_id)
    await db[repository.COUNTED].update_one({"_id": key}, {"$unset": {"registry_version": "", "polarity": ""}})

    await _fed(stack, db, erasure(old))

    assert await figures(db, org) == every_period(org, list(TREE), now, MetricStats.empty())
    assert await db[DEAD_LETTERS].count_documents({"org": org}) == 0


async def test_index_system__with_the_new_metrics_scores_them_and_announces_its_indicators(
    stack: Stack, scoring: RunningService
):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    headers = stack.headers(org, "quality_manager")
    async with httpx.AsyncClient(base_url=scoring.url, headers=headers) as http:
        changed = await http.put("/api/v1/index-systems/current", json=COMPLAINTS_AND_AUDITS)
        events = [
            *(unit_created(org, path) for path in TREE),
            feedback(org, complaint=SERIOUS, polarity="negative", moment=now),
            feedback(org, audit=VISIT, moment=now),
            feedback(org, polarity="positive", moment=now),
            feedback(org, polarity="positive", moment=now),
        ]
        await _fed(stack, db, *events)
        score = (await http.get("/api/v1/scores/b1")).json()

    assert changed.status_code == 200, changed.text
    figures_ = score["indicators"]
    # 1 complaint in 4 feedback: 25 per 100, scored 75; the visit (8 + 1) / 12 = 75 %, its greeting 80 %;
    # 1 negative of 3 comments: 33.3 %, scored 66.7.
    assert (figures_["complaints"]["value"], figures_["complaints"]["score"]) == (25.0, 75.0)
    assert figures_["serious"]["value"] == 25.0 and figures_["complaints"]["sample_size"] == 4
    assert (figures_["audit"]["value"], figures_["greeting"]["value"]) == (75.0, 80.0)
    assert figures_["negative"]["value"] == pytest.approx(100 / 3)
    assert score["composite"] == pytest.approx(0.4 * 75 + 0.2 * 75 + 0.2 * 75 + 0.1 * 80 + 0.1 * (100 - 100 / 3))
    [announced] = [e["value"] for e in await staged_events(db, "index_system.changed") if e["value"]["org"] == org]
    assert announced == {
        "org": org,
        "unit_id": "*",
        "unit_path": "*",
        "index_version": 2,
        "indicators": ["composite", "complaints", "serious", "audit", "greeting", "negative"],
    }


async def test_index_system__a_refused_change_announces_nothing(stack: Stack, scoring: RunningService):
    org = unique("org")
    async with httpx.AsyncClient(base_url=scoring.url, headers=stack.headers(org, "quality_manager")) as http:
        neutral = {"id": "neutral", "name": "Neutral comments", "weight": 1.0, "metric": "polarity.neutral"}
        refused = await http.put("/api/v1/index-systems/current", json={"name": "n", "indicators": [neutral]})

    assert refused.status_code == 422
    assert "needs a direction" in refused.text
    events = await staged_events(scoring.app.state.runtime.db, "index_system.changed")
    assert [e for e in events if e["value"]["org"] == org] == []
