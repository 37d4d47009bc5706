"""DingTalk (钉钉) custom robots: a markdown message, the URL signed when the robot has a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, Field, SecretStr, field_validator

from services.alerts.notify import texts
from services.alerts.notify.channels.base import ChannelConfigBase, check_query_parameter, mask_query
from services.alerts.notify.delivery import Attempt, json_body, post, vendor_code_check
from services.alerts.notify.notification import Language, Notification

# 130101: sending too fast (20 messages a minute); a bad signature, keyword or IP (310000) will not pass.
# DingTalk refuses a message over 20000 bytes; a long acknowledgement comment must not lose the alert.
TEXT_LIMIT_BYTES = 18000
CHECK = vendor_code_check("errcode", rate_limited=frozenset({130101}), message_field="errmsg")


class DingTalkConfig(ChannelConfigBase):
    """A DingTalk robot (https://oapi.dingtalk.com/robot/send?access_token=...) and its signing secret."""

    type: Literal["dingtalk"] = "dingtalk"
    url: str
    # The robot's 加签 secret (SEC...); without it the robot must allow us by keyword or IP.
    secret: SecretStr | None = Field(default=None)

    sealed_fields: ClassVar[tuple[str, ...]] = ("url", "secret")
    masked_fields: ClassVar[tuple[str, ...]] = ("url",)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_query_parameter(url, "access_token")

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value().strip():
            raise ValueError("must not be empty; leave it out for a robot without signing")
        return secret

    def masked_value(self, name: str) -> str:
        """The robot URL with its access token masked."""
        return mask_query(getattr(self, name), ("access_token",))


class DingTalkRead(BaseModel):
    """A DingTalk channel as the API shows it: the token masked, the secret only as set or not."""

    type: Literal["dingtalk"]
    language: Language
    url: str
    secret_set: bool


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's documented signature: base64 HmacSHA256 of "timestamp\\nsecret" keyed by the secret, urlencoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def signed_url(url: str, secret: str | None, *, timestamp_ms: int | None = None) -> str:
    """The robot URL with ``timestamp`` (milliseconds) and ``sign`` appended, when there is a secret."""
    if secret is None:
        return url
    timestamp_ms = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return f"{url}&timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


def payload(notification: Notification, language: Language) -> dict[str, Any]:
    """The documented markdown message: ``{"msgtype": "markdown", "markdown": {"title", "text"}}``."""
    title = texts.title(notification, language)
    # DingTalk's markdown breaks lines only at blank lines.
    body = texts.markdown(notification, language).replace("\n", "\n\n")
    text = texts.truncate_utf8(f"### {title}\n\n{body}", TEXT_LIMIT_BYTES)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


async def send(
    config: DingTalkConfig, notification: Notification, *, http: httpx.AsyncClient, message_id: str
) -> Attempt:
    """POST the markdown message to the signed URL (signed afresh on each try: DingTalk allows an hour)."""
    del message_id  # DingTalk has no idempotency key
    secret = config.secret.get_secret_value() if config.secret else None
    body = json_body(payload(notification, config.language))
    url = signed_url(config.url, secret)
    return await post(http, url, content=body, headers={"content-type": "application/json"}, check=CHECK)
