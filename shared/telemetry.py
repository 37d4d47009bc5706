"""Tracing, metrics and JSON logs shared by every service."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter

EVENTS_CONSUMED = Counter(
    "qualityloop_events_consumed_total", "Events processed by a consumer", ["service", "topic", "outcome"]
)
EVENTS_PUBLISHED = Counter("qualityloop_events_published_total", "Events published by a relay", ["service", "topic"])
DEAD_LETTERS = Counter("qualityloop_dead_letters_total", "Messages sent to a dead-letter topic", ["service", "topic"])
BATCH_SECONDS = Histogram("qualityloop_batch_processing_seconds", "Time to process one polled batch", ["service"])
CONSUMER_LAG = Gauge(
    "qualityloop_consumer_lag", "Records behind the partition's end", ["service", "topic", "partition"]
)
REJOINS = Counter(
    "qualityloop_consumer_rejoins_total",
    "Consumers replaced after a broker restart, by whether the replacement joined its group in time",
    ["service", "outcome"],
)
OUTBOX_BACKLOG = Gauge("qualityloop_outbox_backlog", "Outbox records not yet published", ["service"])


def setup_tracing(service: str) -> None:
    """Install a tracer provider (OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set) and PyMongo spans."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": f"qualityloop-{service}"}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    instrumentor = PymongoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


@cache
def tracer(service: str) -> trace.Tracer:
    """The tracer of one service; its name tells the services apart when they share a process.

    Cached: asking the provider makes a new tracer every time, and spans are made per event.
    """
    return trace.get_tracer(f"qualityloop.{service}")


def current_carrier(context: Context | None = None) -> dict[str, str]:
    """The W3C trace context of the current (or given) span, as message headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def span_carrier(span: Span) -> dict[str, str]:
    """The W3C trace context of a span that is not the current one, as message headers."""
    return current_carrier(trace.set_span_in_context(span))


def context_from(carrier: dict[str, str]) -> Context:
    """The trace context carried in message headers."""
    return propagate.extract(carrier)


def messaging_attributes(topic: str, operation: str, **extra: Any) -> dict[str, Any]:
    """Messaging attributes after the OpenTelemetry semantic conventions."""
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
    }
    attributes.update({f"messaging.{name.replace('_', '.')}": value for name, value in extra.items()})
    return attributes


@contextmanager
def publish_span(service: str, topic: str, carrier: dict[str, str], **extra: Any) -> Iterator[Span]:
    """A ``<topic> publish`` producer span, child of the context the event was recorded in."""
    with tracer(service).start_as_current_span(
        f"{topic} publish",
        context=context_from(carrier),
        kind=SpanKind.PRODUCER,
        attributes=messaging_attributes(topic, "publish", **extra),
    ) as span:
        yield span


def start_process_span(service: str, topic: str, carrier: dict[str, str], **extra: Any) -> Span:
    """Start a ``<topic> process`` consumer span continuing the producer's trace (caller ends it)."""
    return tracer(service).start_span(
        f"{topic} process",
        context=context_from(carrier),
        kind=SpanKind.CONSUMER,
        attributes=messaging_attributes(topic, "process", **extra),
    )


REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIds:
    """ASGI middleware: the gateway's X-Request-ID goes into every log line and onto the request's span."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the request with its id in context."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode() or None
        if request_id:
            trace.get_current_span().set_attribute("app.request_id", request_id)
        token = REQUEST_ID.set(request_id)
        try:
            await self._app(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)


class _TraceIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else None
        record.span_id = format(context.span_id, "016x") if context.is_valid else None
        record.request_id = REQUEST_ID.get()
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    """JSON logs on stderr carrying the service name and the current trace and span ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceIds())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
