"""The metric registry: every metric family once, and the counters, key check and parsing derived from them.

Adding a metric: write one module with a `MetricFamily` (its counters from a feedback, key pattern,
metric keys, estimator with interval and 0–100 normaliser), add an instance to `FAMILIES`, and test it.
A family that counts facts already in stored feedback sets ``since`` one above `REGISTRY_VERSION`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from services.scoring.metrics.audit import AuditMetrics
from services.scoring.metrics.base import Counter, FeedbackContent, MetricFamily, MetricKey
from services.scoring.metrics.ces import CesMetrics
from services.scoring.metrics.complaint import ComplaintMetrics
from services.scoring.metrics.csat import CsatMetrics
from services.scoring.metrics.dimension import DimensionMetrics
from services.scoring.metrics.measure import MeasureMetrics
from services.scoring.metrics.nps import NpsMetrics
from services.scoring.metrics.polarity import PolarityMetrics
from services.scoring.metrics.sentiment import SentimentMetrics
from services.scoring.metrics.servqual import ServqualMetrics

FAMILIES: tuple[MetricFamily, ...] = (
    CsatMetrics(),
    NpsMetrics(),
    CesMetrics(),
    ServqualMetrics(),
    DimensionMetrics(),
    SentimentMetrics(),
    MeasureMetrics(),
    ComplaintMetrics(),
    AuditMetrics(),
    PolarityMetrics(),
)
# Stored with each counted feedback, so that its erasure takes out the families it was counted with.
REGISTRY_VERSION = max(family.since for family in FAMILIES)
METRIC_KEY_FORMS: tuple[str, ...] = tuple(form for family in FAMILIES for form in family.forms)
# ``n``, the number of feedback, belongs to no family: every feedback counts in it.
COUNTER_KEY = re.compile("|".join(("n", *(family.counter_pattern for family in FAMILIES))))


def _check_registry() -> None:
    prefixes = [family.prefix for family in FAMILIES]
    if len(set(prefixes)) != len(prefixes):
        raise RuntimeError(f"two metric families share a counter prefix: {prefixes}")


_check_registry()


def feedback_counters(facts: FeedbackContent, version: int = REGISTRY_VERSION) -> Iterator[Counter]:
    """The counters one feedback adds: ``n`` and those of every family the registry had at ``version``."""
    yield "n", 1
    for family in FAMILIES:
        if family.since <= version:
            yield from family.counters(facts)


def is_counter_key(key: str) -> bool:
    """Whether some family writes this counter key."""
    return COUNTER_KEY.fullmatch(key) is not None


@lru_cache(maxsize=4096)
def parse_metric(metric: str) -> MetricKey:
    """Parse a metric key such as ``nps``, ``servqual.gap.empathy`` or ``measure.waiting_time_seconds``."""
    for family in FAMILIES:
        key = family.parse(metric)
        if key is not None:
            return key
    raise ValueError(f"unknown metric key {metric!r}; known forms: {', '.join(METRIC_KEY_FORMS)}")
