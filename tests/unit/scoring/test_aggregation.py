"""Behaviour of the aggregation rules: what one feedback adds, periods and rolling windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.aggregation import (
    PERIODS,
    AggregateKey,
    Contributions,
    Move,
    Window,
    difference,
    feedback_stats,
    period_start,
    ranked,
    window,
)
from services.scoring.statistics import QUALITY_DIMENSIONS, SERVQUAL_DIMENSIONS, MetricStats, merge_all
from shared.events import IndicatorScore, Ratings, ServqualItem
from shared.tree import lineage


def test_feedback_stats__counts_every_rating_measure_and_sentiment():
    ratings = Ratings(
        csat=4,
        nps=8,
        ces=2,
        servqual={
            "empathy": ServqualItem(perception=5, expectation=7),
            "tangibles": ServqualItem(perception=6, expectation=5),
        },
        dimensions={"speed": 3, "cost": 5},
        measures={"waiting_time_seconds": 90.5},
    )

    stats = feedback_stats(ratings, 0.75)

    assert stats.to_increments() == {
        "n": 1,
        "csat.n": 1,
        "csat.sum": 4,
        "csat.sumsq": 16,
        "csat.h.4": 1,
        "nps.n": 1,
        "nps.sum": 8,
        "nps.sumsq": 64,
        "nps.h.8": 1,
        "ces.n": 1,
        "ces.sum": 2,
        "ces.sumsq": 4,
        "ces.h.2": 1,
        "servqual.empathy.p.n": 1,
        "servqual.empathy.p.sum": 5,
        "servqual.empathy.p.sumsq": 25,
        "servqual.empathy.e.n": 1,
        "servqual.empathy.e.sum": 7,
        "servqual.empathy.e.sumsq": 49,
        "servqual.empathy.gap.n": 1,
        "servqual.empathy.gap.sum": -2,
        "servqual.empathy.gap.sumsq": 4,
        "servqual.tangibles.p.n": 1,
        "servqual.tangibles.p.sum": 6,
        "servqual.tangibles.p.sumsq": 36,
        "servqual.tangibles.e.n": 1,
        "servqual.tangibles.e.sum": 5,
        "servqual.tangibles.e.sumsq": 25,
        "servqual.tangibles.gap.n": 1,
        "servqual.tangibles.gap.sum": 1,
        "servqual.tangibles.gap.sumsq": 1,
        # The respondent's mean gap (−2 + 1) / 2 = −0.5, in sixtieths.
        "servqual.gap.n": 1,
        "servqual.gap.sum": -30,
        "servqual.gap.sumsq": 900,
        "dimension.speed.n": 1,
        "dimension.speed.sum": 3,
        "dimension.speed.sumsq": 9,
        "dimension.speed.h.3": 1,
        "dimension.cost.n": 1,
        "dimension.cost.sum": 5,
        "dimension.cost.sumsq": 25,
        "dimension.cost.h.5": 1,
        "sentiment.n": 1,
        "sentiment.sum": 750,
        "sentiment.sumsq": 562_500,
        "measure.waiting_time_seconds.n": 1,
        "measure.waiting_time_seconds.sum": 90_500,
        "measure.waiting_time_seconds.sumsq": 8_190_250_000,
    }


def test_period_start__puts_a_moment_in_its_hour_day_week_and_month():
    moment = datetime(2026, 11, 5, 14, 37, 12, tzinfo=UTC)  # a Thursday

    assert period_start("hour", moment) == datetime(2026, 11, 5, 14, tzinfo=UTC)
    assert period_start("day", moment) == datetime(2026, 11, 5, tzinfo=UTC)
    assert period_start("week", moment) == datetime(2026, 11, 2, tzinfo=UTC)
    assert period_start("month", moment) == datetime(2026, 11, 1, tzinfo=UTC)


def test_window__rolling_24h_is_the_current_hour_and_the_23_before():
    span = window("rolling_24h", datetime(2026, 11, 5, 14, 37, tzinfo=UTC))

    assert span == Window("hour", datetime(2026, 11, 4, 15, tzinfo=UTC), datetime(2026, 11, 5, 14, tzinfo=UTC))


def test_window__rolling_7d_is_today_and_the_6_days_before():
    span = window("rolling_7d", datetime(2026, 11, 5, 14, 37, tzinfo=UTC))

    assert span == Window("day", datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))


def test_window__a_stored_period_is_its_single_aggregate():
    span = window("week", datetime(2026, 11, 5, 14, 37, tzinfo=UTC))

    assert span == Window("week", datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))


def test_ranked__best_score_first_ties_by_name_and_no_score_last():
    assert ranked({"c": 50.0, "a": None, "b": 80.0, "d": 50.0}) == ["b", "c", "d", "a"]


def test_difference__is_b_minus_a_and_none_without_both_values():
    a = IndicatorScore(value=40.0, sample_size=5, insufficient=False)
    b = IndicatorScore(value=55.5, sample_size=9, insufficient=False)

    assert difference(a, b) == 15.5
    assert difference(a, IndicatorScore(value=None, sample_size=0, insufficient=True)) is None
    assert difference(None, b) is None


def test_move__to_another_region_leaves_and_joins_region_and_city():
    move = Move("north/beijing/b1", "south/shanghai/b1")

    assert move.is_subtree_root
    assert (move.ancestors_left(), move.ancestors_joined()) == (
        ["north", "north/beijing"],
        ["south", "south/shanghai"],
    )


def test_move__within_a_region_keeps_the_region():
    move = Move("north/beijing/b1", "north/tianjin/b1")

    assert (move.ancestors_left(), move.ancestors_joined()) == (["north/beijing"], ["north/tianjin"])


def test_move__to_the_top_level_leaves_every_ancestor():
    move = Move("north/beijing/b1", "b1")

    assert move.is_subtree_root
    assert (move.ancestors_left(), move.ancestors_joined()) == (["north", "north/beijing"], [])


def test_move__a_descendant_keeps_its_parent_and_changes_no_ancestor_figures():
    move = Move("north/beijing/b1/d1", "south/shanghai/b1/d1")

    assert not move.is_subtree_root
    assert (move.ancestors_left(), move.ancestors_joined()) == ([], [])


# ---------------------------------------------------------------------------
# Properties

ratings_strategy = st.builds(
    Ratings,
    csat=st.none() | st.integers(1, 5),
    nps=st.none() | st.integers(0, 10),
    ces=st.none() | st.integers(1, 7),
    servqual=st.dictionaries(
        st.sampled_from(SERVQUAL_DIMENSIONS),
        st.builds(ServqualItem, perception=st.integers(1, 7), expectation=st.integers(1, 7)),
    ),
    dimensions=st.dictionaries(st.sampled_from(QUALITY_DIMENSIONS), st.integers(1, 5)),
    measures=st.dictionaries(st.sampled_from(["waiting_time_seconds", "resolved"]), st.floats(0.0, 10_000.0)),
)
moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 3, 31), timezones=st.just(UTC))


@st.composite
def trees(draw: st.DrawFn) -> list[str]:
    """The unit paths of a random tree under one root: each new unit hangs under any earlier one."""
    paths = ["u0"]
    for unit in range(1, draw(st.integers(1, 12))):
        paths.append(f"{paths[draw(st.integers(0, unit - 1))]}/u{unit}")
    return paths


@given(trees(), st.lists(st.tuples(st.integers(0, 11), ratings_strategy, moments, st.none() | st.floats(0, 1))))
def test_contributions__a_unit_rolls_up_its_own_feedback_and_its_childrens(
    paths: list[str], feedback: list[tuple[int, Ratings, datetime, float | None]]
) -> None:
    contributions = Contributions()
    direct: dict[AggregateKey, list[MetricStats]] = {}
    for unit, ratings, moment, sentiment in feedback:
        path, stats = paths[unit % len(paths)], feedback_stats(ratings, sentiment)
        contributions.add("org", lineage(path), moment, stats)
        for period in PERIODS:
            direct.setdefault(AggregateKey("org", path, period, period_start(period, moment)), []).append(stats)

    rolled_up = contributions.deltas
    assert set(rolled_up) == {replace(key, unit_path=above) for key in direct for above in lineage(key.unit_path)}
    for key, stats in rolled_up.items():
        children = [path for path in paths if path.rpartition("/")[0] == key.unit_path]
        parts = [rolled_up.get(replace(key, unit_path=child), MetricStats.empty()) for child in children]
        assert stats == merge_all([*parts, *direct.get(key, [])]), key
    everything = [feedback_stats(ratings, sentiment) for _, ratings, _, sentiment in feedback]
    assert rolled_up.get(
        AggregateKey("org", "u0", "all", period_start("all", datetime.now(UTC))), MetricStats.empty()
    ) == (merge_all(everything))
