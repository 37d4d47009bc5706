"""Event handlers of the alerts service (one per consumed event type, a batch at a time) and its job handlers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from services.alerts import evaluation, notifying, pipeline, repository
from services.alerts.notify import SecretBox
from services.alerts.pipeline import Book
from services.alerts.settings import AlertsSettings
from shared.consumer import BatchContext
from shared.events import ActionUpdated, Envelope, FeedbackReceived, IndexSystemChanged, ScoreUpdated, UnitChanged
from shared.scheduler import Job, JobHandler
from shared.tree import lineage

# An action taken in hand acknowledges its alert (or the alerts of its group).
ACKNOWLEDGING_STATUS = "in_progress"
# Books of recent batches (consumer and job passes interleave); the oldest are let go.
BOOKS_KEPT = 8


@dataclass
class AlertsHandlers:
    """The handlers, holding the service's settings and the box that opens channel secrets."""

    settings: AlertsSettings
    box: SecretBox
    books: dict[int, Book] = field(default_factory=dict)

    def book(self, batch: BatchContext) -> Book:
        """The working set of one batch's transaction, shared by every handler the batch runs."""
        book = self.books.get(id(batch.unit))
        if book is None or book.unit is not batch.unit:
            book = Book(batch.db, batch.session, batch.unit, self.settings)
            self.books[id(batch.unit)] = book
            while len(self.books) > BOOKS_KEPT:
                del self.books[next(iter(self.books))]
        return book

    async def on_score_updated(self, envelopes: Sequence[Envelope[ScoreUpdated]], batch: BatchContext) -> None:
        """Evaluate the score-driven rules on each new figure; raise or resolve alerts once per transition."""
        await evaluation.on_scores(self.book(batch), envelopes)

    async def on_feedback_received(self, envelopes: Sequence[Envelope[FeedbackReceived]], batch: BatchContext) -> None:
        """Evaluate the rules on single feedback (event rules fire at once) and the burn rates."""
        await evaluation.on_feedback(self.book(batch), envelopes)

    async def on_unit_changed(self, envelopes: Sequence[Envelope[UnitChanged]], batch: BatchContext) -> None:
        """Keep the read copy of the tree; a moved unit's open alerts and settings take its new path."""
        for envelope in envelopes:
            change = envelope.data
            repository.put(
                batch.unit,
                repository.UNITS,
                {
                    "_id": repository.unit_key(change.org, change.unit_id),
                    "org": change.org,
                    "unit_id": change.unit_id,
                    "path": change.unit_path,
                    "kind": change.kind,
                    "parent_id": change.parent_id,
                    "active": change.active,
                },
            )
            if change.change == "moved" and change.previous_path not in (None, change.unit_path):
                await repository.move_scopes(
                    batch.db, change.org, change.previous_path, change.unit_path, batch.session
                )
                # Their fingerprint follows the unit's id; their path, lineage and list keys its place.
                book = self.book(batch)
                for alert in await book.unit_open_alerts(change.org, change.unit_id):
                    alert.update(unit_path=change.unit_path, lineage=lineage(change.unit_path))
                    book.touch_alert(alert)
                book.flush()

    async def on_index_system_changed(
        self, envelopes: Sequence[Envelope[IndexSystemChanged]], batch: BatchContext
    ) -> None:
        """Remember each organisation's indicators in force, to validate rules against."""
        for envelope in envelopes:
            event = envelope.data
            repository.put(
                batch.unit,
                repository.INDICATORS,
                {"_id": event.org, "indicators": event.indicators, "index_version": event.index_version},
            )

    async def on_action_updated(self, envelopes: Sequence[Envelope[ActionUpdated]], batch: BatchContext) -> None:
        """An action taken in hand acknowledges its group's firing alerts (or its one alert), by whoever took it."""
        book = self.book(batch)
        for envelope in envelopes:
            event = envelope.data
            if event.status != ACKNOWLEDGING_STATUS or event.previous_status == ACKNOWLEDGING_STATUS:
                continue
            # One action per group: taking it in hand acknowledges every alert of the group.
            alerts = []
            if event.group_id:
                alerts = await book.group_alerts(event.group_id)
            elif event.alert_id:
                alert = await book.alert(event.alert_id)
                alerts = [alert] if alert else []
            patience = (await notifying.policy(book, event.org))["patience_minutes"]
            for alert in alerts:
                if alert["org"] == event.org:
                    why = f"action {event.action_id} taken in hand"
                    pipeline.acknowledge(
                        book, alert, by=event.by, comment=why, patience_minutes=patience, cause=envelope
                    )
        book.flush()

    # --- jobs -----------------------------------------------------------------------------------

    async def run_notify(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        """Decide the notifications of groups whose wait is over."""
        for job in jobs:
            await notifying.notify_group(self.book(batch), job.payload["group_id"], job.payload.get("kind", "firing"))

    async def run_deliver(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        """Send due deliveries (after the commit that decided them) and log every attempt."""
        async with httpx.AsyncClient() as http:
            await notifying.deliver(self.book(batch), [job.key for job in jobs], box=self.box, http=http)

    async def run_escalate(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        """Run due escalation steps."""
        for job in jobs:
            await notifying.escalate(self.book(batch), job.payload["group_id"], int(job.payload["step"]))

    async def run_remind(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        """Notify again acknowledged alerts that still fire after the organisation's patience."""
        for job in jobs:
            await notifying.remind(self.book(batch), job.payload["alert_id"])

    async def run_recheck(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        """Evaluate fingerprints again whose rule kind set a timer (``for``, sliding windows, quiet time)."""
        for job in jobs:
            await evaluation.recheck(self.book(batch), job.org, job.payload["rule_id"], job.payload["unit_id"])

    async def run_release(self, jobs: Sequence[Job], batch: BatchContext) -> None:
        """Tell the alerts a resolved red alert held back."""
        for job in jobs:
            await notifying.release(self.book(batch), job.org, job.payload["unit_path"], job.payload["indicator"])

    def jobs(self) -> dict[str, JobHandler]:
        """The job handlers by kind."""
        return {
            pipeline.NOTIFY: self.run_notify,
            pipeline.DELIVER: self.run_deliver,
            pipeline.ESCALATE: self.run_escalate,
            pipeline.REMIND: self.run_remind,
            pipeline.RECHECK: self.run_recheck,
            pipeline.RELEASE: self.run_release,
        }
