"""The evaluation index system (指标体系): a weighted tree of indicators, AHP weights, the composite."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scoring.statistics import (
    DEFAULT_CONFIDENCE,
    METRIC_KEY_FORMS,
    QUALITY_DIMENSIONS,
    Direction,
    IndicatorValue,
    MetricStats,
    evaluate,
    parse_metric,
)

WEIGHT_TOLERANCE = 1e-6
MAX_CONSISTENCY_RATIO = 0.1
INDICATOR_ID_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"

METRIC_DESCRIPTION = f"A metric key: {', '.join(METRIC_KEY_FORMS)}"

# Saaty's random consistency index for matrices of order 1..15.
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57, 1.59)


# ---------------------------------------------------------------------------
# The index system


class _IndicatorBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=INDICATOR_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    weight: float = Field(gt=0.0, le=1.0)


class LeafIndicator(_IndicatorBase):
    """An indicator computed from one metric; operational measures carry a target and direction."""

    kind: Literal["metric"] = "metric"
    metric: str = Field(description=METRIC_DESCRIPTION)
    target: float | None = None
    direction: Direction | None = None

    @model_validator(mode="after")
    def _check_metric(self) -> LeafIndicator:
        try:
            key = parse_metric(self.metric)
        except ValueError as exc:
            raise ValueError(f"indicator {self.id!r}: {exc}") from None
        if key.needs_target:
            if self.target is None or self.direction is None:
                raise ValueError(f"indicator {self.id!r}: metric {self.metric!r} needs a target and a direction")
            if not (math.isfinite(self.target) and self.target > 0):
                raise ValueError(f"indicator {self.id!r}: target must be a positive number, got {self.target}")
        elif key.needs_direction:
            if self.direction is None or self.target is not None:
                raise ValueError(f"indicator {self.id!r}: metric {self.metric!r} needs a direction and takes no target")
        elif self.target is not None or self.direction is not None:
            raise ValueError(f"indicator {self.id!r}: metric {self.metric!r} takes no target or direction")
        return self


class GroupIndicator(_IndicatorBase):
    """A group of indicators whose weights sum to 1."""

    kind: Literal["group"] = "group"
    children: list[Indicator]

    @model_validator(mode="after")
    def _check_children(self) -> GroupIndicator:
        _check_siblings(f"indicator {self.id!r}", self.children)
        return self


Indicator = Annotated[LeafIndicator | GroupIndicator, Field(discriminator="kind")]
GroupIndicator.model_rebuild()


class IndexSystem(BaseModel):
    """A versioned evaluation index system: top-level indicators whose weights sum to 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    indicators: list[Indicator]

    @model_validator(mode="after")
    def _check_tree(self) -> IndexSystem:
        _check_siblings("index system top level", self.indicators)
        seen: set[str] = set()
        for indicator in self.iter_indicators():
            if indicator.id in seen:
                raise ValueError(f"indicator {indicator.id!r}: id is used more than once")
            seen.add(indicator.id)
        return self

    def iter_indicators(self) -> Iterator[LeafIndicator | GroupIndicator]:
        """Every indicator of the tree, depth first."""
        yield from _walk(self.indicators)

    def leaves(self) -> list[LeafIndicator]:
        """The metric indicators of the tree."""
        return [i for i in self.iter_indicators() if isinstance(i, LeafIndicator)]


def _walk(indicators: Sequence[LeafIndicator | GroupIndicator]) -> Iterator[LeafIndicator | GroupIndicator]:
    for indicator in indicators:
        yield indicator
        if isinstance(indicator, GroupIndicator):
            yield from _walk(indicator.children)


def _check_siblings(owner: str, children: Sequence[LeafIndicator | GroupIndicator]) -> None:
    if not children:
        raise ValueError(f"{owner}: needs at least one indicator")
    total = math.fsum(child.weight for child in children)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        ids = ", ".join(child.id for child in children)
        raise ValueError(f"{owner}: weights of {ids} sum to {total:.6g}, expected 1")


def with_ahp_weights(
    indicators: Sequence[LeafIndicator | GroupIndicator], matrix: Sequence[Sequence[float]]
) -> list[LeafIndicator | GroupIndicator]:
    """Copies of sibling indicators weighted by an AHP pairwise matrix (rows in the same order)."""
    if len(matrix) != len(indicators):
        raise ValueError(f"AHP matrix has {len(matrix)} rows for {len(indicators)} indicators")
    weights = ahp_weights(matrix).weights
    return [ind.model_copy(update={"weight": w}) for ind, w in zip(indicators, weights, strict=True)]


def default_index_system() -> IndexSystem:
    """A sensible starting index system for a new organisation."""
    share = 1 / len(QUALITY_DIMENSIONS)
    dimensions: list[LeafIndicator | GroupIndicator] = [
        LeafIndicator(id=f"dimension.{d}", name=f"Dimension: {d}", weight=share, metric=f"dimension.{d}")
        for d in QUALITY_DIMENSIONS
    ]
    return IndexSystem(
        name="Default service quality index",
        version=1,
        indicators=[
            LeafIndicator(id="csat", name="Customer satisfaction (share 4–5)", weight=0.3, metric="csat.share"),
            LeafIndicator(id="nps", name="Net Promoter Score", weight=0.2, metric="nps"),
            LeafIndicator(id="ces", name="Customer effort", weight=0.1, metric="ces"),
            GroupIndicator(id="dimensions", name="Service-quality dimensions", weight=0.2, children=dimensions),
            LeafIndicator(id="sentiment", name="Comment sentiment", weight=0.1, metric="sentiment"),
            LeafIndicator(id="servqual", name="SERVQUAL gap", weight=0.1, metric="servqual.gap"),
        ],
    )


# ---------------------------------------------------------------------------
# AHP


class AhpInconsistentError(ValueError):
    """A pairwise comparison matrix whose consistency ratio is too high to use."""


@dataclass(frozen=True)
class AhpResult:
    """Priority weights of an AHP pairwise matrix and its consistency."""

    weights: list[float]
    lambda_max: float
    consistency_index: float
    consistency_ratio: float


def ahp_weights(matrix: Sequence[Sequence[float]], max_consistency_ratio: float = MAX_CONSISTENCY_RATIO) -> AhpResult:
    """Principal-eigenvector weights of a pairwise matrix; rejects CR ≥ `max_consistency_ratio`."""
    _check_pairwise(matrix)
    n = len(matrix)
    weights = _principal_eigenvector(matrix)
    product = _mat_vec(matrix, weights)
    lambda_max = math.fsum(product[i] / weights[i] for i in range(n)) / n
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    cr = ci / RANDOM_INDEX[n - 1] if RANDOM_INDEX[n - 1] > 0 else 0.0
    if cr >= max_consistency_ratio:
        raise AhpInconsistentError(
            f"AHP matrix is too inconsistent: consistency ratio {cr:.3f} must be below "
            f"{max_consistency_ratio} (lambda_max {lambda_max:.3f}, CI {ci:.3f}); revise the judgements"
        )
    return AhpResult(weights, lambda_max, ci, cr)


def _check_pairwise(matrix: Sequence[Sequence[float]], tolerance: float = 1e-6) -> None:
    n = len(matrix)
    if not 1 <= n <= len(RANDOM_INDEX):
        raise ValueError(f"AHP matrix must have 1 to {len(RANDOM_INDEX)} rows, got {n}")
    for i, row in enumerate(matrix):
        if len(row) != n:
            raise ValueError(f"AHP matrix must be square: row {i} has {len(row)} entries, expected {n}")
        for j, a in enumerate(row):
            if not (math.isfinite(a) and a > 0):
                raise ValueError(f"AHP matrix entry [{i}][{j}] must be a positive number, got {a}")
    for i in range(n):
        if abs(matrix[i][i] - 1) > tolerance:
            raise ValueError(f"AHP matrix diagonal [{i}][{i}] must be 1, got {matrix[i][i]}")
        for j in range(i + 1, n):
            if abs(matrix[j][i] * matrix[i][j] - 1) > tolerance:
                raise ValueError(
                    f"AHP matrix is not reciprocal: [{j}][{i}] = {matrix[j][i]} but 1/[{i}][{j}] = {1 / matrix[i][j]}"
                )


def _mat_vec(matrix: Sequence[Sequence[float]], vector: list[float]) -> list[float]:
    return [math.fsum(a * v for a, v in zip(row, vector, strict=True)) for row in matrix]


def _principal_eigenvector(matrix: Sequence[Sequence[float]], tolerance: float = 1e-13) -> list[float]:
    """Power iteration; converges for any positive matrix (Perron–Frobenius)."""
    n = len(matrix)
    weights = [1.0 / n] * n
    for _ in range(10_000):
        product = _mat_vec(matrix, weights)
        total = math.fsum(product)
        updated = [x / total for x in product]
        if max(abs(a - b) for a, b in zip(updated, weights, strict=True)) < tolerance:
            return updated
        weights = updated
    return weights


# ---------------------------------------------------------------------------
# Composite score


class IndicatorResult(BaseModel):
    """One indicator evaluated: its 0–100 score, interval, sample size and, for groups, children."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: Literal["metric", "group"]
    weight: float
    effective_weight: float
    n: int
    score: float | None
    score_ci_low: float | None
    score_ci_high: float | None
    insufficient: bool
    coverage: float
    value: IndicatorValue | None = None
    children: list[IndicatorResult] = Field(default_factory=list)


class CompositeScore(BaseModel):
    """The weighted 0–100 composite of an index system over a set of feedback."""

    model_config = ConfigDict(frozen=True)

    system_name: str
    system_version: int
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    insufficient: bool
    coverage: float
    indicators: list[IndicatorResult]


def composite(
    system: IndexSystem,
    stats: MetricStats,
    min_samples: int,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> CompositeScore:
    """Evaluate every indicator and combine them, renormalising weights over those with data."""
    results = _combine([_evaluate(ind, stats, min_samples, confidence) for ind in system.indicators])
    summary = _summarise(results, min_samples)
    return CompositeScore(
        system_name=system.name,
        system_version=system.version,
        score=summary.score,
        ci_low=summary.ci_low,
        ci_high=summary.ci_high,
        n=summary.n,
        insufficient=summary.insufficient,
        coverage=summary.coverage,
        indicators=results,
    )


def _evaluate(
    indicator: LeafIndicator | GroupIndicator, stats: MetricStats, min_samples: int, confidence: float
) -> IndicatorResult:
    if isinstance(indicator, LeafIndicator):
        value = evaluate(
            indicator.metric,
            stats,
            min_samples=min_samples,
            target=indicator.target,
            direction=indicator.direction,
            confidence=confidence,
        )
        return IndicatorResult(
            id=indicator.id,
            name=indicator.name,
            kind="metric",
            weight=indicator.weight,
            effective_weight=0.0,
            n=value.n,
            score=value.score,
            score_ci_low=value.score_ci_low,
            score_ci_high=value.score_ci_high,
            insufficient=value.insufficient,
            coverage=1.0 if value.score is not None else 0.0,
            value=value,
        )
    children = _combine([_evaluate(c, stats, min_samples, confidence) for c in indicator.children])
    summary = _summarise(children, min_samples)
    return IndicatorResult(
        id=indicator.id,
        name=indicator.name,
        kind="group",
        weight=indicator.weight,
        effective_weight=0.0,
        n=summary.n,
        score=summary.score,
        score_ci_low=summary.ci_low,
        score_ci_high=summary.ci_high,
        insufficient=summary.insufficient,
        coverage=summary.coverage,
        children=children,
    )


def _combine(siblings: list[IndicatorResult]) -> list[IndicatorResult]:
    """Set each sibling's effective weight: its weight renormalised over the siblings with data."""
    with_data = math.fsum(s.weight for s in siblings if s.score is not None)
    return [
        s.model_copy(update={"effective_weight": s.weight / with_data if s.score is not None else 0.0})
        for s in siblings
    ]


@dataclass(frozen=True)
class _Summary:
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    insufficient: bool
    coverage: float


def _summarise(siblings: list[IndicatorResult], min_samples: int) -> _Summary:
    used = [s for s in siblings if s.score is not None]
    coverage = math.fsum(s.weight * s.coverage for s in siblings)
    if not used:
        return _Summary(None, None, None, 0, True, coverage)
    # The weighted sum of the children's bounds is the interval if the indicators were
    # perfectly correlated: wider than assuming independence, which feedback from the
    # same customers does not warrant.
    n = max(s.n for s in used)
    return _Summary(
        score=_weighted(used, "score"),
        ci_low=_weighted(used, "score_ci_low"),
        ci_high=_weighted(used, "score_ci_high"),
        n=n,
        # A group is short of samples only when even its best-sampled indicator is.
        insufficient=n < min_samples,
        coverage=coverage,
    )


def _weighted(results: list[IndicatorResult], attribute: str) -> float:
    values = [(r.effective_weight, getattr(r, attribute)) for r in results]
    return min(100.0, max(0.0, math.fsum(w * v for w, v in values)))


# ---------------------------------------------------------------------------
# Changing the index system


class IndicatorDraft(BaseModel):
    """An indicator as submitted: weighted directly, or with its siblings by their parent's AHP matrix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=INDICATOR_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["metric", "group"] = "metric"
    weight: float | None = Field(default=None, gt=0.0, le=1.0, description="Omit when the siblings use AHP")
    metric: str | None = Field(default=None, description=METRIC_DESCRIPTION)
    target: float | None = None
    direction: Direction | None = None
    children: list[IndicatorDraft] = Field(default_factory=list)
    ahp: list[list[float]] | None = Field(
        default=None, description="Pairwise comparison matrix of the children, rows in their order"
    )


class IndexSystemDraft(BaseModel):
    """A new index system as submitted; the service gives it the next version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    version: int | None = Field(
        default=None, ge=1, description="The version this change was made from; when stale, the change is refused"
    )
    indicators: list[IndicatorDraft]
    ahp: list[list[float]] | None = Field(
        default=None, description="Pairwise comparison matrix of the top-level indicators, rows in their order"
    )


class Consistency(BaseModel):
    """The AHP weights of one group of sibling indicators and how consistent the judgements were."""

    model_config = ConfigDict(frozen=True)

    group: str = Field(description="The parent indicator's id, or 'top' for the top level")
    weights: dict[str, float]
    lambda_max: float
    consistency_index: float
    consistency_ratio: float


def build_index_system(draft: IndexSystemDraft, version: int) -> tuple[IndexSystem, list[Consistency]]:
    """The index system a draft describes, with AHP weights derived; raises ValueError saying what is wrong."""
    reports: list[Consistency] = []
    indicators = _build_siblings("top", draft.indicators, draft.ahp, reports)
    return IndexSystem(name=draft.name, version=version, indicators=indicators), reports


def _build_siblings(
    group: str, drafts: Sequence[IndicatorDraft], matrix: Sequence[Sequence[float]] | None, reports: list[Consistency]
) -> list[LeafIndicator | GroupIndicator]:
    owner = "index system top level" if group == "top" else f"indicator {group!r}"
    if matrix is not None:
        if len(matrix) != len(drafts):
            raise ValueError(f"{owner}: AHP matrix has {len(matrix)} rows for {len(drafts)} indicators")
        try:
            result = ahp_weights(matrix)
        except AhpInconsistentError as error:
            raise AhpInconsistentError(f"{owner}: {error}") from None
        weights: list[float | None] = list(result.weights)
        reports.append(
            Consistency(
                group=group,
                weights={d.id: w for d, w in zip(drafts, result.weights, strict=True)},
                lambda_max=result.lambda_max,
                consistency_index=result.consistency_index,
                consistency_ratio=result.consistency_ratio,
            )
        )
    else:
        weights = [d.weight for d in drafts]
    built: list[LeafIndicator | GroupIndicator] = []
    for draft, weight in zip(drafts, weights, strict=True):
        if weight is None:
            raise ValueError(f"indicator {draft.id!r}: needs a weight, or an AHP matrix on {owner}")
        if draft.kind == "group":
            children = _build_siblings(draft.id, draft.children, draft.ahp, reports)
            built.append(GroupIndicator(id=draft.id, name=draft.name, weight=weight, children=children))
        else:
            if draft.metric is None or draft.children or draft.ahp is not None:
                raise ValueError(f"indicator {draft.id!r}: a metric indicator needs a metric and has no children")
            built.append(
                LeafIndicator(
                    id=draft.id,
                    name=draft.name,
                    weight=weight,
                    metric=draft.metric,
                    target=draft.target,
                    direction=draft.direction,
                )
            )
    return built
