"""Webhooks signed as the Standard Webhooks specification says (https://www.standardwebhooks.com)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, SecretStr, field_validator
from standardwebhooks.webhooks import Webhook

from services.alerts.notify import texts
from services.alerts.notify.channels.base import ChannelConfigBase, check_http_url
from services.alerts.notify.delivery import Attempt, json_body, post
from services.alerts.notify.notification import Language, Notification

SECRET_PREFIX = "whsec_"
# The specification's bounds on a secret's size.
SECRET_BYTES = (24, 64)
# A receiver refuses a message signed longer ago (or later) than this: the specification's replay window.
DEFAULT_TOLERANCE = timedelta(minutes=5)
USER_AGENT = "QualityLoop-Alerts/1"


class WebhookConfig(ChannelConfigBase):
    """A receiver's URL and the ``whsec_`` secret both sides share."""

    type: Literal["webhook"] = "webhook"
    url: str
    secret: SecretStr

    sealed_fields: ClassVar[tuple[str, ...]] = ("secret",)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_http_url(url)

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: SecretStr) -> SecretStr:
        secret_bytes(secret.get_secret_value())
        return secret


class WebhookRead(BaseModel):
    """A webhook channel as the API shows it: the secret only as set or not."""

    type: Literal["webhook"]
    language: Language
    url: str
    secret_set: bool


def new_webhook_secret() -> str:
    """A fresh signing secret in the specification's format: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key inside a ``whsec_<base64>`` secret, or a ValueError saying what is wrong."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX} (see notify.new_webhook_secret())")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"must be {SECRET_PREFIX} followed by base64") from error
    if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
        raise ValueError(f"must hold {SECRET_BYTES[0]} to {SECRET_BYTES[1]} bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body.decode())


def payload(notification: Notification, *, message_id: str, language: Language) -> dict[str, Any]:
    """The body: ``type``, ``id`` (the message id), ``timestamp`` (when it happened) and ``data``."""
    n = notification
    return {
        "type": f"alert.{n.kind}",
        "id": message_id,
        "timestamp": iso(n.occurred_at),
        "data": {
            "kind": n.kind,
            "org": n.org,
            "group_id": n.group_id,
            "alert_ids": list(n.alert_ids),
            "rule_id": n.rule_id,
            "rule_name": n.rule_name,
            "level": n.level,
            "indicator": n.indicator,
            "unit_paths": list(n.unit_paths),
            "value": n.value,
            "bound": n.bound,
            "sample_size": n.sample_size,
            "period": n.period,
            "started_at": iso(n.started_at),
            "escalation_step": n.escalation_step,
            "actor": n.actor,
            "comment": n.comment,
            "link": n.link,
            "language": language,
            "title": texts.title(n, language),
            "text": texts.plain_text(n, language),
        },
    }


def iso(at: datetime) -> str:
    """A time as RFC 3339 in UTC with a Z."""
    return texts.utc(at).isoformat().replace("+00:00", "Z")


def signed_headers(secret: str, message_id: str, body: bytes, *, now: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for a body, signed now (each retry signs afresh)."""
    timestamp = int((now or datetime.now(UTC)).timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


async def send(
    config: WebhookConfig, notification: Notification, *, http: httpx.AsyncClient, message_id: str
) -> Attempt:
    """POST the signed JSON body; the same ``webhook-id`` on every retry lets the receiver drop repeats."""
    body = json_body(payload(notification, message_id=message_id, language=config.language))
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    headers |= signed_headers(config.secret.get_secret_value(), message_id, body)
    return await post(http, config.url, content=body, headers=headers)


class WebhookRejected(Exception):
    """A webhook a receiver must refuse: a header missing, a stale or future timestamp, no matching signature."""


def verify_webhook(
    secret: str,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Any:
    """Check a received webhook as the specification says and return its parsed JSON body.

    Refuses a timestamp further than ``tolerance`` from ``now`` (a replay of an old message, or a clock
    far off) and any body whose signatures (space-separated ``v1,<base64>``) do not match.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and timestamp_text and signatures):
        raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError as error:
        raise WebhookRejected("webhook-timestamp is not whole seconds") from error
    age = (now or datetime.now(UTC)) - datetime.fromtimestamp(timestamp, UTC)
    if abs(age) > tolerance:
        raise WebhookRejected("webhook-timestamp outside the tolerance: a replay, or a clock far off")
    data = body if isinstance(body, bytes) else body.encode()
    expected = sign(secret, message_id, timestamp, data).encode()
    if not any(hmac.compare_digest(expected, offered.encode()) for offered in signatures.split(" ")):
        raise WebhookRejected("no signature matches")
    return json.loads(data)
