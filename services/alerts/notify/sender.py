"""The one entry point that sends a notification to any channel."""

from __future__ import annotations

import httpx

from services.alerts.notify.channels import SENDERS
from services.alerts.notify.channels.base import ChannelConfigBase
from services.alerts.notify.delivery import Attempt
from services.alerts.notify.notification import Notification


async def send(
    channel_config: ChannelConfigBase, notification: Notification, *, http: httpx.AsyncClient, message_id: str
) -> Attempt:
    """Send through the channel's own notifier; failures come back as ``Attempt(ok=False)``, never raised."""
    sender = SENDERS[channel_config.type]
    return await sender(channel_config, notification, http=http, message_id=message_id)
