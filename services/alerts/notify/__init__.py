"""Notification stage of the alerts pipeline: channel configs, secrets at rest, rendering, senders, retries.

Everything the rest of the alerts service needs is importable from ``services.alerts.notify``; the
package imports no pymongo, aiokafka, fastapi or opentelemetry (httpx and aiosmtplib only, to send).

Settings
    ``QL_ALERTS_SECRET_KEY`` (``AlertsSettings.secret_key: SecretStr``): one Fernet key, or several
    comma-separated to rotate (``new,old``: encrypts with the first, decrypts with any). Make one with
    ``python -c "from services.alerts.notify import new_key; print(new_key())"`` (= ``Fernet.generate_key()``:
    urlsafe base64 of 32 random bytes). The settings' built-in development key is public: production
    must set its own, and devstack can generate one into the data dir once (e.g.
    ``<data>/alerts-secret.key``, mode 0600) and pass it in the environment. Losing the key makes stored
    channel secrets unreadable (``SecretUnreadable`` from ``channel_config``) and those channels must be
    set again. Build ``SecretBox(settings.secret_key.get_secret_value())`` once at start-up (a malformed
    key raises ValueError there).

Channel schemas (API, in views)
    ``ChannelCreate``: name, scope (unit path, ``*`` = whole organisation), levels (default all four),
    enabled, config. ``ChannelUpdate``: the same, all optional; a ``config`` replaces the whole config,
    secrets included. ``ChannelRead``: id, org, name, scope, levels, enabled, config, created_at,
    updated_at; its ``config`` never holds a secret, password or robot token: ``secret_set`` /
    ``password_set`` booleans, robot URLs masked (``...?key=****abcd``).
    ``ChannelConfig`` is a discriminated union on ``type`` (validation errors name ``config.<type>.<field>``):
      - ``webhook``: url, secret (``whsec_`` + base64 of 24-64 bytes; ``new_webhook_secret()`` makes one)
      - ``email``: host, port (587), security (``starttls`` | ``ssl`` | ``none``), username, password
        (together or neither), sender (From), recipients (1-100 addresses)
      - ``wecom``: url (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``)
      - ``dingtalk``: url (``https://oapi.dingtalk.com/robot/send?access_token=...``), secret (optional, 加签)
      - ``feishu``: url (``https://open.feishu.cn/open-apis/bot/v2/hook/<token>``), secret (optional)
      - ``slack``: url (``https://hooks.slack.com/services/T.../B.../<token>``)
    Every config has ``language``: ``zh`` (default) or ``en``. ``ChannelConfigRead`` is the read union.

Stored form (in the lead's repository.py)
    ``channel_document(channel_in, box=, id=, org=, now=) -> dict`` (``_id`` = id; sealed fields
    encrypted under ``config.sealed``, masked URLs under ``config.masked``);
    ``channel_changes(channel_in: ChannelUpdate, box=, now=) -> dict`` (fields to ``$set``);
    ``channel_read(document) -> ChannelRead`` (decrypts nothing);
    ``channel_config(document, box) -> ChannelConfig`` (decrypted, to send with);
    lower level: ``stored_config(config, box)``, ``config_from_stored(stored, box)``, ``read_config(stored)``.

Notification (plain frozen dataclass, built by the lead from an alert group's change)
    ``Notification(kind, org, group_id, alert_ids, rule_name, level, indicator, unit_paths, value, bound,
    sample_size, period, started_at, link, occurred_at, escalation_step=None, rule_id=None, actor=None,
    comment=None, time_zone="UTC")``; kind: firing | resolved | acknowledged | escalated | reminder | test;
    level: blue | yellow | orange | red; tuples for alert_ids and unit_paths; ``occurred_at`` is when the
    change happened (the webhook body's timestamp: keep it the same across retries); ``time_zone`` (IANA,
    e.g. the organisation's Asia/Shanghai) is the zone message times are shown in; actor and comment
    are shown for acknowledged and escalated notices. ``sample_notification(org=, link=, at=,
    channel_name=)`` is what a channel's test-send delivers. ``dataclasses.asdict`` stores one; rebuild
    it with ``Notification(**stored)`` after turning alert_ids and unit_paths back into tuples.

Sending (in the delivery job, after the commit)
    ``await send(channel_config, notification, *, http: httpx.AsyncClient, message_id: str) -> Attempt``
    Never raises for network or receiver failures; bounded: HTTP 5 s to connect, 10 s a phase, 15 s
    in all; SMTP 15 s a command, 30 s in all.
    ``message_id``: the delivery's id, the same on every retry (webhook-id header, webhook body ``id``,
    email Message-ID), so receivers drop repeats. ``Attempt(ok, status_code, error, duration_ms, at,
    retryable, retry_after_seconds)``; ``attempt.as_document()`` (a plain dict, BSON-ready) for the
    delivery log. ``retryable`` is False when trying again cannot help (4xx other than 408/425/429, a
    vendor's bad-key/signature code, SMTP 5xx); ``retry_after_seconds`` is the receiver's Retry-After.
    An ok attempt may still carry ``error`` (email recipients the server refused while taking others).
    ``next_retry_delay(n, *, retry_after_seconds=None) -> timedelta | None``: after the n-th failed try
    (n from 1), how long to wait (5 s doubling to at most 1 h, jittered to 50-100 %, at least the
    Retry-After up to 1 h), None after ``MAX_ATTEMPTS`` (10) tries in all. A delivery job:
    ``attempt = await send(...)``; log it; if not ok and ``attempt.retryable`` and ``(delay :=
    next_retry_delay(n, retry_after_seconds=attempt.retry_after_seconds))``: schedule it at now + delay.

Receivers and tests
    ``verify_webhook(secret, body, headers, *, now=None, tolerance=timedelta(minutes=5)) -> Any``
    returns the parsed body or raises ``WebhookRejected`` (missing header, timestamp outside tolerance =
    replay, no matching signature). Vendor signatures: ``dingtalk.sign(secret, timestamp_ms)``,
    ``feishu.sign(secret, timestamp)``; renderers: ``<channel>.payload(...)``, ``email.message(...)``,
    and the words in ``services.alerts.notify.texts`` (``title``, ``facts``, ``plain_text``, ``html_text``).

Adding a channel: one module in ``channels/`` (a ``XConfig(ChannelConfigBase)`` with its ``type``
literal and ``sealed_fields``, an ``XRead``, ``async def send``) and its line in the tables of
``channels/__init__.py``.
"""

from services.alerts.notify.channels import (
    CONFIG_TYPES,
    SENDERS,
    ChannelConfig,
    ChannelConfigRead,
    dingtalk,
    email,
    feishu,
    slack,
    webhook,
    wecom,
)
from services.alerts.notify.channels.base import ChannelConfigBase
from services.alerts.notify.channels.dingtalk import DingTalkConfig, DingTalkRead
from services.alerts.notify.channels.email import EmailConfig, EmailRead
from services.alerts.notify.channels.feishu import FeishuConfig, FeishuRead
from services.alerts.notify.channels.slack import SlackConfig, SlackRead
from services.alerts.notify.channels.webhook import (
    WebhookConfig,
    WebhookRead,
    WebhookRejected,
    new_webhook_secret,
    verify_webhook,
)
from services.alerts.notify.channels.wecom import WeComConfig, WeComRead
from services.alerts.notify.delivery import MAX_ATTEMPTS, Attempt, next_retry_delay
from services.alerts.notify.models import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    channel_changes,
    channel_config,
    channel_document,
    channel_read,
    config_from_stored,
    read_config,
    stored_config,
)
from services.alerts.notify.notification import (
    KINDS,
    LEVELS,
    Language,
    Level,
    Notification,
    NotificationKind,
    sample_notification,
)
from services.alerts.notify.secretbox import SecretBox, SecretUnreadable, new_key
from services.alerts.notify.sender import send

__all__ = [
    "CONFIG_TYPES",
    "KINDS",
    "LEVELS",
    "MAX_ATTEMPTS",
    "SENDERS",
    "Attempt",
    "ChannelConfig",
    "ChannelConfigBase",
    "ChannelConfigRead",
    "ChannelCreate",
    "ChannelRead",
    "ChannelUpdate",
    "DingTalkConfig",
    "DingTalkRead",
    "EmailConfig",
    "EmailRead",
    "FeishuConfig",
    "FeishuRead",
    "Language",
    "Level",
    "Notification",
    "NotificationKind",
    "SecretBox",
    "SecretUnreadable",
    "SlackConfig",
    "SlackRead",
    "WeComConfig",
    "WeComRead",
    "WebhookConfig",
    "WebhookRead",
    "WebhookRejected",
    "channel_changes",
    "channel_config",
    "channel_document",
    "channel_read",
    "config_from_stored",
    "dingtalk",
    "email",
    "feishu",
    "new_key",
    "new_webhook_secret",
    "next_retry_delay",
    "read_config",
    "sample_notification",
    "send",
    "slack",
    "stored_config",
    "verify_webhook",
    "webhook",
    "wecom",
]
