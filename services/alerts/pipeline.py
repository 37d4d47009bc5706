"""The alerts pipeline inside one transaction: rules evaluated per fingerprint, alerts raised and resolved,
grouped, and their notifications and escalations scheduled. Handlers and jobs call it; it stages writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from services.alerts import escalation, grouping, repository, rules
from services.alerts.rules.base import Verdict
from services.alerts.settings import AlertsSettings
from shared.events import AlertAcknowledged, AlertResolved, Envelope, Event, ThresholdBreached
from shared.ids import new_id
from shared.scheduler import cancel, schedule
from shared.storage import Database, Document, UnitOfWork
from shared.tree import in_subtree, lineage

NOTIFY, DELIVER, ESCALATE, REMIND, RECHECK, RELEASE = "notify", "deliver", "escalate", "remind", "recheck", "release"


def fingerprint(rule_id: str, unit_id: str) -> str:
    """Identifies 'this rule on this unit' by the unit's id, so a moved unit keeps its alert."""
    return hashlib.sha256(f"{rule_id}\x1f{unit_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class UnitInfo:
    """A unit as the alerts service knows it from its read copy of the tree (or the event, before that)."""

    org: str
    unit_id: str
    path: str
    kind: str = "unit"

    @property
    def depth(self) -> int:
        """1 for a top-level unit."""
        return self.path.count("/") + 1


def applies(rule: Document, unit: UnitInfo) -> bool:
    """Whether a rule watches this unit: inside its scope, of its unit kinds and depths if it names any."""
    return (
        in_subtree(unit.path, rule["scope"])
        and (not rule.get("unit_kinds") or unit.kind in rule["unit_kinds"])
        and (not rule.get("depths") or unit.depth in rule["depths"])
    )


_PARSED: dict[tuple[str, int], rules.AnyParams] = {}


def params_of(rule: Document) -> rules.AnyParams:
    """A stored rule's parameters, parsed once per revision."""
    key = (rule["_id"], rule["revision"])
    if key not in _PARSED:
        _PARSED[key] = rules.parse(rule["params"])
    return _PARSED[key]


@dataclass
class Book:
    """What one transaction reads and changes of alerts, groups and rule states, staged when flushed.

    Every handler of a consumed batch shares the batch's book: writes are staged, not visible to reads,
    so a second handler must see the first one's changes here (a resolved alert stays resolved).
    """

    db: Database
    session: AsyncClientSession | None
    unit: UnitOfWork
    settings: AlertsSettings
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    open_alerts: dict[str, Document] = field(default_factory=dict)
    states: dict[str, Document] = field(default_factory=dict)
    groups: dict[str, Document | None] = field(default_factory=dict)
    chains: dict[str, Document | None] = field(default_factory=dict)
    changed_alerts: dict[str, Document] = field(default_factory=dict)
    changed_groups: dict[str, Document] = field(default_factory=dict)
    changed_states: set[str] = field(default_factory=set)
    known_alerts: dict[str, Document] = field(default_factory=dict)
    known_groups: dict[str, Document] = field(default_factory=dict)

    async def load(self, fingerprints: list[str]) -> None:
        """Read the open alerts and rule states of these fingerprints (those not read yet)."""
        wanted = sorted(set(fingerprints) - self.states.keys())
        if not wanted:
            return
        for stored_alert in await repository.list_open_alerts(self.db, wanted, session=self.session):
            alert = self.known_alerts.get(stored_alert["_id"], stored_alert)
            if alert["open"]:
                self.open_alerts.setdefault(alert["fingerprint"], alert)
        stored = {
            d["_id"]: d
            for d in await repository.list_by_ids(self.db, repository.RULE_STATES, wanted, session=self.session)
        }
        for key in wanted:
            self.states[key] = stored.get(key, {"_id": key, "state": {}})

    def state(self, key: str) -> dict[str, Any]:
        """A fingerprint's rule state (loaded first)."""
        return dict(self.states[key]["state"])

    def set_state(self, key: str, state: dict[str, Any], **facts: Any) -> None:
        """Keep a fingerprint's new rule state, written back only if it changed."""
        if state != self.states[key]["state"]:
            self.states[key] = {**self.states[key], **facts, "state": state}
            self.changed_states.add(key)

    def touch_alert(self, alert: Document) -> None:
        """Mark an alert changed."""
        self.changed_alerts[alert["_id"]] = self.known_alerts[alert["_id"]] = alert

    def touch_group(self, group: Document) -> None:
        """Mark a group changed."""
        self.changed_groups[group["_id"]] = self.known_groups[group["_id"]] = group

    async def alert(self, alert_id: str) -> Document | None:
        """An alert as this transaction sees it."""
        if alert_id in self.known_alerts:
            return self.known_alerts[alert_id]
        return await repository.get_one(self.db, repository.ALERTS, alert_id, session=self.session)

    async def group(self, group_id: str) -> Document | None:
        """A group as this transaction sees it."""
        if group_id in self.known_groups:
            return self.known_groups[group_id]
        return await repository.get_one(self.db, repository.GROUPS, group_id, session=self.session)

    async def group_alerts(self, group_id: str) -> list[Document]:
        """Every alert of a group as this transaction sees it."""
        stored = await repository.list_group_alerts(self.db, group_id, session=self.session)
        seen = {a["_id"] for a in stored}
        extra = [a for a in self.known_alerts.values() if a["group_id"] == group_id and a["_id"] not in seen]
        return [self.known_alerts.get(a["_id"], a) for a in stored] + extra

    async def unit_open_alerts(self, org: str, unit_id: str) -> list[Document]:
        """A unit's open alerts as this transaction sees them."""
        stored = await repository.list_open_unit_alerts(self.db, org, unit_id, session=self.session)
        seen = {a["_id"] for a in stored}
        extra = [a for a in self.known_alerts.values() if a["unit_id"] == unit_id and a["org"] == org and a["open"]]
        current = [self.known_alerts.get(a["_id"], a) for a in stored] + [a for a in extra if a["_id"] not in seen]
        return [alert for alert in current if alert["open"]]

    def flush(self) -> None:
        """Stage every document changed since the last flush."""
        for alert in self.changed_alerts.values():
            repository.put_alert(self.unit, alert)
        for group in self.changed_groups.values():
            repository.put(self.unit, repository.GROUPS, group)
        for key in self.changed_states:
            repository.put(self.unit, repository.RULE_STATES, self.states[key])
        self.changed_alerts, self.changed_groups, self.changed_states = {}, {}, set()

    async def chain(self, org: str, level: str) -> Document | None:
        """The organisation's escalation chain for a level, if it has one."""
        key = repository.chain_key(org, level)
        if key not in self.chains:
            self.chains[key] = await repository.get_one(self.db, repository.ESCALATIONS, key, session=self.session)
        return self.chains[key]

    async def open_group(self, key: str) -> Document | None:
        """The group with this key that takes new alerts, if any."""
        if key not in self.groups:
            found = await repository.list_open_groups(self.db, [key], session=self.session)
            self.groups[key] = found[0] if found else None
        return self.groups[key]

    def publish(self, event: Event, cause: Envelope[Any] | None) -> None:
        """Stage an event in the outbox."""
        self.unit.publish(event, cause=cause)


def history(status: str, by: str, why: str, at: datetime) -> dict[str, Any]:
    """One transition of an alert's history."""
    return {"at": at, "status": status, "by": by, "why": why}


async def decide(
    book: Book,
    rule: Document,
    unit: UnitInfo,
    verdict: Verdict,
    *,
    period: str,
    cause: Envelope[Any] | None,
) -> None:
    """Act on a rule kind's verdict for one fingerprint: raise, resolve, or set its recheck timer."""
    key = fingerprint(rule["_id"], unit.unit_id)
    alert = book.open_alerts.get(key)
    if verdict.recheck_at is not None:
        schedule(
            book.unit,
            kind=RECHECK,
            key=key,
            org=unit.org,
            due_at=verdict.recheck_at,
            payload={"rule_id": rule["_id"], "unit_id": unit.unit_id},
        )
    if verdict.holds is True and alert is None:
        await raise_alert(book, rule, unit, verdict, period=period, cause=cause)
    elif verdict.holds is False and alert is not None:
        await resolve(
            book, alert, value=verdict.value, by="system", why=verdict.reason or "condition cleared", cause=cause
        )


async def raise_alert(
    book: Book, rule: Document, unit: UnitInfo, verdict: Verdict, *, period: str, cause: Envelope[Any] | None
) -> Document:
    """Start an alert, put it in its group, tell the others, and schedule its notification and escalation."""
    params = params_of(rule)
    group = await _join_group(book, rule, unit)
    alert: Document = {
        "_id": new_id("al"),
        "org": unit.org,
        "rule_id": rule["_id"],
        "rule_revision": rule["revision"],
        "rule_name": rule["name"],
        "kind": params.kind,
        "fingerprint": fingerprint(rule["_id"], unit.unit_id),
        "group_id": group["_id"],
        "unit_id": unit.unit_id,
        "unit_path": unit.path,
        "lineage": lineage(unit.path),
        "indicator": params.indicator,
        "period": period,
        "level": rule["level"],
        "status": "firing",
        "open": True,
        "value": verdict.value,
        "threshold": verdict.threshold,
        "clear_bound": verdict.clear_bound,
        "comparison": verdict.comparison,
        "sample_size": verdict.sample_size,
        "reason": verdict.reason,
        "details": verdict.details,
        "started_at": book.now,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "comment": None,
        "resolved_at": None,
        "notified": False,
        "suppressed": None,
        "escalation_step": 0,
        "history": [history("firing", "system", verdict.reason, book.now)],
    }
    book.open_alerts[alert["fingerprint"]] = alert
    book.touch_alert(alert)
    group["alert_ids"].append(alert["_id"])
    group["open_alert_ids"].append(alert["_id"])
    if unit.path not in group["unit_paths"]:
        group["unit_paths"].append(unit.path)
    book.publish(
        ThresholdBreached(
            org=unit.org,
            unit_id=unit.unit_id,
            unit_path=unit.path,
            alert_id=alert["_id"],
            group_id=group["_id"],
            rule_id=rule["_id"],
            rule_revision=rule["revision"],
            rule_kind=params.kind,
            rule_name=rule["name"],
            fingerprint=alert["fingerprint"],
            indicator=params.indicator,
            value=verdict.value if verdict.value is not None else 0.0,
            threshold=verdict.threshold if verdict.threshold is not None else 0.0,
            clear_bound=verdict.clear_bound,
            comparison=verdict.comparison,
            level=rule["level"],
            sample_size=verdict.sample_size,
            period=period,
        ),
        cause,
    )
    await _schedule_group_notification(book, group)
    return alert


async def _join_group(book: Book, rule: Document, unit: UnitInfo) -> Document:
    key = grouping.group_key(rule["_id"], unit.path, rule.get("group_depth", 1))
    group = await book.open_group(key)
    if group is not None and book.now - group["opened_at"] > timedelta(seconds=book.settings.group_window_seconds):
        # Past its window the group takes no new alerts: a later decline is another problem, told anew.
        group["joinable"] = False
        book.touch_group(group)
        group = None
    if group is None:
        group = {
            "_id": new_id("grp"),
            "org": unit.org,
            "key": key,
            "open": True,
            "joinable": True,
            "rule_id": rule["_id"],
            "rule_name": rule["name"],
            "rule_revision": rule["revision"],
            "level": rule["level"],
            "root": grouping.group_root(unit.path, rule.get("group_depth", 1)),
            "alert_ids": [],
            "open_alert_ids": [],
            "unit_paths": [],
            "opened_at": book.now,
            "closed_at": None,
            "notified_at": None,
            "notify_pending": False,
            "escalation_next": 0,
        }
        book.groups[key] = group
        chain = await book.chain(unit.org, rule["level"])
        due = escalation.due_at(book.now, [escalation.Step(**s) for s in chain["steps"]], 0) if chain else None
        if due is not None:
            schedule(
                book.unit,
                kind=ESCALATE,
                key=f"{group['_id']}:0",
                org=unit.org,
                due_at=due,
                payload={"group_id": group["_id"], "step": 0},
            )
    book.touch_group(group)
    return group


async def _schedule_group_notification(book: Book, group: Document) -> None:
    """One notification per group: after group_wait for a new group, after group_interval for joiners."""
    if group["notify_pending"]:
        return
    if group["notified_at"] is None:
        due = group["opened_at"] + timedelta(seconds=book.settings.group_wait_seconds)
    else:
        due = max(book.now, group["notified_at"] + timedelta(seconds=book.settings.group_interval_seconds))
    group["notify_pending"] = True
    schedule_notification(book.unit, group, "firing", due)


def schedule_notification(unit: UnitOfWork, group: Document, kind: str, due: datetime) -> None:
    """Stage the job that decides a group's notification of this kind."""
    schedule(
        unit,
        kind=NOTIFY,
        key=f"{group['_id']}:{kind}",
        org=group["org"],
        due_at=due,
        payload={"group_id": group["_id"], "kind": kind},
    )


async def resolve(
    book: Book, alert: Document, *, value: float | None, by: str, why: str, cause: Envelope[Any] | None
) -> None:
    """Resolve an open alert; close its group when it was the last one open, and say so."""
    alert.update(status="resolved", open=False, resolved_at=book.now)
    if value is not None:
        alert["value"] = value
    alert["history"] = [*alert["history"], history("resolved", by, why, book.now)]
    book.open_alerts.pop(alert["fingerprint"], None)
    book.touch_alert(alert)
    cancel(book.unit, kind=REMIND, key=alert["_id"])
    book.publish(
        AlertResolved(
            org=alert["org"],
            unit_id=alert["unit_id"],
            unit_path=alert["unit_path"],
            alert_id=alert["_id"],
            group_id=alert["group_id"],
            rule_id=alert["rule_id"],
            fingerprint=alert["fingerprint"],
            indicator=alert["indicator"],
            value=alert["value"] if alert["value"] is not None else 0.0,
        ),
        cause,
    )
    await _leave_group(book, alert)
    if alert["level"] == "red":
        schedule(
            book.unit,
            kind=RELEASE,
            key=alert["_id"],
            org=alert["org"],
            due_at=book.now,
            payload={"unit_path": alert["unit_path"], "indicator": alert["indicator"]},
        )


async def _leave_group(book: Book, alert: Document) -> None:
    """Take a resolved alert out of its group's open members; the last one closes the group."""
    opened = [g for g in book.groups.values() if g is not None and g["_id"] == alert["group_id"]]
    group = opened[0] if opened else await book.group(alert["group_id"])
    if group is None:
        return
    group["open_alert_ids"] = [i for i in group["open_alert_ids"] if i != alert["_id"]]
    if not group["open_alert_ids"]:
        group.update(open=False, joinable=False, closed_at=book.now)
        book.groups.pop(group["key"], None)
        cancel(book.unit, kind=ESCALATE, key=f"{group['_id']}:{group['escalation_next']}")
        if group["notified_at"] is not None:
            schedule_notification(book.unit, group, "resolved", book.now)
    book.touch_group(group)


def acknowledge(
    book: Book, alert: Document, *, by: str, comment: str, patience_minutes: int, cause: Envelope[Any] | None
) -> bool:
    """Take a firing alert in hand; False if it was not firing. A reminder comes after the patience."""
    if alert["status"] != "firing":
        return False
    alert.update(status="acknowledged", acknowledged_at=book.now, acknowledged_by=by, comment=comment or None)
    alert["history"] = [*alert["history"], history("acknowledged", by, comment, book.now)]
    book.touch_alert(alert)
    book.publish(
        AlertAcknowledged(
            org=alert["org"],
            unit_id=alert["unit_id"],
            unit_path=alert["unit_path"],
            alert_id=alert["_id"],
            group_id=alert["group_id"],
            by=by,
            comment=comment,
        ),
        cause,
    )
    # One acknowledgement notice per group however many of its alerts are taken in hand together.
    schedule(
        book.unit,
        kind=NOTIFY,
        key=f"{alert['group_id']}:acknowledged",
        org=alert["org"],
        due_at=book.now,
        payload={"group_id": alert["group_id"], "kind": "acknowledged"},
    )
    schedule(
        book.unit,
        kind=REMIND,
        key=alert["_id"],
        org=alert["org"],
        due_at=book.now + timedelta(minutes=patience_minutes),
        payload={"alert_id": alert["_id"]},
    )
    return True
