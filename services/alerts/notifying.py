"""Notification stage: which of a group's alerts are told (silences and inhibition hold some back), to which
channels, and the delivery of each message after the commit, every attempt in the delivery log."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter, Histogram

from services.alerts import escalation, repository, silences
from services.alerts.inhibition import inhibited
from services.alerts.notify import (
    ChannelConfig,
    Notification,
    NotificationKind,
    SecretBox,
    SecretUnreadable,
    channel_config,
    next_retry_delay,
    send,
)
from services.alerts.pipeline import DELIVER, ESCALATE, REMIND, Book, history, schedule_notification
from services.alerts.silences import AlertFacts, SilenceSpec
from shared.events import AlertEscalated
from shared.ids import new_id
from shared.scheduler import schedule
from shared.storage import Document
from shared.tree import in_subtree

# Component prefix as Alertmanager's: what the notification stage did, per channel type and outcome.
DELIVERY_ATTEMPTS = Counter(
    "qualityloop_alerts_delivery_attempts_total", "Attempts to deliver a notification", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "qualityloop_alerts_delivery_seconds", "Time one delivery attempt took, sent or failed", ["channel"]
)


async def policy(book: Book, org: str) -> dict[str, Any]:
    """The organisation's time zone and patience, or the service's defaults."""
    stored = await repository.get_one(book.db, repository.POLICIES, org, session=book.session) or {}
    return {
        "timezone": stored.get("timezone", book.settings.default_timezone),
        "patience_minutes": stored.get("patience_minutes", book.settings.default_patience_minutes),
    }


def facts(alert: Document) -> AlertFacts:
    """What silences and inhibition match on."""
    return AlertFacts(alert["rule_id"], alert["unit_path"], alert["indicator"], alert["level"])


async def notify_group(book: Book, group_id: str, kind: str) -> None:
    """Decide a group's notification: tell the alerts nobody was told of yet, unless silenced or inhibited."""
    group = await book.group(group_id)
    if group is None:
        return
    alerts = await book.group_alerts(group_id)
    if kind == "resolved":
        await send_notification(book, group, "resolved", alerts)
        book.flush()
        return
    if kind == "acknowledged":
        # Those told of the group hear who took it in hand (and why); nobody else is woken for it.
        taken = [a for a in alerts if a["status"] == "acknowledged" and a["notified"]]
        if taken:
            last = max(taken, key=lambda a: a["acknowledged_at"])
            await send_notification(
                book, group, "acknowledged", taken, actor=last["acknowledged_by"], comment=last["comment"]
            )
        return
    group["notify_pending"] = False
    book.touch_group(group)
    waiting = [a for a in alerts if a["open"] and not a["notified"]]
    told, held_until = await _screen(book, group, waiting)
    if held_until is not None:
        group["notify_pending"] = True
        schedule_notification(book.unit, group, "firing", held_until)
    if told:
        group["notified_at"] = book.now
        await send_notification(book, group, "firing", told)
    book.flush()


async def _screen(book: Book, group: Document, waiting: list[Document]) -> tuple[list[Document], datetime | None]:
    """The alerts to tell now, and when a silence holding others back ends (to tell them then)."""
    if not waiting:
        return [], None
    org = group["org"]
    zone = (await policy(book, org))["timezone"]
    specs = [
        (d, SilenceSpec.model_validate(d["spec"]))
        for d in await repository.list_silences(book.db, org, session=book.session)
    ]
    reds = await repository.list_open_red_alerts(
        book.db, org, sorted({a["indicator"] for a in waiting}), session=book.session
    )
    told: list[Document] = []
    held_until: datetime | None = None
    for alert in waiting:
        alert_facts = facts(alert)
        ends = [
            (end, doc["_id"])
            for doc, spec in specs
            if silences.matches(spec, alert_facts) and (end := silences.current_end(spec, book.now, zone)) is not None
        ]
        if ends:
            end, silence_id = max(ends)
            alert["suppressed"] = f"silenced:{silence_id}"
            if end.year < 9999:
                held_until = end if held_until is None else min(held_until, end)
        elif inhibited(alert_facts, [facts(r) for r in reds if r["_id"] != alert["_id"]]):
            alert["suppressed"] = "inhibited"
        else:
            alert.update(notified=True, suppressed=None)
            told.append(alert)
        book.touch_alert(alert)
    return told, held_until


async def send_notification(
    book: Book,
    group: Document,
    kind: NotificationKind,
    alerts: Sequence[Document],
    *,
    step: int | None = None,
    actor: str | None = None,
    comment: str | None = None,
) -> Document:
    """Record one notification of a group and schedule its delivery to every channel that wants it."""
    org = group["org"]
    paths = sorted({a["unit_path"] for a in alerts}, key=lambda p: (p.count("/"), p))
    lead = min(alerts, key=lambda a: (a["unit_path"].count("/"), a["unit_path"])) if alerts else None
    notification = Notification(
        kind=kind,
        org=org,
        group_id=group["_id"],
        alert_ids=tuple(a["_id"] for a in alerts),
        rule_name=group["rule_name"],
        level=group["level"],
        indicator=lead["indicator"] if lead else "",
        unit_paths=tuple(paths),
        value=lead["value"] if lead else None,
        bound=lead["threshold"] if lead else None,
        sample_size=lead["sample_size"] if lead else None,
        period=lead["period"] if lead else "all",
        started_at=group["opened_at"],
        link=f"{book.settings.link_base}/api/v1/alerts/{lead['_id'] if lead else ''}",
        occurred_at=book.now,
        escalation_step=step,
        rule_id=group["rule_id"],
        actor=actor,
        comment=comment,
    )
    channels = [
        c
        for c in await repository.list_channels(book.db, org, session=book.session)
        if group["level"] in c["levels"] and any(in_subtree(p, c["scope"]) for p in paths)
    ]
    record = {
        "_id": new_id("ntf"),
        "org": org,
        "group_id": group["_id"],
        "kind": kind,
        "alert_ids": list(notification.alert_ids),
        "unit_paths": paths,
        "channel_ids": [c["_id"] for c in channels],
        "created_at": book.now,
    }
    repository.put(book.unit, repository.NOTIFICATIONS, record)
    for channel in channels:
        delivery = {
            "_id": new_id("dlv"),
            "org": org,
            "group_id": group["_id"],
            "notification_id": record["_id"],
            "alert_ids": list(notification.alert_ids),
            "channel_id": channel["_id"],
            "channel_name": channel["name"],
            "kind": kind,
            "status": "pending",
            "attempts": [],
            "created_at": book.now,
            "notification": asdict(notification),
        }
        repository.put(book.unit, repository.DELIVERIES, delivery)
        schedule(book.unit, kind=DELIVER, key=delivery["_id"], org=org, due_at=book.now, payload={})
    return record


async def deliver(book: Book, delivery_ids: Sequence[str], *, box: SecretBox, http: httpx.AsyncClient) -> None:
    """Send due deliveries (after the commit that decided them) side by side, log every attempt, and retry
    failures with backoff. The reads come first: a session takes one operation at a time."""
    ready: list[tuple[Document, ChannelConfig]] = []
    for delivery_id in delivery_ids:
        prepared = await _prepare(book, delivery_id, box)
        if prepared is not None:
            ready.append(prepared)
    # Concurrent sends: one slow or unreachable channel costs its own timeout, not everyone's.
    attempts = await asyncio.gather(
        *(send(config, _notification(d), http=http, message_id=d["_id"]) for d, config in ready)
    )
    for (delivery, config), attempt in zip(ready, attempts, strict=True):
        DELIVERY_ATTEMPTS.labels(config.type, "sent" if attempt.ok else "failed").inc()
        DELIVERY_SECONDS.labels(config.type).observe(attempt.duration_ms / 1000)
        number = len(delivery["attempts"]) + 1
        delay = None if attempt.ok or not attempt.retryable else next_retry_delay(number)
        status = "sent" if attempt.ok else "retrying" if delay else "failed"
        _log(book, delivery, attempt.as_document(), status=status)
        if delay is not None:
            schedule(
                book.unit, kind=DELIVER, key=delivery["_id"], org=delivery["org"], due_at=book.now + delay, payload={}
            )


async def _prepare(book: Book, delivery_id: str, box: SecretBox) -> tuple[Document, ChannelConfig] | None:
    """A delivery still to send and its channel's config (secrets opened); None when there is nothing to send."""
    delivery = await repository.get_one(book.db, repository.DELIVERIES, delivery_id, session=book.session)
    if delivery is None or delivery["status"] in ("sent", "failed"):
        return None
    channel = await repository.get_one(book.db, repository.CHANNELS, delivery["channel_id"], session=book.session)
    if channel is None:
        _log(book, delivery, None, status="failed", error="the channel was deleted")
        return None
    try:
        return delivery, channel_config(channel, box)
    except SecretUnreadable as error:
        _log(book, delivery, None, status="failed", error=f"channel secret unreadable: {error}")
        return None


def _notification(delivery: Document) -> Notification:
    """The notification a delivery carries, as decided (the same on every retry)."""
    stored = dict(delivery["notification"])
    stored.update(alert_ids=tuple(stored["alert_ids"]), unit_paths=tuple(stored["unit_paths"]))
    return Notification(**stored)


def _log(
    book: Book, delivery: Document, attempt: dict[str, Any] | None, *, status: str, error: str | None = None
) -> None:
    entry = attempt or {
        "ok": False,
        "status_code": None,
        "error": error,
        "duration_ms": 0,
        "at": book.now,
        "retryable": False,
    }
    repository.update(
        book.unit,
        repository.DELIVERIES,
        delivery["_id"],
        {"$push": {"attempts": entry}, "$set": {"status": status, "updated_at": book.now}},
    )


async def escalate(book: Book, group_id: str, step: int) -> None:
    """Run step ``step`` of the group's level's chain for its alerts nobody acknowledged; schedule the next."""
    group = await book.group(group_id)
    if group is None or not group["open"] or group["escalation_next"] != step:
        return
    chain = await book.chain(group["org"], group["level"])
    steps = [escalation.Step(**s) for s in chain["steps"]] if chain else []
    chain_steps = escalation.expanded(steps)
    alerts = [a for a in await book.group_alerts(group_id) if a["status"] == "firing"]
    if not alerts or step >= len(chain_steps):
        return
    root = min((a["unit_path"] for a in alerts), key=lambda p: (p.count("/"), p))
    targets = escalation.targets(chain_steps[step], root)
    for alert in alerts:
        alert["escalation_step"] = step + 1
        alert["history"] = [*alert["history"], history("escalated", "system", ", ".join(targets), book.now)]
        book.touch_alert(alert)
        book.publish(
            AlertEscalated(
                org=alert["org"],
                unit_id=alert["unit_id"],
                unit_path=alert["unit_path"],
                alert_id=alert["_id"],
                group_id=group_id,
                step=step + 1,
                targets=targets,
            ),
            None,
        )
    await send_notification(book, group, "escalated", alerts, step=step + 1, actor=", ".join(targets))
    group["escalation_next"] = step + 1
    book.touch_group(group)
    due = escalation.due_at(book.now, steps, step + 1)
    if due is not None:
        schedule(
            book.unit,
            kind=ESCALATE,
            key=f"{group_id}:{step + 1}",
            org=group["org"],
            due_at=due,
            payload={"group_id": group_id, "step": step + 1},
        )
    book.flush()


async def remind(book: Book, alert_id: str) -> None:
    """An acknowledged alert still firing after the organisation's patience: notify again, and again later."""
    alert = await book.alert(alert_id)
    if alert is None or alert["status"] != "acknowledged":
        return
    group = await book.group(alert["group_id"])
    if group is None:
        return
    patience = (await policy(book, alert["org"]))["patience_minutes"]
    await send_notification(book, group, "reminder", [alert], actor=alert["acknowledged_by"], comment=alert["comment"])
    alert["reminders"] = alert.get("reminders", 0) + 1
    book.touch_alert(alert)
    schedule(
        book.unit,
        kind=REMIND,
        key=alert_id,
        org=alert["org"],
        due_at=book.now + timedelta(minutes=patience),
        payload={"alert_id": alert_id},
    )
    book.flush()


async def release(book: Book, org: str, unit_path: str, indicator: str) -> None:
    """A red alert resolved: the alerts it held back are told now, through their groups."""
    held = await repository.list_inhibited_alerts(book.db, org, unit_path, indicator, session=book.session)
    for group_id in sorted({a["group_id"] for a in held}):
        group = await book.group(group_id)
        if group is not None and not group["notify_pending"]:
            group["notify_pending"] = True
            book.touch_group(group)
            schedule_notification(book.unit, group, "firing", book.now)
    book.flush()
