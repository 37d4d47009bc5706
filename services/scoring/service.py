"""Use cases of the scoring service's REST API: units in scope, figures over periods, index system changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scoring import repository
from services.scoring.aggregation import (
    ROLLING_WINDOWS,
    difference,
    period_start,
    ranked,
    score,
    window,
)
from services.scoring.dependencies import ScoringRuntime
from services.scoring.index_system import IndexSystem, build_index_system, default_index_system
from services.scoring.models import (
    ChildRank,
    ComparisonRead,
    IndexSystemRead,
    IndexSystemUpdate,
    IndicatorChange,
    RankingRead,
    ScoreRead,
    SeriesPoint,
    SeriesRead,
)
from services.scoring.statistics import MetricStats
from shared import audit
from shared.auth import Principal
from shared.events import IndexSystemChanged, IndicatorScore
from shared.problems import NotFound, Problem
from shared.storage import Document

# A longer series keeps only its newest points: about six weeks of hours, or nearly three years of days.
MAX_SERIES_POINTS = 1000
SERIES_DEFAULT_SPAN = {
    "hour": timedelta(days=2),
    "day": timedelta(days=30),
    "week": timedelta(weeks=26),
    "month": timedelta(days=365),
}


async def get_unit(runtime: ScoringRuntime, *, principal: Principal, unit_id: str) -> Document:
    """The unit, if the principal's organisation and scopes include it; 404 otherwise, as for a missing one."""
    unit = await repository.get_unit(runtime.db, principal.org, unit_id)
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", unit_id)
    return unit


async def get_policy(runtime: ScoringRuntime, *, org: str) -> repository.ScoringPolicy:
    """The organisation's current index system and minimum sample size, the defaults until it sets them."""
    return (await repository.current_policies(runtime.db, [org], default_min_samples=runtime.settings.min_samples))[org]


def as_utc(moment: datetime) -> datetime:
    """A moment in UTC; one without a zone is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def figures(
    system: IndexSystem, stats: MetricStats, min_samples: int
) -> tuple[float | None, dict[str, IndicatorScore]]:
    """The composite and every indicator (with the composite under ``composite``)."""
    result, indicators = score(system, stats, min_samples)
    return result.score, indicators


def check_indicator(system: IndexSystem, indicator: str) -> None:
    """422 unless the indicator is the composite or one of the index system's."""
    known = ["composite", *(i.id for i in system.iter_indicators())]
    if indicator not in known:
        raise Problem(
            422,
            "Unknown indicator",
            f"{indicator!r} is not in index system version {system.version}: {', '.join(known)}",
        )


async def get_score(runtime: ScoringRuntime, *, unit: Document, period: str) -> ScoreRead:
    """A unit's figures for the latest stored period, or for a rolling window ending now."""
    org, path = unit["org"], unit["path"]
    if period in ROLLING_WINDOWS:
        span = window(period, datetime.now(UTC))
        stats = (await repository.window_stats(runtime.db, org, [path], span)).get(path, MetricStats.empty())
        start = span.first
    else:
        document = await repository.get_latest_aggregate(runtime.db, org, path, period)
        if document is None:
            raise NotFound("score for unit", unit["id"])
        stats, start = repository.aggregate_stats(document), document["period_start"]
    policy = await get_policy(runtime, org=org)
    system = policy.system
    composite, indicators = figures(system, stats, policy.min_samples)
    return ScoreRead(
        unit_id=unit["id"],
        unit_path=path,
        period=period,
        period_start=start,
        sample_size=stats.n,
        composite=composite,
        index_version=system.version,
        indicators=indicators,
    )


async def get_series(
    runtime: ScoringRuntime,
    *,
    unit: Document,
    indicator: str,
    period: str,
    start: datetime | None,
    end: datetime | None,
) -> SeriesRead:
    """An indicator of a unit per period from ``start`` to ``end`` (by default the recent past)."""
    policy = await get_policy(runtime, org=unit["org"])
    system = policy.system
    check_indicator(system, indicator)
    last = period_start(period, as_utc(end) if end else datetime.now(UTC))
    first = period_start(period, as_utc(start) if start else last - SERIES_DEFAULT_SPAN[period])
    stored = await repository.series_stats(
        runtime.db, unit["org"], unit["path"], period, first, last, MAX_SERIES_POINTS
    )
    points = [
        SeriesPoint(period_start=moment, **figures(system, stats, policy.min_samples)[1][indicator].model_dump())
        for moment, stats in stored
    ]
    return SeriesRead(
        unit_id=unit["id"],
        unit_path=unit["path"],
        indicator=indicator,
        period=period,
        index_version=system.version,
        points=points,
    )


async def get_ranking(
    runtime: ScoringRuntime, *, unit: Document, indicator: str, period: str, at: datetime | None
) -> RankingRead:
    """The unit's active children ranked on an indicator in the period (or rolling window) containing ``at``."""
    policy = await get_policy(runtime, org=unit["org"])
    system = policy.system
    check_indicator(system, indicator)
    children = {
        child["path"]: child for child in await repository.list_active_children(runtime.db, unit["org"], unit["id"])
    }
    span = window(period, as_utc(at) if at else datetime.now(UTC))
    stats = await repository.window_stats(runtime.db, unit["org"], children, span)
    by_path = {
        path: figures(system, stats.get(path, MetricStats.empty()), policy.min_samples)[1][indicator]
        for path in children
    }
    order = ranked({path: figure.score for path, figure in by_path.items()})
    return RankingRead(
        unit_id=unit["id"],
        unit_path=unit["path"],
        indicator=indicator,
        period=period,
        period_start=span.first,
        index_version=system.version,
        children=[
            ChildRank(
                rank=place,
                unit_id=children[path]["id"],
                unit_path=path,
                name=children[path]["name"],
                **by_path[path].model_dump(),
            )
            for place, path in enumerate(order, start=1)
        ],
    )


async def get_comparison(
    runtime: ScoringRuntime, *, unit: Document, period: str, a: datetime, b: datetime
) -> ComparisonRead:
    """Every indicator of a unit in the periods (or rolling windows) containing ``a`` and ``b``."""
    policy = await get_policy(runtime, org=unit["org"])
    system = policy.system
    spans = [window(period, as_utc(moment)) for moment in (a, b)]
    both = []
    for span in spans:
        stats = (await repository.window_stats(runtime.db, unit["org"], [unit["path"]], span)).get(unit["path"])
        both.append(figures(system, stats, policy.min_samples)[1] if stats else {})
    names = ["composite", *(i.id for i in system.iter_indicators())]
    return ComparisonRead(
        unit_id=unit["id"],
        unit_path=unit["path"],
        period=period,
        a_start=spans[0].first,
        b_start=spans[1].first,
        index_version=system.version,
        indicators=[
            IndicatorChange(
                indicator=name,
                a=both[0].get(name),
                b=both[1].get(name),
                difference=difference(both[0].get(name), both[1].get(name)),
            )
            for name in names
        ],
    )


async def get_index_system_read(runtime: ScoringRuntime, *, org: str) -> IndexSystemRead:
    """The organisation's current index system with its AHP consistency, minimum sample size and who changed it."""
    default_min_samples = runtime.settings.min_samples
    stored = (await repository.current_index_system_documents(runtime.db, [org])).get(org)
    if stored is None:
        return IndexSystemRead(
            index_system=default_index_system(),
            min_samples=default_min_samples,
            consistency=[],
            changed_at=None,
            changed_by=None,
        )
    return IndexSystemRead(
        index_system=IndexSystem.model_validate(stored["system"]),
        min_samples=stored.get("min_samples") or default_min_samples,
        consistency=stored["consistency"],
        changed_at=stored["changed_at"],
        changed_by=stored["changed_by"],
    )


async def change_index_system(
    runtime: ScoringRuntime, *, principal: Principal, update: IndexSystemUpdate
) -> IndexSystemRead:
    """Store the update as the organisation's next index system version; 409 if made from a stale version.

    A minimum sample size left out keeps the current one; one never set follows the service's default.
    """
    stored = (await repository.current_index_system_documents(runtime.db, [principal.org])).get(principal.org)
    current = IndexSystem.model_validate(stored["system"]) if stored else default_index_system()
    if update.version is not None and update.version != current.version:
        raise Problem(
            409,
            "Stale index system",
            f"the change was made from version {update.version}; current is {current.version}",
        )
    system, consistency = build_index_system(update, current.version + 1)
    min_samples = update.min_samples or (stored or {}).get("min_samples")
    changed = IndexSystemRead(
        index_system=system,
        min_samples=min_samples or runtime.settings.min_samples,
        consistency=consistency,
        changed_at=datetime.now(UTC),
        changed_by=principal.subject,
    )
    work = runtime.unit_of_work()
    repository.create_index_system(
        work,
        principal.org,
        system,
        {
            **changed.model_dump(mode="python", include={"consistency", "changed_at", "changed_by"}),
            "min_samples": min_samples,
        },
    )
    before = await get_index_system_read(runtime, org=principal.org) if stored else None
    audit.record(
        work,
        principal,
        "update",
        "index_system",
        principal.org,
        before.model_dump(mode="json") if before else None,
        changed.model_dump(mode="json"),
    )
    # In the same transaction: whoever checks indicator ids (alert rules) learns of the change exactly once.
    work.publish(
        IndexSystemChanged(
            org=principal.org,
            index_version=system.version,
            indicators=["composite", *(indicator.id for indicator in system.iter_indicators())],
        )
    )
    try:
        await runtime.commit(work)
    except repository.StaleIndexSystem as error:
        raise Problem(409, "Stale index system", "another change made the next version first; reload") from error
    return changed
