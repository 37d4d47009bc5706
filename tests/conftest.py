"""Fixtures: the real Kafka-protocol broker and MongoDB-protocol server, started on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack.processes import free_port, start_broker, start_database
from shared.auth import ensure_signing_key
from tests.harness import Stack

SPANS = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    """One in-memory span exporter for the whole run, installed before any service sets up tracing."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Every span the in-process services finished."""
    return SPANS


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Tansu broker and a SecantusDB server for the session, and a signing key pair."""
    work: Path = tmp_path_factory.mktemp("stack")
    broker = start_broker(free_port(), work / "broker.log")
    database = start_database(free_port(), work / "db", work / "database.log")
    private_key, public_key = ensure_signing_key(work / "keys")
    try:
        yield Stack(
            bootstrap=f"127.0.0.1:{broker.port}",
            mongo_uri=f"mongodb://127.0.0.1:{database.port}/?directConnection=true",
            private_key=private_key,
            public_key=public_key,
        )
    finally:
        broker.stop()
        database.stop()
