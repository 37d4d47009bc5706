"""Trace context crosses Kafka: the consumer's span is a child of the producer's, with messaging attributes."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.telemetry import current_carrier, publish_span, start_process_span, tracer


def test_process_span__continues_the_publish_span_of_the_recording_request(spans: InMemorySpanExporter):
    with tracer("test").start_as_current_span("POST /api/v1/feedback") as request:
        recorded = current_carrier()
    with publish_span("test", "feedback.received", recorded, message_id="e-1") as publish:
        headers = current_carrier()
    process = start_process_span("test", "feedback.received", headers, kafka_partition=2, kafka_offset=7)
    process.end()

    finished = {
        s.name: s for s in spans.get_finished_spans() if s.context.trace_id == request.get_span_context().trace_id
    }
    publish_done, process_done = finished["feedback.received publish"], finished["feedback.received process"]
    assert publish_done.kind is SpanKind.PRODUCER
    assert publish_done.parent.span_id == request.get_span_context().span_id
    assert process_done.kind is SpanKind.CONSUMER
    assert process_done.parent.span_id == publish.get_span_context().span_id
    assert process_done.attributes["messaging.system"] == "kafka"
    assert process_done.attributes["messaging.destination.name"] == "feedback.received"
    assert process_done.attributes["messaging.kafka.partition"] == 2
    assert publish_done.attributes["messaging.message.id"] == "e-1"


def test_current_carrier__is_empty_outside_any_span():
    assert trace.get_current_span().get_span_context().is_valid is False
    assert current_carrier() == {}
