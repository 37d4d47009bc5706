"""Behaviour of the aggregation rules: what one feedback adds, periods and rolling windows."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scoring.aggregation import Window, difference, feedback_stats, period_start, ranked, window
from shared.events import IndicatorScore, Ratings, ServqualItem


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
