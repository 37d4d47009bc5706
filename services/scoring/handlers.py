"""Event handlers of the scoring service: feedback in, coalesced score updates out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo import UpdateOne

from services.scoring import repository
from services.scoring.aggregation import AggregateKey, Contributions, feedback_stats, score
from services.scoring.index_system import IndexSystem
from services.scoring.statistics import MetricStats
from shared.auth import lineage
from shared.consumer import BatchContext
from shared.events import Envelope, FeedbackErased, FeedbackReceived, ScoreUpdated, UnitChanged
from shared.storage import find_in


class ScoringHandlers:
    """The scoring service's handlers, one per consumed event type."""

    def __init__(self, *, min_samples: int) -> None:
        self._min_samples = min_samples

    async def on_feedback_received(self, envelopes: Sequence[Envelope], batch: BatchContext) -> None:
        """Add each feedback to its unit's and ancestors' aggregates; one update per aggregate."""
        await self._apply(envelopes, batch, sign=1)

    async def on_feedback_erased(self, envelopes: Sequence[Envelope], batch: BatchContext) -> None:
        """Take erased feedback back out of every aggregate it was added to."""
        await self._apply(envelopes, batch, sign=-1)

    async def on_unit_changed(self, envelopes: Sequence[Envelope], batch: BatchContext) -> None:
        """Keep the read copy of the unit tree that resolves unit ids and scopes."""
        for envelope in envelopes:
            unit = envelope.data
            assert isinstance(unit, UnitChanged)
            batch.unit.write(
                repository.UNITS,
                UpdateOne(
                    {"org": unit.org, "id": unit.unit_id},
                    {
                        "$set": {
                            "path": unit.unit_path,
                            "lineage": lineage(unit.unit_path),
                            "name": unit.name,
                            "kind": unit.kind,
                            "parent_id": unit.parent_id,
                            "active": unit.active,
                        }
                    },
                    upsert=True,
                ),
            )

    async def _apply(self, envelopes: Sequence[Envelope], batch: BatchContext, *, sign: int) -> None:
        contributions = Contributions()
        causes: dict[AggregateKey, Envelope] = {}
        for envelope in envelopes:
            event = envelope.data
            assert isinstance(event, FeedbackReceived | FeedbackErased)
            stats = feedback_stats(event.ratings, event.sentiment)
            for key in contributions.add(event.org, lineage(event.unit_path), event.occurred_at, stats):
                causes[key] = envelope
        if not contributions.deltas:
            return
        now = datetime.now(UTC)
        # Written now rather than staged: the new totals are read back in the same transaction.
        await batch.db[repository.AGGREGATES].bulk_write(
            [_increment(key, delta, sign, now) for key, delta in contributions.deltas.items()],
            ordered=False,
            session=batch.session,
        )
        ids = [key.id for key in contributions.deltas]
        by_id = {key.id: key for key in contributions.deltas}
        systems = await repository.current_index_systems(
            batch.db, {key.org for key in contributions.deltas}, batch.session
        )
        for document in await find_in(batch.db, repository.AGGREGATES, "_id", ids, session=batch.session):
            key = by_id[document["_id"]]
            stats = MetricStats.from_document(document.get("stats", {}))
            self._publish(key, stats, systems[key.org], causes[key], batch)

    def _publish(
        self, key: AggregateKey, stats: MetricStats, system: IndexSystem, cause: Envelope, batch: BatchContext
    ) -> None:
        result, indicators = score(system, stats, self._min_samples)
        batch.unit.publish(
            ScoreUpdated(
                org=key.org,
                unit_id=key.unit_id,
                unit_path=key.unit_path,
                period=key.period,
                period_start=key.start,
                sample_size=stats.n,
                indicators=indicators,
                composite=result.score,
                index_version=result.system_version,
                min_samples=self._min_samples,
            ),
            cause=cause,
        )


def _increment(key: AggregateKey, delta: MetricStats, sign: int, now: datetime) -> UpdateOne:
    return UpdateOne(
        {"_id": key.id},
        {
            "$inc": {f"stats.{name}": sign * value for name, value in delta.to_increments().items()},
            "$set": {"updated_at": now},
            "$setOnInsert": {
                "org": key.org,
                "unit_id": key.unit_id,
                "unit_path": key.unit_path,
                "lineage": lineage(key.unit_path),
                "period": key.period,
                "period_start": key.start,
            },
        },
        upsert=True,
    )
