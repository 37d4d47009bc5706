"""Drop against a baseline: previous period or trailing average, points or percent, samples on both sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerts.rules import baseline
from services.alerts.rules.base import Observation, Point

DAY = timedelta(days=1)
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _observe(values, current, *, n=20, current_n=20):
    history = tuple(Point(T0 + i * DAY, v, n) for i, v in enumerate(values))
    at = T0 + len(values) * DAY
    return Observation(at, Point(at, current, current_n), history)


def test_baseline__a_drop_of_the_given_points_against_the_previous_period_fires():
    params = baseline.Params(kind="baseline", change=10)
    verdict, _ = baseline.evaluate(params, {}, _observe([80], 69), firing=False)
    assert verdict.holds is True
    assert verdict.threshold == 70 and verdict.details["baseline"] == 80


def test_baseline__a_smaller_drop_does_not():
    params = baseline.Params(kind="baseline", change=10)
    assert baseline.evaluate(params, {}, _observe([80], 71), firing=False)[0].holds is None


def test_baseline__trailing_average_weighs_periods_by_their_samples():
    params = baseline.Params(kind="baseline", baseline="trailing", trailing_periods=2, change=20, change_unit="percent")
    history = (Point(T0, 90, 30), Point(T0 + DAY, 60, 10))  # weighted mean 82.5, 20% lower is 66
    observation = Observation(T0 + 2 * DAY, Point(T0 + 2 * DAY, 66, 20), history)
    verdict, _ = baseline.evaluate(params, {}, observation, firing=False)
    assert verdict.holds is True
    assert verdict.threshold == 66


def test_baseline__needs_minimum_samples_on_both_sides():
    params = baseline.Params(kind="baseline", change=10, min_samples=10)
    assert baseline.evaluate(params, {}, _observe([80], 10, current_n=9), firing=False)[0].holds is None
    assert baseline.evaluate(params, {}, _observe([80], 10, n=9), firing=False)[0].holds is None


def test_baseline__clears_once_the_drop_is_below_half_of_it():
    params = baseline.Params(kind="baseline", change=10)
    assert baseline.evaluate(params, {}, _observe([80], 74), firing=True)[0].holds is None
    assert baseline.evaluate(params, {}, _observe([80], 76), firing=True)[0].holds is False


def test_baseline__a_rise_rule_watches_the_other_way():
    params = baseline.Params(kind="baseline", change=50, change_unit="percent", direction="rise")
    verdict, _ = baseline.evaluate(params, {}, _observe([100], 150), firing=False)
    assert verdict.holds is True and verdict.comparison == "above"
