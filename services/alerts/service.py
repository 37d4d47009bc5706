"""REST use cases of the alerts service: load, decide, stage into a unit of work, commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from services.alerts import evaluation, notifying, pipeline, repository, rules
from services.alerts.dependencies import AlertsRuntime
from services.alerts.escalation import ChainSpec
from services.alerts.models import (
    COMMON_FIELDS,
    AcknowledgeIn,
    ChainPut,
    PolicyPut,
    ResolveIn,
    RuleCommon,
    RuleCreate,
    SilenceCreate,
    TryRequest,
)
from services.alerts.notify import (
    ChannelCreate,
    ChannelUpdate,
    SecretBox,
    channel_changes,
    channel_config,
    channel_document,
    channel_read,
    sample_notification,
    send,
)
from services.alerts.pipeline import Book
from services.alerts.silences import zone
from shared import audit
from shared.auth import Principal
from shared.ids import new_id
from shared.pagination import PAGE_KEYS, Page, keyset_page, overlapping_scopes, public_view, visible_scopes
from shared.problems import NotFound, Problem, validation_errors
from shared.storage import Document, apply, in_transaction
from shared.tree import WHOLE_ORGANISATION, in_subtree

# Without an index system from scoring yet, an organisation scores with the default one.
DEFAULT_INDICATORS = frozenset(
    {"composite", "csat", "nps", "ces", "dimensions", "sentiment", "servqual"}
    | {f"dimension.{d}" for d in ("effect", "speed", "attitude", "reliability", "cost", "innovation")}
)
RULE_CREATE: TypeAdapter[RuleCommon] = TypeAdapter(RuleCreate)
T = TypeVar("T")


def now_utc() -> datetime:
    """The present, in UTC."""
    return datetime.now(UTC)


def _box(runtime: AlertsRuntime) -> SecretBox:
    return SecretBox(runtime.settings.secret_key.get_secret_value())


def _within_scopes(principal: Principal, scope: str, what: str) -> None:
    """A rule's, silence's or channel's scope must lie inside the writer's own scopes."""
    if not principal.can_see(scope) or (scope == WHOLE_ORGANISATION and not principal.sees_whole_organisation):
        raise Problem(403, "Forbidden", f"the {what}'s scope {scope!r} lies outside your scopes")


def _overlaps(principal: Principal, scope: str) -> bool:
    """Whether a scoped object concerns the principal: its scope is inside, or above, one of theirs."""
    return principal.can_see(scope) or any(in_subtree(mine, scope) for mine in principal.scopes)


def _visible(document: Document | None, principal: Principal, kind: str, ident: str) -> Document:
    if document is None or document.get("org") != principal.org or not _overlaps(principal, document["scope"]):
        raise NotFound(kind, ident)
    return document


# --- rules -------------------------------------------------------------------------------------------------------


def parse_rule(body: Any) -> RuleCommon:
    """A posted rule, validated by its kind; 422 naming each field at fault."""
    try:
        return RULE_CREATE.validate_python(body)
    except ValidationError as error:
        raise Problem(422, "Invalid rule", "see errors", errors=validation_errors(error.errors())) from error


async def _check_indicator(runtime: AlertsRuntime, org: str, rule_in: RuleCommon) -> None:
    params = rule_params(rule_in)
    if params.kind in ("event", "burn_rate"):
        return
    stored = await repository.get_one(runtime.db, repository.INDICATORS, org)
    known = set(stored["indicators"]) | {"composite"} if stored else DEFAULT_INDICATORS
    if params.indicator not in known:
        raise Problem(
            422,
            "Invalid rule",
            f"indicator {params.indicator!r} is not in the organisation's index system",
            errors=[{"field": "indicator", "reason": f"one of: {', '.join(sorted(known))}"}],
        )


def rule_params(rule_in: RuleCommon) -> rules.AnyParams:
    """The kind's parameters of a posted rule."""
    body = rule_in.model_dump(by_alias=True, exclude=set(COMMON_FIELDS))
    return rules.parse(body)


def rule_view(document: Document) -> dict[str, Any]:
    """A stored rule as the API shows it: common fields and the kind's parameters side by side."""
    # Rules stored before the list keys also keep a scope_lineage.
    shown = public_view({k: v for k, v in document.items() if k not in ("params", "scope_lineage", "deleted")})
    return {**shown, **document["params"]}


async def create_rule(runtime: AlertsRuntime, principal: Principal, body: Any) -> Document:
    """Add a rule (revision 1)."""
    rule_in = parse_rule(body)
    _within_scopes(principal, rule_in.scope, "rule")
    await _check_indicator(runtime, principal.org, rule_in)
    now = now_utc()
    rule = {
        "_id": new_id("rule"),
        "org": principal.org,
        **rule_in.model_dump(include=set(COMMON_FIELDS)),
        "kind": rule_params(rule_in).kind,
        "params": rule_params(rule_in).model_dump(by_alias=True),
        "revision": 1,
        "deleted": False,
        "created_at": now,
        "created_by": principal.subject,
        "updated_at": now,
        "updated_by": principal.subject,
    }
    rule[PAGE_KEYS] = repository.scoped_page_keys(rule)
    unit = runtime.unit_of_work()
    unit.insert(repository.RULES, rule)
    unit.insert(repository.RULE_REVISIONS, repository.stamp(rule, now))
    audit.record(unit, principal, "create", "rule", rule["_id"], None, rule_view(rule))
    await runtime.commit(unit)
    return rule_view(rule)


async def get_rule(runtime: AlertsRuntime, principal: Principal, rule_id: str) -> Document:
    """One rule the principal may see (not deleted)."""
    rule = await repository.get_rule(runtime.db, principal.org, rule_id)
    if rule is not None and rule["deleted"]:
        rule = None
    return _visible(rule, principal, "rule", rule_id)


async def list_rules(runtime: AlertsRuntime, principal: Principal, *, cursor: str | None, limit: int) -> Page:
    """The rules that concern the principal's subtrees (set inside or above them), newest first."""
    return await _scoped_page(runtime, principal, repository.RULES, cursor=cursor, limit=limit, view=rule_view)


async def update_rule(runtime: AlertsRuntime, principal: Principal, rule_id: str, body: Any) -> Document:
    """Replace a rule's definition: a new revision; alerts say which revision fired."""
    current = await get_rule(runtime, principal, rule_id)
    _within_scopes(principal, current["scope"], "rule")
    rule_in = parse_rule(body)
    _within_scopes(principal, rule_in.scope, "rule")
    await _check_indicator(runtime, principal.org, rule_in)
    now = now_utc()
    rule = {
        **current,
        **rule_in.model_dump(include=set(COMMON_FIELDS)),
        "kind": rule_params(rule_in).kind,
        "params": rule_params(rule_in).model_dump(by_alias=True),
        "revision": current["revision"] + 1,
        "updated_at": now,
        "updated_by": principal.subject,
    }
    await _save_rule(runtime, rule, now, principal=principal, action="update", before=current)
    return rule_view(rule)


async def set_rule_enabled(runtime: AlertsRuntime, principal: Principal, rule_id: str, enabled: bool) -> Document:
    """Enable or disable a rule (a new revision)."""
    current = await get_rule(runtime, principal, rule_id)
    _within_scopes(principal, current["scope"], "rule")
    now = now_utc()
    rule = {
        **current,
        "enabled": enabled,
        "revision": current["revision"] + 1,
        "updated_at": now,
        "updated_by": principal.subject,
    }
    action = "enable" if enabled else "disable"
    await _save_rule(runtime, rule, now, principal=principal, action=action, before=current)
    return rule_view(rule)


async def delete_rule(runtime: AlertsRuntime, principal: Principal, rule_id: str) -> None:
    """Delete a rule; its alerts and revisions stay readable."""
    current = await get_rule(runtime, principal, rule_id)
    _within_scopes(principal, current["scope"], "rule")
    now = now_utc()
    rule = {
        **current,
        "deleted": True,
        "enabled": False,
        "revision": current["revision"] + 1,
        "updated_at": now,
        "updated_by": principal.subject,
    }
    await _save_rule(runtime, rule, now, principal=principal, action="delete", before=current)


async def _save_rule(
    runtime: AlertsRuntime, rule: Document, now: datetime, *, principal: Principal, action: str, before: Document
) -> None:
    """Store a rule's new revision, audited; a rule disabled or deleted resolves its open alerts with it."""
    by = principal.subject
    rule = {**rule, PAGE_KEYS: repository.scoped_page_keys(rule)}

    async def work(book: Book) -> None:
        repository.put(book.unit, repository.RULES, rule)
        book.unit.insert(repository.RULE_REVISIONS, repository.stamp(rule, now))
        after = None if rule["deleted"] else rule_view(rule)
        audit.record(book.unit, principal, action, "rule", rule["_id"], rule_view(before), after)
        if rule["enabled"]:
            return
        # A rule no longer evaluated would never clear its alerts: they resolve with it.
        why = "rule deleted" if rule["deleted"] else "rule disabled"
        for stored in await repository.list_open_rule_alerts(
            runtime.db, rule["org"], rule["_id"], session=book.session
        ):
            alert = await book.alert(stored["_id"]) or stored
            book.open_alerts[alert["fingerprint"]] = alert
            await pipeline.resolve(book, alert, value=None, by=by, why=why, cause=None)

    await _in_transaction(runtime, work)


async def try_rule(
    runtime: AlertsRuntime, principal: Principal, rule_id: str | None, try_in: TryRequest
) -> dict[str, Any]:
    """Evaluate a rule (saved, or posted) against a unit's stored history: when it would have fired and cleared."""
    if try_in.rule is not None:
        params = rule_params(parse_rule(try_in.rule))
    elif rule_id is not None:
        params = pipeline.params_of(await get_rule(runtime, principal, rule_id))
    else:
        raise Problem(422, "Invalid request", "give a rule to try", errors=[{"field": "rule", "reason": "required"}])
    if rules.source_of(params) != "score":
        raise Problem(
            422,
            "Cannot try this rule",
            f"{params.kind} rules read single feedback, which is not stored here",
            errors=[{"field": "rule.kind", "reason": "only score-driven kinds can be tried"}],
        )
    unit = await repository.get_one(runtime.db, repository.UNITS, repository.unit_key(principal.org, try_in.unit_id))
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", try_in.unit_id)
    series = await repository.get_one(
        runtime.db, repository.SERIES, repository.series_key(principal.org, try_in.unit_id, params.period)
    )
    transitions, firing, points = evaluation.try_rule(params, series)
    return {
        "unit_id": try_in.unit_id,
        "unit_path": unit["path"],
        "period": params.period,
        "points": points,
        "transitions": transitions,
        "firing_at_end": firing,
    }


# --- alerts ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSelection:
    """Which alerts a list reads: the subtrees (their keys, per status if one is asked) and the other filters."""

    scopes: list[str]
    match: dict[str, Any]
    since: datetime | None
    until: datetime | None


def select_alerts(
    principal: Principal,
    *,
    status: str | None = None,
    level: str | None = None,
    unit: str | None = None,
    rule_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AlertSelection:
    """The alerts the principal may see, narrowed by the given criteria; 404 for a unit outside its scopes."""
    if unit is not None and not principal.can_see(unit):
        raise NotFound("unit", unit)
    scopes = visible_scopes(principal.scopes, unit)
    if status is not None:
        # A status has key ranges of its own: the firing list never reads the resolved past.
        scopes = [repository.status_scope(scope, status) for scope in scopes]
    match = {name: value for name, value in (("level", level), ("rule_id", rule_id)) if value is not None}
    return AlertSelection(scopes, match, since, until)


def alert_view(document: Document) -> dict[str, Any]:
    """A stored alert as the API shows it."""
    return public_view({k: v for k, v in document.items() if k not in ("open", "details")}) | {
        "details": document.get("details", {})
    }


async def list_alerts(
    runtime: AlertsRuntime, principal: Principal, selection: AlertSelection, *, cursor: str | None, limit: int
) -> Page:
    """A page of the selected alerts, newest start first (keyset: costs the page, not the collection)."""
    return await keyset_page(
        runtime.db,
        repository.ALERTS,
        org=principal.org,
        scopes=selection.scopes,
        cursor=cursor,
        limit=limit,
        match=selection.match,
        since=selection.since,
        until=selection.until,
        view=alert_view,
    )


async def _visible_alert(runtime: AlertsRuntime, principal: Principal, alert_id: str) -> Document:
    alert = await repository.get_one(runtime.db, repository.ALERTS, alert_id)
    if alert is None or not principal.can_read(alert):
        raise NotFound("alert", alert_id)
    return alert


async def get_alert(runtime: AlertsRuntime, principal: Principal, alert_id: str) -> dict[str, Any]:
    """One alert with its history, its group and its group's delivery log."""
    alert = await _visible_alert(runtime, principal, alert_id)
    group = await repository.get_one(runtime.db, repository.GROUPS, alert["group_id"])
    deliveries = await repository.list_group_deliveries(runtime.db, alert["group_id"])
    notifications = await repository.list_group_notifications(runtime.db, alert["group_id"])
    return {
        **alert_view(alert),
        "group": public_view({k: v for k, v in group.items() if k != "key"}) if group else None,
        "notifications": [public_view(n) for n in notifications],
        "deliveries": [
            public_view({k: v for k, v in d.items() if k != "notification"})
            for d in deliveries
            if alert_id in d["alert_ids"] or d["kind"] == "resolved"
        ],
    }


async def _in_transaction(runtime: AlertsRuntime, work: Callable[[Book], Awaitable[T]]) -> T:
    """Read, decide and write an alert's change in one transaction of its own (not the group commit), so a
    consumer's concurrent change of the same alert conflicts and one of them runs again on the new state."""
    result: list[T] = []

    async def attempt(session: AsyncClientSession) -> list[Document]:
        book = Book(runtime.db, session, runtime.unit_of_work(), runtime.settings)
        result[:] = [await work(book)]
        book.flush()
        return await apply(runtime.db, session, [book.unit])

    runtime.relay.hand_over(await in_transaction(runtime.client, attempt))
    return result[0]


async def acknowledge_alert(
    runtime: AlertsRuntime, principal: Principal, alert_id: str, ack_in: AcknowledgeIn
) -> dict[str, Any]:
    """Take a firing alert in hand, with a comment; 409 if it is not firing."""
    await _visible_alert(runtime, principal, alert_id)

    async def work(book: Book) -> Document:
        alert = await book.alert(alert_id)
        assert alert is not None
        patience = (await notifying.policy(book, principal.org))["patience_minutes"]
        if not pipeline.acknowledge(
            book, alert, by=principal.subject, comment=ack_in.comment, patience_minutes=patience, cause=None
        ):
            raise Problem(409, "Conflict", f"the alert is {alert['status']}; only a firing alert can be acknowledged")
        return alert

    return alert_view(await _in_transaction(runtime, work))


async def resolve_alert(
    runtime: AlertsRuntime, principal: Principal, alert_id: str, resolve_in: ResolveIn
) -> dict[str, Any]:
    """Resolve an open alert by hand (an event alert, say); 409 if it is resolved already."""
    await _visible_alert(runtime, principal, alert_id)

    async def work(book: Book) -> Document:
        alert = await book.alert(alert_id)
        assert alert is not None
        if not alert["open"]:
            raise Problem(409, "Conflict", "the alert is resolved already")
        book.open_alerts[alert["fingerprint"]] = alert
        why = resolve_in.comment or "resolved by hand"
        await pipeline.resolve(book, alert, value=None, by=principal.subject, why=why, cause=None)
        return alert

    return alert_view(await _in_transaction(runtime, work))


async def count_alerts(
    runtime: AlertsRuntime, principal: Principal, unit: str | None, *, resolved_since: datetime
) -> dict[str, Any]:
    """A subtree's open alerts and those resolved since a moment, by level and status (default: the caller's).

    Each status is a key range of its own, so the count reads the open alerts and the recent resolved
    ones, never the whole history.
    """
    selection = select_alerts(principal, unit=unit)
    rows = []
    for status in repository.ALERT_STATUSES:
        since = resolved_since if status == "resolved" else None
        rows += await repository.list_alert_levels(runtime.db, principal.org, selection.scopes, status, since=since)
    by_level: dict[str, int] = {}
    by_status: dict[str, int] = {}
    both: dict[str, dict[str, int]] = {}
    for row in rows:
        level, status = row["level"], row["status"]
        by_level[level] = by_level.get(level, 0) + 1
        by_status[status] = by_status.get(status, 0) + 1
        both.setdefault(level, {})[status] = both.get(level, {}).get(status, 0) + 1
    return {
        "unit": unit or ",".join(principal.scopes),
        "resolved_since": resolved_since,
        "by_level": by_level,
        "by_status": by_status,
        "by_level_and_status": both,
    }


# --- silences ----------------------------------------------------------------------------------------------------


def silence_view(document: Document) -> dict[str, Any]:
    """A stored silence as the API shows it."""
    return {
        "id": document["_id"],
        **document["spec"],
        "created_at": document["created_at"],
        "created_by": document["created_by"],
        "expired": document["expired"],
    }


async def create_silence(runtime: AlertsRuntime, principal: Principal, silence_in: SilenceCreate) -> dict[str, Any]:
    """Add a silence; its matchers' subtree must lie inside the writer's scopes."""
    _within_scopes(principal, silence_in.matchers.scope, "silence")
    silence_id = new_id("sil")
    silence = {
        "_id": silence_id,
        "org": principal.org,
        "scope": silence_in.matchers.scope,
        "spec": silence_in.model_dump(mode="json"),
        "expired": False,
        "created_at": now_utc(),
        "created_by": principal.subject,
    }
    silence[PAGE_KEYS] = repository.scoped_page_keys(silence)
    unit = runtime.unit_of_work()
    unit.insert(repository.SILENCES, silence)
    audit.record(unit, principal, "create", "silence", silence_id, None, silence_view(silence))
    await runtime.commit(unit)
    return silence_view(silence)


async def get_silence(runtime: AlertsRuntime, principal: Principal, silence_id: str) -> Document:
    """One silence the principal may see."""
    found = await repository.get_one(runtime.db, repository.SILENCES, silence_id)
    return _visible(found, principal, "silence", silence_id)


async def list_silences(runtime: AlertsRuntime, principal: Principal, *, cursor: str | None, limit: int) -> Page:
    """The silences that concern the principal's subtrees."""
    return await _scoped_page(runtime, principal, repository.SILENCES, cursor=cursor, limit=limit, view=silence_view)


async def expire_silence(runtime: AlertsRuntime, principal: Principal, silence_id: str) -> None:
    """End a silence now; the alerts it held back are told at once."""
    silence = await get_silence(runtime, principal, silence_id)
    _within_scopes(principal, silence["scope"], "silence")
    unit = runtime.unit_of_work()
    # Unlisted too: the list reads the live silences' keys only.
    expired = {"expired": True, "expired_at": now_utc(), PAGE_KEYS: []}
    repository.update(unit, repository.SILENCES, silence_id, {"$set": expired})
    before, after = silence_view(silence), silence_view({**silence, "expired": True})
    audit.record(unit, principal, "expire", "silence", silence_id, before, after)
    # What it held back is told now rather than at the end its window would have had.
    held = await repository.list_silenced_alerts(runtime.db, principal.org, silence_id)
    for group in await repository.list_by_ids(runtime.db, repository.GROUPS, sorted({a["group_id"] for a in held})):
        pipeline.schedule_notification(unit, group, "firing", now_utc())
    await runtime.commit(unit)


async def _scoped_page(
    runtime: AlertsRuntime,
    principal: Principal,
    collection: str,
    *,
    cursor: str | None,
    limit: int,
    view: Callable[[Document], dict[str, Any]],
) -> Page:
    """A page of rules, silences or channels set inside or above the principal's subtrees, newest first.

    Deleted rules and expired silences have no keys, so the list never reads them.
    """
    return await keyset_page(
        runtime.db,
        collection,
        org=principal.org,
        scopes=overlapping_scopes(principal.scopes),
        cursor=cursor,
        limit=limit,
        view=view,
    )


# --- channels ----------------------------------------------------------------------------------------------------


def channel_view(document: Document) -> dict[str, Any]:
    """A stored channel as the API shows it: never a secret."""
    return channel_read(document).model_dump(mode="json")


async def create_channel(runtime: AlertsRuntime, principal: Principal, channel_in: ChannelCreate) -> dict[str, Any]:
    """Add a channel; secrets are sealed at rest and never shown again."""
    _within_scopes(principal, channel_in.scope, "channel")
    document = channel_document(channel_in, box=_box(runtime), id=new_id("ch"), org=principal.org, now=now_utc())
    document[PAGE_KEYS] = repository.scoped_page_keys(document)
    unit = runtime.unit_of_work()
    unit.insert(repository.CHANNELS, document)
    # The channel as the API shows it: secrets never reach the log.
    audit.record(unit, principal, "create", "channel", document["_id"], None, channel_view(document))
    await runtime.commit(unit)
    return channel_view(document)


async def get_channel(runtime: AlertsRuntime, principal: Principal, channel_id: str) -> Document:
    """One channel the principal may see."""
    found = await repository.get_one(runtime.db, repository.CHANNELS, channel_id)
    return _visible(found, principal, "channel", channel_id)


async def list_channels(runtime: AlertsRuntime, principal: Principal, *, cursor: str | None, limit: int) -> Page:
    """The channels that concern the principal's subtrees."""
    return await _scoped_page(runtime, principal, repository.CHANNELS, cursor=cursor, limit=limit, view=channel_view)


async def update_channel(
    runtime: AlertsRuntime, principal: Principal, channel_id: str, channel_in: ChannelUpdate
) -> dict[str, Any]:
    """Change a channel; a new config replaces the old one, secrets included."""
    channel = await get_channel(runtime, principal, channel_id)
    _within_scopes(principal, channel["scope"], "channel")
    if channel_in.scope is not None:
        _within_scopes(principal, channel_in.scope, "channel")
    changes = channel_changes(channel_in, box=_box(runtime), now=now_utc())
    changes[PAGE_KEYS] = repository.scoped_page_keys({**channel, **changes})
    unit = runtime.unit_of_work()
    repository.update(unit, repository.CHANNELS, channel_id, {"$set": changes})
    after = channel_view({**channel, **changes})
    audit.record(unit, principal, "update", "channel", channel_id, channel_view(channel), after)
    await runtime.commit(unit)
    return after


async def delete_channel(runtime: AlertsRuntime, principal: Principal, channel_id: str) -> None:
    """Remove a channel; its delivery log stays."""
    channel = await get_channel(runtime, principal, channel_id)
    _within_scopes(principal, channel["scope"], "channel")
    unit = runtime.unit_of_work()
    unit.write(repository.CHANNELS, repository.delete_op(channel_id))
    audit.record(unit, principal, "delete", "channel", channel_id, channel_view(channel), None)
    await runtime.commit(unit)


async def test_channel(runtime: AlertsRuntime, principal: Principal, channel_id: str) -> dict[str, Any]:
    """Send a sample notification through a channel now; answer the attempt."""
    channel = await get_channel(runtime, principal, channel_id)
    _within_scopes(principal, channel["scope"], "channel")
    notification = sample_notification(
        org=principal.org, link=runtime.settings.link_base, at=now_utc(), channel_name=channel["name"]
    )
    async with httpx.AsyncClient() as http:
        attempt = await send(channel_config(channel, _box(runtime)), notification, http=http, message_id=new_id("test"))
    return attempt.as_document()


# --- escalation chains and policy --------------------------------------------------------------------------------


def _org_wide(principal: Principal) -> None:
    if not principal.sees_whole_organisation:
        raise Problem(403, "Forbidden", "escalation chains and the alerting policy need an organisation-wide token")


def chain_view(document: Document) -> dict[str, Any]:
    """A stored chain as the API shows it."""
    return {k: v for k, v in document.items() if k not in ("_id", "org")}


async def put_chain(runtime: AlertsRuntime, principal: Principal, level: str, chain_in: ChainPut) -> dict[str, Any]:
    """Set a level's escalation chain (org-wide tokens only)."""
    _org_wide(principal)
    spec = ChainSpec.model_validate({"level": level, "steps": [s.model_dump() for s in chain_in.steps]})
    document = {
        "_id": repository.chain_key(principal.org, level),
        "org": principal.org,
        **spec.model_dump(),
        "updated_at": now_utc(),
        "updated_by": principal.subject,
    }
    before = await repository.get_one(runtime.db, repository.ESCALATIONS, document["_id"])
    unit = runtime.unit_of_work()
    repository.put(unit, repository.ESCALATIONS, document)
    shown_before = chain_view(before) if before else None
    audit.record(unit, principal, "update", "escalation_chain", level, shown_before, chain_view(document))
    await runtime.commit(unit)
    return chain_view(document)


async def list_chains(runtime: AlertsRuntime, principal: Principal) -> list[dict[str, Any]]:
    """The organisation's escalation chains."""
    return [chain_view(d) for d in await repository.list_chains(runtime.db, principal.org)]


async def get_chain(runtime: AlertsRuntime, principal: Principal, level: str) -> dict[str, Any]:
    """One level's chain."""
    found = await repository.get_one(runtime.db, repository.ESCALATIONS, repository.chain_key(principal.org, level))
    if found is None:
        raise NotFound("escalation chain", level)
    return chain_view(found)


async def delete_chain(runtime: AlertsRuntime, principal: Principal, level: str) -> None:
    """Remove a level's chain: its alerts escalate no further."""
    _org_wide(principal)
    before = await get_chain(runtime, principal, level)
    unit = runtime.unit_of_work()
    unit.write(repository.ESCALATIONS, repository.delete_op(repository.chain_key(principal.org, level)))
    audit.record(unit, principal, "delete", "escalation_chain", level, before, None)
    await runtime.commit(unit)


async def get_policy(runtime: AlertsRuntime, principal: Principal) -> dict[str, Any]:
    """The organisation's time zone and patience."""
    book = Book(runtime.db, None, runtime.unit_of_work(), runtime.settings)
    return await notifying.policy(book, principal.org)


async def put_policy(runtime: AlertsRuntime, principal: Principal, policy_in: PolicyPut) -> dict[str, Any]:
    """Set the organisation's time zone and patience (org-wide tokens only)."""
    _org_wide(principal)
    try:
        zone(policy_in.timezone)
    except ValueError as error:
        raise Problem(
            422, "Invalid policy", str(error), errors=[{"field": "timezone", "reason": str(error)}]
        ) from error
    before = await get_policy(runtime, principal)
    unit = runtime.unit_of_work()
    repository.put(unit, repository.POLICIES, {"_id": principal.org, **policy_in.model_dump()})
    audit.record(unit, principal, "update", "escalation_policy", principal.org, before, policy_in.model_dump())
    await runtime.commit(unit)
    return policy_in.model_dump()
