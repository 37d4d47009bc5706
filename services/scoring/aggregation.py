"""Which aggregates a feedback adds to, and the figures an aggregate shows; plain Python."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.scoring.index_system import CompositeScore, IndexSystem, IndicatorResult, composite
from services.scoring.statistics import REGISTRY_VERSION, FeedbackContent, MetricStats
from shared.events import Audit, Complaint, FeedbackErased, FeedbackReceived, IndicatorScore, Polarity, Ratings

PERIODS = ("all", "hour", "day", "week", "month")
ALL_TIME = datetime(1970, 1, 1, tzinfo=UTC)
# A rolling window is summed at read time from the aggregates of its base period: the current
# (partial) period and the ones before it. Storing windows would need a decrement as time passes.
ROLLING_WINDOWS: dict[str, tuple[str, int]] = {
    "rolling_24h": ("hour", 24),
    "rolling_7d": ("day", 7),
    "rolling_30d": ("day", 30),
}
READ_PERIODS = (*PERIODS, *ROLLING_WINDOWS)
_BASE_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def period_start(period: str, moment: datetime) -> datetime:
    """The start (UTC) of the period that contains ``moment``; weeks start on Monday."""
    moment = moment.astimezone(UTC)
    if period == "all":
        return ALL_TIME
    if period == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


@dataclass(frozen=True)
class Window:
    """The stored aggregates a read sums: one period's starts from ``first`` to ``last``, inclusive."""

    period: str
    first: datetime
    last: datetime


def window(period: str, moment: datetime) -> Window:
    """The aggregates that make up ``period`` (stored or rolling) as of ``moment``."""
    if period in ROLLING_WINDOWS:
        base, count = ROLLING_WINDOWS[period]
        last = period_start(base, moment)
        return Window(base, last - (count - 1) * _BASE_STEP[base], last)
    start = period_start(period, moment)
    return Window(period, start, start)


@dataclass(frozen=True)
class AggregateKey:
    """One aggregate: an organisation's unit (or ancestor), a period and its start."""

    org: str
    unit_path: str
    period: str
    start: datetime

    @property
    def id(self) -> str:
        """The aggregate's document id."""
        return f"{self.org}|{self.period}|{self.start.isoformat()}|{self.unit_path}"

    @property
    def unit_id(self) -> str:
        """The unit's id: the last segment of its path."""
        return self.unit_path.rsplit("/", 1)[-1]


@dataclass
class Contributions:
    """What a batch of feedback adds to (or, erased, takes from) each aggregate."""

    # Plain integer counters per aggregate, made into MetricStats once per aggregate: adding MetricStats
    # checked every key of every addition, 20 additions per feedback (4 levels, 5 periods).
    counters: dict[AggregateKey, Counter[str]] = field(default_factory=dict)

    def add(self, org: str, lineage: Iterable[str], occurred_at: datetime, stats: MetricStats) -> list[AggregateKey]:
        """Add one feedback's statistics to its unit's and every ancestor's aggregates, in every period."""
        increments = stats.to_increments()
        starts = [(period, period_start(period, occurred_at)) for period in PERIODS]
        keys = [AggregateKey(org, path, period, start) for path in lineage for period, start in starts]
        for key in keys:
            counter = self.counters.get(key)
            if counter is None:
                self.counters[key] = Counter(increments)
            else:
                counter.update(increments)
        return keys

    @property
    def deltas(self) -> dict[AggregateKey, MetricStats]:
        """Each aggregate's statistics to add (or take away)."""
        return {key: MetricStats.of_registry_counters(counter) for key, counter in self.counters.items()}


@dataclass(frozen=True)
class Move:
    """A unit's move from ``previous_path`` to ``unit_path``, as one event of a moved subtree tells it."""

    previous_path: str
    unit_path: str

    @property
    def is_subtree_root(self) -> bool:
        """Whether the unit changed parent; its descendants move along with their parent unchanged."""
        return _parent_id(self.previous_path) != _parent_id(self.unit_path)

    def ancestors_left(self) -> list[str]:
        """The paths that were the unit's ancestors and are not any more (none unless it is the subtree root)."""
        return self._only_in(self.previous_path, self.unit_path)

    def ancestors_joined(self) -> list[str]:
        """The paths that are the unit's ancestors now and were not before (none unless it is the subtree root)."""
        return self._only_in(self.unit_path, self.previous_path)

    def _only_in(self, path: str, other: str) -> list[str]:
        if not self.is_subtree_root:
            return []
        others = set(_ancestors(other))
        return [ancestor for ancestor in _ancestors(path) if ancestor not in others]


def _parent_id(path: str) -> str | None:
    segments = path.split("/")
    return segments[-2] if len(segments) > 1 else None


def _ancestors(path: str) -> list[str]:
    segments = path.split("/")[:-1]
    return ["/".join(segments[: i + 1]) for i in range(len(segments))]


def feedback_stats(
    ratings: Ratings,
    sentiment: float | None,
    *,
    polarity: Polarity | None = None,
    complaint: Complaint | None = None,
    audit: Audit | None = None,
    version: int = REGISTRY_VERSION,
) -> MetricStats:
    """The statistics one feedback contributes: every rating and measure, its comment, complaint and audit."""
    return MetricStats.from_feedback(FeedbackContent(ratings, sentiment, polarity, complaint, audit), version=version)


def event_stats(
    event: FeedbackReceived | FeedbackErased, *, polarity: Polarity | None = None, version: int = REGISTRY_VERSION
) -> MetricStats:
    """What a feedback event adds (received) or takes out (erased), as registry ``version`` counted it.

    ``polarity`` stands in for one the event lacks (an erasure from an older producer).
    """
    return feedback_stats(
        event.ratings,
        event.sentiment,
        polarity=event.polarity or polarity,
        complaint=event.complaint,
        audit=event.audit,
        version=version,
    )


def indicator_scores(result: CompositeScore) -> dict[str, IndicatorScore]:
    """Every indicator of a composite, flattened by id, plus the composite itself."""
    scores = {
        "composite": IndicatorScore(
            value=result.score,
            score=result.score,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            sample_size=result.n,
            insufficient=result.insufficient,
        )
    }
    for indicator in _walk(result.indicators):
        leaf = indicator.value
        scores[indicator.id] = IndicatorScore(
            value=leaf.value if leaf else indicator.score,
            score=indicator.score,
            ci_low=leaf.ci_low if leaf else indicator.score_ci_low,
            ci_high=leaf.ci_high if leaf else indicator.score_ci_high,
            sample_size=indicator.n,
            insufficient=indicator.insufficient,
        )
    return scores


def score(
    system: IndexSystem, stats: MetricStats, min_samples: int
) -> tuple[CompositeScore, dict[str, IndicatorScore]]:
    """The composite and every indicator of an aggregate."""
    result = composite(system, stats, min_samples)
    return result, indicator_scores(result)


def difference(a: IndicatorScore | None, b: IndicatorScore | None) -> float | None:
    """How much an indicator's value moved from ``a`` to ``b``; None when either has no value."""
    if a is None or b is None or a.value is None or b.value is None:
        return None
    return b.value - a.value


def ranked(scores: Mapping[str, float | None]) -> list[str]:
    """Names ordered best score first (ties by name); those without a score last."""
    return sorted(scores, key=lambda name: (scores[name] is None, -(scores[name] or 0.0), name))


def _walk(indicators: list[IndicatorResult]) -> Iterable[IndicatorResult]:
    for indicator in indicators:
        yield indicator
        yield from _walk(indicator.children)
