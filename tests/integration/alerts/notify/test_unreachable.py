"""An unreachable channel is a failed, retryable attempt: nothing raises, nothing blocks the caller."""

from __future__ import annotations

from devstack.processes import free_port
from services.alerts.notify import EmailConfig, WebhookConfig, WeComConfig, new_webhook_secret, send
from tests.integration.alerts.notify.conftest import Receivers, firing


async def test_webhook__to_a_closed_port_returns_a_failed_attempt(http):
    config = WebhookConfig(url=f"http://127.0.0.1:{free_port()}/hooks", secret=new_webhook_secret())
    attempt = await send(config, firing(), http=http, message_id="dlv_closed")
    assert (attempt.ok, attempt.status_code, attempt.retryable) == (False, None, True)
    assert (attempt.error or "").startswith("ConnectError")


async def test_robot__on_an_unresolvable_host_returns_a_failed_attempt(http):
    config = WeComConfig(url="http://nowhere.invalid/cgi-bin/webhook/send?key=k")
    attempt = await send(config, firing(), http=http, message_id="dlv_nohost")
    assert (attempt.ok, attempt.retryable) == (False, True)
    assert attempt.error


async def test_email__to_a_closed_port_returns_a_failed_attempt(http):
    config = EmailConfig(
        host="127.0.0.1", port=free_port(), security="none", sender="a@example.com", recipients=["b@example.com"]
    )
    attempt = await send(config, firing(), http=http, message_id="dlv_nomail")
    assert (attempt.ok, attempt.retryable) == (False, True)
    assert attempt.error


async def test_webhook__to_a_receiver_that_does_not_answer_gives_up_at_the_deadline(
    receivers: Receivers, http, monkeypatch
):
    monkeypatch.setattr("services.alerts.notify.delivery.HTTP_DEADLINE_SECONDS", 0.3)
    config = WebhookConfig(url=f"{receivers.base_url}/slow", secret=new_webhook_secret())
    attempt = await send(config, firing(), http=http, message_id="dlv_slow")
    assert (attempt.ok, attempt.status_code, attempt.retryable) == (False, None, True)
    assert attempt.error == "no answer within 0.3 s"
