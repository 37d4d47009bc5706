"""Mystery-shopper audits: the visit's score and each checklist item's, in percent of the maximum."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import ClassVar

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, mean_estimate
from services.scoring.metrics.base import (
    FIXED_POINT,
    Counter,
    Counters,
    Direction,
    FeedbackContent,
    MetricFamily,
    MetricKey,
    Target,
    fixed_point,
    moment_counters,
    moments_pattern,
)

PERCENT = (0.0, 100.0)
ITEM_KEY_PATTERN = r"[a-z][a-z0-9_]{0,63}"
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def audit_item_key(item: str) -> str:
    """The key of a checklist item in metrics and counters: ``Greeting within 30 s`` → ``greeting_within_30_s``.

    Letters and digits lower-cased, every other run made one underscore, at most 64 characters; an item
    with no such letter (a Chinese name, say) or starting with a digit gets ``item_`` and the first 12
    hex digits of its SHA-256. Items with the same key are one item.
    """
    slug = _NOT_KEY.sub("_", item.lower()).strip("_")[:64].rstrip("_")
    if re.fullmatch(ITEM_KEY_PATTERN, slug):
        return slug
    return f"item_{hashlib.sha256(item.encode()).hexdigest()[:12]}"


def audit_score(stats: Counters, item: str | None = None, confidence: float = DEFAULT_CONFIDENCE) -> Estimate | None:
    """Mean audit score in percent of the maximum: of whole visits, or of one checklist item (by its key)."""
    prefix = "audit" if item is None else f"audit.item.{item}"
    return mean_estimate(stats.moments(prefix, FIXED_POINT), PERCENT, confidence)


class AuditMetrics(MetricFamily):
    """``audit.{n,sum,sumsq}`` (visits) and ``audit.item.<key>.{n,sum,sumsq}``, percentages in thousandths.

    Metrics ``audit.score`` (a visit's total score over its total maximum) and ``audit.item.<key>``
    (see `audit_item_key`), both 0–100 and scored as they are.
    """

    prefix: ClassVar[str] = "audit"
    counter_pattern: ClassVar[str] = "|".join(
        (moments_pattern("audit"), moments_pattern(rf"audit\.item\.{ITEM_KEY_PATTERN}"))
    )
    forms: ClassVar[tuple[str, ...]] = ("audit.score", "audit.item.<key>")
    since: ClassVar[int] = 2

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """The visit's percentage and each item's, in thousandths of a percent."""
        if facts.audit is None:
            return
        yield from moment_counters("audit", fixed_point(facts.audit.percent))
        # Items that share a key add up, as they would in two feedback.
        items: dict[str, int] = {}
        for item in facts.audit.checklist:
            for key, value in moment_counters(
                f"audit.item.{audit_item_key(item.item)}", fixed_point(100 * item.score / item.max_score)
            ):
                items[key] = items.get(key, 0) + value
        yield from items.items()

    def parse(self, metric: str) -> MetricKey | None:
        """``audit.score`` or ``audit.item.<key>``."""
        if metric == "audit.score":
            return MetricKey(metric, self)
        head, _, name = metric.rpartition(".")
        if head == "audit.item" and re.fullmatch(ITEM_KEY_PATTERN, name):
            return MetricKey(metric, self, name)
        return None

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The mean with its Student t interval within 0–100."""
        return audit_score(stats, key.name, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """Already a percentage."""
        return value
