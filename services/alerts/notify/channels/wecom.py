"""WeCom (企业微信) group robots: a markdown message to the robot's webhook URL (its key in the query)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, field_validator

from services.alerts.notify import texts
from services.alerts.notify.channels.base import ChannelConfigBase, check_query_parameter, mask_query
from services.alerts.notify.delivery import Attempt, json_body, post, vendor_code_check
from services.alerts.notify.notification import Language, Notification

# WeCom refuses markdown content over 4096 bytes of UTF-8.
CONTENT_LIMIT_BYTES = 4096
# 45009: the robot's rate limit (20 messages a minute); worth retrying later, unlike a wrong key (93000).
CHECK = vendor_code_check("errcode", rate_limited=frozenset({45009}), message_field="errmsg")
# WeCom markdown knows three font colours: warning (orange-red), info (green) and comment (grey).
LEVEL_FONTS = {"blue": "comment", "yellow": "warning", "orange": "warning", "red": "warning"}


class WeComConfig(ChannelConfigBase):
    """A WeCom robot: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."""

    type: Literal["wecom"] = "wecom"
    url: str

    sealed_fields: ClassVar[tuple[str, ...]] = ("url",)
    masked_fields: ClassVar[tuple[str, ...]] = ("url",)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_query_parameter(url, "key")

    def masked_value(self, name: str) -> str:
        """The robot URL with its key masked."""
        return mask_query(getattr(self, name), ("key",))


class WeComRead(BaseModel):
    """A WeCom channel as the API shows it: the robot's key masked."""

    type: Literal["wecom"]
    language: Language
    url: str


def payload(notification: Notification, language: Language) -> dict[str, Any]:
    """The robot's documented markdown message: ``{"msgtype": "markdown", "markdown": {"content"}}``."""
    font = "info" if notification.kind == "resolved" else LEVEL_FONTS[notification.level]
    heading = f'## <font color="{font}">{texts.title(notification, language)}</font>'
    content = f"{heading}\n{texts.markdown(notification, language)}"
    return {"msgtype": "markdown", "markdown": {"content": texts.truncate_utf8(content, CONTENT_LIMIT_BYTES)}}


async def send(config: WeComConfig, notification: Notification, *, http: httpx.AsyncClient, message_id: str) -> Attempt:
    """POST the markdown message; the robot answers errcode 0 when it took it."""
    del message_id  # WeCom has no idempotency key
    body = json_body(payload(notification, config.language))
    return await post(http, config.url, content=body, headers={"content-type": "application/json"}, check=CHECK)
