"""Slack incoming webhooks: a header and an mrkdwn section, with the title as the notification text."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, field_validator

from services.alerts.notify import texts
from services.alerts.notify.channels.base import ChannelConfigBase, check_path_token, mask_last_segment
from services.alerts.notify.delivery import Attempt, json_body, post
from services.alerts.notify.notification import Language, Notification

# Slack's limits: a header block's text 150 characters, a section's 3000.
HEADER_LIMIT, SECTION_LIMIT = 150, 3000


class SlackConfig(ChannelConfigBase):
    """A Slack incoming webhook: https://hooks.slack.com/services/T.../B.../<token>."""

    type: Literal["slack"] = "slack"
    url: str

    sealed_fields: ClassVar[tuple[str, ...]] = ("url",)
    masked_fields: ClassVar[tuple[str, ...]] = ("url",)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_path_token(url, "/services/")

    def masked_value(self, name: str) -> str:
        """The webhook URL with its token masked."""
        return mask_last_segment(getattr(self, name))


class SlackRead(BaseModel):
    """A Slack channel as the API shows it: the webhook's token masked."""

    type: Literal["slack"]
    language: Language
    url: str


def cut(text: str, limit: int) -> str:
    """The text within a block's limit."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(notification: Notification, language: Language) -> dict[str, Any]:
    """The documented message: ``text`` (shown in notifications) and ``blocks``."""
    title = texts.title(notification, language)
    return {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(title, HEADER_LIMIT)}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": cut(texts.markdown(notification, language, bold="*"), SECTION_LIMIT),
                },
            },
        ],
    }


async def send(config: SlackConfig, notification: Notification, *, http: httpx.AsyncClient, message_id: str) -> Attempt:
    """POST the message; Slack answers 200 ``ok`` or a 4xx naming the problem."""
    del message_id  # Slack incoming webhooks have no idempotency key
    body = json_body(payload(notification, language=config.language))
    return await post(http, config.url, content=body, headers={"content-type": "application/json"})
