"""A signed webhook reaches a real receiver whose Standard Webhooks check passes, and is retried after an outage."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.alerts.notify import (
    ChannelCreate,
    SecretBox,
    WebhookConfig,
    channel_config,
    channel_document,
    new_key,
    new_webhook_secret,
    next_retry_delay,
    send,
)
from tests.integration.alerts.notify.conftest import Receivers, firing


async def test_webhook__fails_during_the_receivers_outage_then_is_delivered_with_the_same_id(
    receivers: Receivers, http
):
    # The channel goes through its stored form, as the delivery job reads it.
    box = SecretBox(new_key())
    channel_in = ChannelCreate(
        name="Ops",
        config={"type": "webhook", "url": f"{receivers.base_url}/hooks/ql", "secret": receivers.webhook_secret},
    )
    config = channel_config(channel_document(channel_in, box=box, id="chn_1", org="acme", now=datetime.now(UTC)), box)
    receivers.webhook_outages = 1
    notification = firing(unit_paths=("north/hebei/a", "north/hebei/b"))

    first = await send(config, notification, http=http, message_id="dlv_retry")
    assert (first.ok, first.status_code, first.retryable) == (False, 503, True)
    assert "down for maintenance" in (first.error or "")
    assert next_retry_delay(1) is not None  # the job would schedule the second try

    second = await send(config, notification, http=http, message_id="dlv_retry")
    assert (second.ok, second.status_code, second.error) == (True, 204, None)

    tries = [r for r in receivers.received if r.headers.get("webhook-id") == "dlv_retry"]
    assert [(r.accepted, r.reason) for r in tries] == [(False, "outage"), (True, "")]
    assert receivers.delivered_ids.count("dlv_retry") == 1
    body = json.loads(tries[1].body)
    assert body["type"] == "alert.firing" and body["id"] == "dlv_retry"
    assert body["data"]["unit_paths"] == ["north/hebei/a", "north/hebei/b"]
    assert (body["data"]["value"], body["data"]["bound"], body["data"]["sample_size"]) == (58.25, 70.0, 42)
    # Same message on both tries: the body is identical, only the signature's timestamp may move.
    assert tries[0].body == tries[1].body


async def test_webhook__signed_with_another_secret_is_refused_and_not_retried(receivers: Receivers, http):
    config = WebhookConfig(url=f"{receivers.base_url}/hooks/ql", secret=new_webhook_secret())
    attempt = await send(config, firing(), http=http, message_id="dlv_wrong")
    assert (attempt.ok, attempt.status_code, attempt.retryable) == (False, 401, False)
    assert not receivers.last("/hooks/ql").accepted
    assert "dlv_wrong" not in receivers.delivered_ids


async def test_webhook__a_rate_limited_receivers_retry_after_sets_the_next_delay(receivers: Receivers, http):
    config = WebhookConfig(url=f"{receivers.base_url}/busy", secret=receivers.webhook_secret)
    attempt = await send(config, firing(), http=http, message_id="dlv_busy")
    assert (attempt.ok, attempt.status_code, attempt.retryable, attempt.retry_after_seconds) == (False, 429, True, 120)
    delay = next_retry_delay(1, retry_after_seconds=attempt.retry_after_seconds)
    assert delay is not None and delay.total_seconds() == 120
    assert attempt.as_document()["retry_after_seconds"] == 120
