"""Complaints per 100 feedback, overall and by severity; fewer is better."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, get_args

from services.scoring.intervals import DEFAULT_CONFIDENCE, Estimate, share_estimate
from services.scoring.metrics.base import (
    Counter,
    Counters,
    Direction,
    FeedbackContent,
    MetricFamily,
    MetricKey,
    Target,
    alternatives,
    check_choice,
)
from shared.events import ComplaintSeverity

SEVERITIES: tuple[str, ...] = get_args(ComplaintSeverity)


def complaint_rate(
    stats: Counters, severity: str | None = None, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate | None:
    """Complaints (of one severity, or all) per 100 feedback of any kind, with a Wilson interval."""
    if severity is None:
        complaints = stats.get("complaint.n")
    else:
        check_choice("complaint severity", severity, SEVERITIES)
        complaints = stats.get(f"complaint.severity.{severity}")
    # A feedback carries at most one complaint, so the rate is a binomial proportion of all feedback.
    return share_estimate(complaints, stats.n, confidence)


class ComplaintMetrics(MetricFamily):
    """``complaint.n`` and ``complaint.severity.<severity>``: counts of complaints.

    Metrics ``complaint.rate`` and ``complaint.rate.<severity>``: complaints per 100 feedback, 0–100,
    scored 100 − rate (no complaint at all scores 100).
    """

    prefix: ClassVar[str] = "complaint"
    counter_pattern: ClassVar[str] = rf"complaint\.(n|severity\.{alternatives(SEVERITIES)})"
    forms: ClassVar[tuple[str, ...]] = ("complaint.rate", f"complaint.rate.<{'|'.join(SEVERITIES)}>")
    since: ClassVar[int] = 2

    def counters(self, facts: FeedbackContent) -> Iterator[Counter]:
        """One complaint, and one of its severity."""
        if facts.complaint is not None:
            yield "complaint.n", 1
            yield f"complaint.severity.{facts.complaint.severity}", 1

    def parse(self, metric: str) -> MetricKey | None:
        """``complaint.rate`` or ``complaint.rate.<severity>``."""
        if metric == "complaint.rate":
            return MetricKey(metric, self)
        head, _, name = metric.rpartition(".")
        return MetricKey(metric, self, name) if head == "complaint.rate" and name in SEVERITIES else None

    def estimate(self, key: MetricKey, stats: Counters, confidence: float) -> Estimate | None:
        """The rate with its Wilson interval; None without feedback."""
        return complaint_rate(stats, key.name, confidence)

    def normalise(self, key: MetricKey, value: float, target: Target, direction: Direction | None) -> float:
        """100 − the rate: every feedback a complaint scores 0."""
        return 100 - value
