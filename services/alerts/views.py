"""The alerts service's REST API: rules, alerts, silences, channels, escalation chains. Translation only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from services.alerts import service
from services.alerts.dependencies import RuntimeDep
from services.alerts.models import (
    AcknowledgeIn,
    AlertStatus,
    ChainPut,
    Counts,
    PolicyPut,
    PolicyRead,
    ResolveIn,
    RuleCreate,
    RuleRead,
    SilenceCreate,
    SilenceRead,
    TryRequest,
    TryResult,
)
from services.alerts.notify import ChannelCreate, ChannelRead, ChannelUpdate
from services.alerts.rules.base import Level
from shared.auth import CurrentPrincipal
from shared.contract import Moment
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

# The counts' default look back at resolved alerts (the open ones are all counted, whenever they began).
RESOLVED_COUNTED_DAYS = timedelta(days=30)

router = APIRouter(prefix="/api/v1")
# Roles are enforced per operation by shared/access.py (quality_manager to change, unit_manager to acknowledge).
Manager = CurrentPrincipal
Acknowledger = CurrentPrincipal
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
LevelPath = Level


# --- rules -------------------------------------------------------------------------------------------------------


@router.post("/rules", status_code=status.HTTP_201_CREATED, response_model=RuleRead, tags=["rules"])
async def create_rule(
    runtime: RuntimeDep, principal: Manager, rule_in: Annotated[RuleCreate, Body()]
) -> dict[str, Any]:
    """Add a rule of any kind (threshold when no kind is given)."""
    return await service.create_rule(runtime, principal, rule_in.model_dump(by_alias=True))


@router.get("/rules", response_model=Page, tags=["rules"])
async def list_rules(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The rules that concern the caller's subtrees."""
    return await service.list_rules(runtime, principal, cursor=cursor, limit=limit)


@router.get("/rules/{rule_id}", response_model=RuleRead, tags=["rules"])
async def get_rule(rule_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One rule."""
    return service.rule_view(await service.get_rule(runtime, principal, rule_id))


@router.put("/rules/{rule_id}", response_model=RuleRead, tags=["rules"])
async def update_rule(
    rule_id: str, runtime: RuntimeDep, principal: Manager, rule_in: Annotated[RuleCreate, Body()]
) -> dict[str, Any]:
    """Replace a rule's definition: a new revision."""
    return await service.update_rule(runtime, principal, rule_id, rule_in.model_dump(by_alias=True))


@router.post("/rules/{rule_id}/disable", response_model=RuleRead, tags=["rules"])
async def disable_rule(rule_id: str, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Stop evaluating a rule (a new revision)."""
    return await service.set_rule_enabled(runtime, principal, rule_id, False)


@router.post("/rules/{rule_id}/enable", response_model=RuleRead, tags=["rules"])
async def enable_rule(rule_id: str, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Evaluate a disabled rule again (a new revision)."""
    return await service.set_rule_enabled(runtime, principal, rule_id, True)


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["rules"])
async def delete_rule(rule_id: str, runtime: RuntimeDep, principal: Manager) -> Response:
    """Delete a rule; its alerts stay."""
    await service.delete_rule(runtime, principal, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/rules/try", response_model=TryResult, tags=["rules"])
async def try_new_rule(try_in: TryRequest, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Evaluate a rule that is not saved against a unit's stored history."""
    return await service.try_rule(runtime, principal, None, try_in)


@router.post("/rules/{rule_id}/try", response_model=TryResult, tags=["rules"])
async def try_saved_rule(
    rule_id: str, try_in: TryRequest, runtime: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Evaluate a saved rule against a unit's stored history."""
    return await service.try_rule(runtime, principal, rule_id, try_in)


# --- alerts ------------------------------------------------------------------------------------------------------


@router.get("/alerts", response_model=Page, tags=["alerts"])
async def list_alerts(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    status: AlertStatus | None = None,
    level: Level | None = None,
    unit: Annotated[str | None, Query(description="A unit path: its subtree's alerts")] = None,
    rule_id: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page:
    """Alerts on units the caller may see, newest start first, filtered.

    A page may hold fewer items than ``limit`` (even none) with a ``next_cursor``: follow it until null.
    """
    selection = service.select_alerts(
        principal, status=status, level=level, unit=unit, rule_id=rule_id, since=since, until=until
    )
    return await service.list_alerts(runtime, principal, selection, cursor=cursor, limit=limit)


@router.get("/alerts/counts", response_model=Counts, tags=["alerts"])
async def count_alerts(
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    unit: Annotated[str | None, Query(description="A unit path: its subtree's alerts")] = None,
    resolved_since: Annotated[
        Moment | None, Query(description="Count the alerts resolved since (default: 30 days ago)")
    ] = None,
) -> dict[str, Any]:
    """A subtree's open alerts, and those resolved since a moment, counted by level and by status."""
    since = resolved_since or datetime.now(UTC) - RESOLVED_COUNTED_DAYS
    return await service.count_alerts(runtime, principal, unit, resolved_since=since)


@router.get("/alerts/{alert_id}", tags=["alerts"])
async def get_alert(alert_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One alert with its history, its group, and the delivery log of its notifications."""
    return await service.get_alert(runtime, principal, alert_id)


@router.post("/alerts/{alert_id}/acknowledge", tags=["alerts"])
async def acknowledge_alert(
    alert_id: str, runtime: RuntimeDep, principal: Acknowledger, ack_in: AcknowledgeIn | None = None
) -> dict[str, Any]:
    """Take a firing alert in hand, with a comment every later reader sees."""
    return await service.acknowledge_alert(runtime, principal, alert_id, ack_in or AcknowledgeIn())


@router.post("/alerts/{alert_id}/resolve", tags=["alerts"])
async def resolve_alert(
    alert_id: str, runtime: RuntimeDep, principal: Acknowledger, resolve_in: ResolveIn | None = None
) -> dict[str, Any]:
    """Resolve an open alert by hand."""
    return await service.resolve_alert(runtime, principal, alert_id, resolve_in or ResolveIn())


# --- silences ----------------------------------------------------------------------------------------------------


@router.post("/silences", status_code=status.HTTP_201_CREATED, response_model=SilenceRead, tags=["silences"])
async def create_silence(silence_in: SilenceCreate, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Add a silence: matching alerts are recorded but not notified while it holds."""
    return await service.create_silence(runtime, principal, silence_in)


@router.get("/silences", response_model=Page, tags=["silences"])
async def list_silences(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The silences that concern the caller's subtrees."""
    return await service.list_silences(runtime, principal, cursor=cursor, limit=limit)


@router.get("/silences/{silence_id}", response_model=SilenceRead, tags=["silences"])
async def get_silence(silence_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One silence."""
    return service.silence_view(await service.get_silence(runtime, principal, silence_id))


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["silences"])
async def expire_silence(silence_id: str, runtime: RuntimeDep, principal: Manager) -> Response:
    """End a silence now."""
    await service.expire_silence(runtime, principal, silence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- channels ----------------------------------------------------------------------------------------------------


@router.post("/channels", status_code=status.HTTP_201_CREATED, response_model=ChannelRead, tags=["channels"])
async def create_channel(channel_in: ChannelCreate, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Add a notification channel (webhook, email, WeCom, DingTalk, Feishu, Slack); secrets are never shown."""
    return await service.create_channel(runtime, principal, channel_in)


@router.get("/channels", response_model=Page, tags=["channels"])
async def list_channels(
    runtime: RuntimeDep, principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page:
    """The channels that concern the caller's subtrees."""
    return await service.list_channels(runtime, principal, cursor=cursor, limit=limit)


@router.get("/channels/{channel_id}", response_model=ChannelRead, tags=["channels"])
async def get_channel(channel_id: str, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One channel."""
    return service.channel_view(await service.get_channel(runtime, principal, channel_id))


@router.patch("/channels/{channel_id}", response_model=ChannelRead, tags=["channels"])
async def update_channel(
    channel_id: str, channel_in: ChannelUpdate, runtime: RuntimeDep, principal: Manager
) -> dict[str, Any]:
    """Change a channel."""
    return await service.update_channel(runtime, principal, channel_id, channel_in)


@router.delete("/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["channels"])
async def delete_channel(channel_id: str, runtime: RuntimeDep, principal: Manager) -> Response:
    """Remove a channel."""
    await service.delete_channel(runtime, principal, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/channels/{channel_id}/test", tags=["channels"])
async def test_channel(channel_id: str, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Send a sample notification through the channel now; answer how it went."""
    return await service.test_channel(runtime, principal, channel_id)


# --- escalation chains and the organisation's policy -------------------------------------------------------------


@router.get("/escalations/policy", response_model=PolicyRead, tags=["escalations"])
async def get_policy(runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organisation's time zone (for silences) and patience (for re-notifying acknowledged alerts)."""
    return await service.get_policy(runtime, principal)


@router.put("/escalations/policy", response_model=PolicyRead, tags=["escalations"])
async def put_policy(policy_in: PolicyPut, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Set the organisation's time zone and patience (organisation-wide token)."""
    return await service.put_policy(runtime, principal, policy_in)


@router.get("/escalations", tags=["escalations"])
async def list_chains(runtime: RuntimeDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The organisation's escalation chains, one per level at most."""
    return await service.list_chains(runtime, principal)


@router.get("/escalations/{level}", tags=["escalations"])
async def get_chain(level: LevelPath, runtime: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One level's escalation chain."""
    return await service.get_chain(runtime, principal, level)


@router.put("/escalations/{level}", tags=["escalations"])
async def put_chain(level: LevelPath, chain_in: ChainPut, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    """Set one level's escalation chain (organisation-wide token)."""
    return await service.put_chain(runtime, principal, level, chain_in)


@router.delete("/escalations/{level}", status_code=status.HTTP_204_NO_CONTENT, tags=["escalations"])
async def delete_chain(level: LevelPath, runtime: RuntimeDep, principal: Manager) -> Response:
    """Remove one level's escalation chain."""
    await service.delete_chain(runtime, principal, level)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
