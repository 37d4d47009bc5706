"""Wiring of the feedback service."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from services.feedback import enrichment, legacy_storage, repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.handlers import INGEST_TYPE, ingest_handler, ingest_parser, ingest_redaction
from services.feedback.models import FeedbackIngested, FeedbackIngestIn
from services.feedback.settings import FeedbackSettings
from services.feedback.views import router
from shared.asyncapi import IntakeChannel
from shared.auth import TokenVerifier
from shared.consumer import Subscription
from shared.events import FeedbackErased, FeedbackReceived, UnitChanged
from shared.runtime import ServiceDefinition


def subscriptions(runtime: FeedbackRuntime) -> Sequence[Subscription[Any]]:
    """The topics the feedback service consumes: raw feedback from integrations."""
    settings = runtime.settings
    parse = ingest_parser(settings, TokenVerifier(runtime.platform))
    return [Subscription(FeedbackIngested, ingest_handler(settings), parse=parse)]


async def on_start(runtime: FeedbackRuntime) -> None:
    """Before the first request: load the enrichment models (off the event loop) and migrate 0.1's legacy storage.

    The runtime calls this after the collections exist and before the group committer and the consumer
    start, so the migration sees no writes of this process.
    """
    await asyncio.gather(asyncio.to_thread(enrichment.warm_up), _migrate(runtime))


async def _migrate(runtime: FeedbackRuntime) -> None:
    await legacy_storage.migrate_legacy_indexes(runtime.db)
    await repository.migrate_page_keys(runtime.db)


DEFINITION = ServiceDefinition(
    name="feedback",
    settings_type=FeedbackSettings,
    description="The organisation tree and customer feedback intake.",
    routers=[router],
    subscriptions=subscriptions,
    indexes=repository.INDEXES,
    publishes=[FeedbackReceived.topic, FeedbackErased.topic, UnitChanged.topic],
    on_start=on_start,
    intake=[
        IntakeChannel(
            FeedbackIngested.topic,
            INGEST_TYPE,
            FeedbackIngestIn,
            "Feedback from integrations, one CloudEvent a record, signed by the integration's token (record header"
            " authorization); the organisation and subtrees are the token's. What cannot be taken in goes to"
            " feedback.ingest.dlq with the reason.",
        )
    ],
    dead_letter_redaction=lambda runtime: ingest_redaction(runtime.settings),
)
