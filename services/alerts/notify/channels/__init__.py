"""One module per channel type; a new channel is a module here and its line in each table below."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.alerts.notify.channels import dingtalk, email, feishu, slack, webhook, wecom
from services.alerts.notify.channels.base import ChannelConfigBase, Sender
from services.alerts.notify.channels.dingtalk import DingTalkConfig, DingTalkRead
from services.alerts.notify.channels.email import EmailConfig, EmailRead
from services.alerts.notify.channels.feishu import FeishuConfig, FeishuRead
from services.alerts.notify.channels.slack import SlackConfig, SlackRead
from services.alerts.notify.channels.webhook import WebhookConfig, WebhookRead
from services.alerts.notify.channels.wecom import WeComConfig, WeComRead

ChannelConfig = Annotated[
    WebhookConfig | EmailConfig | WeComConfig | DingTalkConfig | FeishuConfig | SlackConfig,
    Field(discriminator="type"),
]
ChannelConfigRead = Annotated[
    WebhookRead | EmailRead | WeComRead | DingTalkRead | FeishuRead | SlackRead,
    Field(discriminator="type"),
]

CONFIG_TYPES: dict[str, type[ChannelConfigBase]] = {
    "webhook": WebhookConfig,
    "email": EmailConfig,
    "wecom": WeComConfig,
    "dingtalk": DingTalkConfig,
    "feishu": FeishuConfig,
    "slack": SlackConfig,
}
SENDERS: dict[str, Sender] = {
    "webhook": webhook.send,
    "email": email.send,
    "wecom": wecom.send,
    "dingtalk": dingtalk.send,
    "feishu": feishu.send,
    "slack": slack.send,
}

__all__ = ["CONFIG_TYPES", "SENDERS", "ChannelConfig", "ChannelConfigRead"]
