"""Erasures that come before their feedback, twice, or in the same transaction: each subtracts exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.scoring import repository
from services.scoring.aggregation import feedback_stats
from services.scoring.statistics import MetricStats
from shared.events import Envelope, FeedbackReceived, Ratings
from shared.storage import DEAD_LETTERS, Database
from tests.harness import RunningService, Stack, deliver, handled, unique
from tests.integration.scoring.conftest import (
    erased,
    every_period,
    figures,
    in_one_batch,
    received,
    unit_created,
)

pytestmark = pytest.mark.integration

TREE = ("north", "north/beijing", "north/beijing/b1", "north/beijing/b2")
B1_LINEAGE = ["north", "north/beijing", "north/beijing/b1"]


async def _tree_with(stack: Stack, db: Database, org: str, *feedback: Envelope) -> None:
    units = [unit_created(org, path) for path in TREE]
    await deliver(stack, *units, *feedback)
    await handled(db, *units, *feedback)


async def test_erasure_before_its_feedback__no_level_changes(stack: Stack, scoring: RunningService):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    kept = received(org, TREE[2], now, Ratings(csat=4, nps=9))
    await _tree_with(stack, db, org, kept)
    before = await figures(db, org)
    late = received(org, TREE[2], now, Ratings(csat=1, nps=0))
    erasure = erased(late)

    await deliver(stack, erasure)
    await handled(db, erasure)
    await deliver(stack, late)
    await handled(db, late)

    assert before == every_period(org, B1_LINEAGE, now, feedback_stats(Ratings(csat=4, nps=9), None))
    assert await figures(db, org) == before
    assert isinstance(late.data, FeedbackReceived)
    key = repository.feedback_key(org, late.data.feedback_id)
    assert await db[repository.ERASED].count_documents({"_id": key}) == 1
    assert await db[repository.COUNTED].count_documents({"_id": key}) == 0
    assert await db[DEAD_LETTERS].count_documents({"org": org}) == 0


async def test_feedback_erased_twice__is_subtracted_once(stack: Stack, scoring: RunningService):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    kept = received(org, TREE[3], now, Ratings(csat=5, nps=10, ces=2))
    gone = received(org, TREE[2], now, Ratings(csat=2, nps=3, ces=6))
    await _tree_with(stack, db, org, kept, gone)
    first, second = erased(gone), erased(gone)

    await deliver(stack, first)
    await handled(db, first)
    await deliver(stack, second)
    await handled(db, second)

    kept_stats = feedback_stats(Ratings(csat=5, nps=10, ces=2), None)
    assert await figures(db, org) == {
        **every_period(org, ["north", "north/beijing", TREE[3]], now, kept_stats),
        **every_period(org, [TREE[2]], now, MetricStats.empty()),
    }
    assert await db[DEAD_LETTERS].count_documents({"org": org}) == 0


async def test_erasure_and_feedback_in_one_batch__add_nothing_in_either_order(stack: Stack, scoring: RunningService):
    db: Database = scoring.app.state.runtime.db
    org, now = unique("org"), datetime.now(UTC)
    erased_first = received(org, TREE[2], now, Ratings(csat=3))
    counted_first = received(org, TREE[3], now, Ratings(csat=4))

    await in_one_batch(
        scoring, ("on_feedback_erased", [erased(erased_first)]), ("on_feedback_received", [erased_first])
    )
    await in_one_batch(
        scoring, ("on_feedback_received", [counted_first]), ("on_feedback_erased", [erased(counted_first)])
    )

    # The feedback counted first leaves zeroed aggregates behind; the one erased first, none at all.
    assert await figures(db, org) == every_period(org, ["north", "north/beijing", TREE[3]], now, MetricStats.empty())
