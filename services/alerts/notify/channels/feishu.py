"""Feishu (飞书) custom bots: an interactive card, signed in the body when the bot has a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, Field, SecretStr, field_validator

from services.alerts.notify import texts
from services.alerts.notify.channels.base import ChannelConfigBase, check_path_token, mask_last_segment
from services.alerts.notify.delivery import Attempt, json_body, post
from services.alerts.notify.notification import Language, Notification

HOOK_MARKER = "/bot/v2/hook/"
# 11232: the bot's rate limit; a bad signature (19021) or timestamp (19022) will not pass on a retry.
RATE_LIMITED = frozenset({11232, 9499})
# Card header colours Feishu offers; resolved notices are green, tests grey.
# Feishu refuses a request body over 20 KB; the facts are cut well inside it.
FACTS_LIMIT_BYTES = 15000
TEMPLATES = {"blue": "blue", "yellow": "yellow", "orange": "orange", "red": "red"}


class FeishuConfig(ChannelConfigBase):
    """A Feishu bot (https://open.feishu.cn/open-apis/bot/v2/hook/<token>) and its signing secret."""

    type: Literal["feishu"] = "feishu"
    url: str
    # The bot's 签名校验 secret; without it the bot must allow us by keyword or IP.
    secret: SecretStr | None = Field(default=None)

    sealed_fields: ClassVar[tuple[str, ...]] = ("url", "secret")
    masked_fields: ClassVar[tuple[str, ...]] = ("url",)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_path_token(url, HOOK_MARKER)

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value().strip():
            raise ValueError("must not be empty; leave it out for a bot without signing")
        return secret

    def masked_value(self, name: str) -> str:
        """The bot URL with its token masked."""
        return mask_last_segment(getattr(self, name))


class FeishuRead(BaseModel):
    """A Feishu channel as the API shows it: the token masked, the secret only as set or not."""

    type: Literal["feishu"]
    language: Language
    url: str
    secret_set: bool


def sign(secret: str, timestamp: int) -> str:
    """Feishu's documented signature: base64 HmacSHA256 keyed by "timestamp\\nsecret" over an empty message."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def card(notification: Notification, language: Language) -> dict[str, Any]:
    """The interactive card: a coloured header, the facts in lark_md and a button to the alert."""
    if notification.kind == "test":
        template = "grey"
    elif notification.kind == "resolved":
        template = "green"
    else:
        template = TEMPLATES[notification.level]
    facts = "\n".join(f"**{name}**: {value}" if name else value for name, value in texts.facts(notification, language))
    return {
        "config": {"wide_screen_mode": True},
        "header": {
            "template": template,
            "title": {"tag": "plain_text", "content": texts.title(notification, language)},
        },
        "elements": [
            {"tag": "div", "text": {"tag": "lark_md", "content": texts.truncate_utf8(facts, FACTS_LIMIT_BYTES)}},
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "type": "primary",
                        "text": {"tag": "plain_text", "content": texts.LABELS[language]["link"]},
                        "url": notification.link,
                    }
                ],
            },
        ],
    }


def payload(
    notification: Notification, language: Language, *, secret: str | None, timestamp: int | None = None
) -> dict[str, Any]:
    """The documented body: ``msg_type`` interactive and its ``card``, with ``timestamp`` and ``sign`` if signed."""
    body: dict[str, Any] = {}
    if secret is not None:
        timestamp = timestamp if timestamp is not None else int(time.time())
        body |= {"timestamp": str(timestamp), "sign": sign(secret, timestamp)}
    return body | {"msg_type": "interactive", "card": card(notification, language)}


def check(response: httpx.Response) -> tuple[str, bool] | None:
    """Feishu answers 200 with ``code`` 0 (older bots: ``StatusCode`` 0) when it took the message."""
    try:
        answer = response.json()
    except ValueError:
        return f"unexpected answer: {response.text[:100]}", True
    if not isinstance(answer, dict):
        return f"unexpected answer: {response.text[:100]}", True
    code = answer.get("code", answer.get("StatusCode"))
    if code == 0:
        return None
    return f"code {code}: {answer.get('msg', answer.get('StatusMessage', ''))}", code in RATE_LIMITED


async def send(
    config: FeishuConfig, notification: Notification, *, http: httpx.AsyncClient, message_id: str
) -> Attempt:
    """POST the card, signed afresh on each try (Feishu refuses a timestamp over an hour old)."""
    del message_id  # Feishu custom bots have no idempotency key
    secret = config.secret.get_secret_value() if config.secret else None
    body = json_body(payload(notification, config.language, secret=secret))
    return await post(http, config.url, content=body, headers={"content-type": "application/json"}, check=check)
