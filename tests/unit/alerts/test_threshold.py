"""Threshold rules: `for`, hysteresis, minimum samples; no flapping around the bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.alerts.rules import threshold
from services.alerts.rules.base import Observation, Point

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _run(params, values, *, n=10, step=timedelta(minutes=1)):
    """Feed values one a step apart; answer the firing state after each."""
    state: dict = {}
    firing, states = False, []
    for i, value in enumerate(values):
        at = T0 + i * step
        verdict, state = threshold.evaluate(params, state, Observation(at, Point(at, value, n)), firing=firing)
        if verdict.holds is not None:
            firing = verdict.holds
        states.append(firing)
    return states


def test_threshold__fires_below_and_clears_only_past_the_clearing_bound():
    params = threshold.Params(threshold=60, clear_bound=65)
    assert _run(params, [70, 59, 61, 64.9, 65]) == [False, True, True, True, False]


def test_threshold__a_value_oscillating_around_the_bound_does_not_flap():
    params = threshold.Params(threshold=60, clear_bound=65)
    states = _run(params, [59.5, 60.5] * 10)
    assert states == [True] * 20


def test_threshold__without_hysteresis_the_same_oscillation_flaps():
    states = _run(threshold.Params(threshold=60), [59.5, 60.5] * 3)
    assert states == [True, False] * 3


def test_threshold__for_holds_fire_until_the_condition_has_lasted():
    params = threshold.Params(threshold=60, for_seconds=180)
    assert _run(params, [50, 50, 50, 50]) == [False, False, False, True]


def test_threshold__for_restarts_when_the_condition_lapses():
    params = threshold.Params(threshold=60, for_seconds=120)
    assert _run(params, [50, 50, 70, 50, 50, 50]) == [False, False, False, False, False, True]


def test_threshold__a_pending_condition_asks_for_a_recheck_and_fires_on_it():
    params = threshold.Params(threshold=60, for_seconds=300)
    verdict, state = threshold.evaluate(params, {}, Observation(T0, Point(T0, 40, 10)), firing=False)
    assert verdict.holds is None and verdict.recheck_at == T0 + timedelta(seconds=300)
    early, state = threshold.recheck(params, state, T0 + timedelta(seconds=299), firing=False)
    assert early.holds is None
    due, _ = threshold.recheck(params, state, T0 + timedelta(seconds=300), firing=False)
    assert due.holds is True and due.value == 40 and due.threshold == 60


@pytest.mark.parametrize(("n", "insufficient"), [(4, False), (50, True)])
def test_threshold__too_few_samples_say_nothing_either_way(n, insufficient):
    params = threshold.Params(threshold=60, min_samples=5)
    low = Observation(T0, Point(T0, 0, n, insufficient))
    assert threshold.evaluate(params, {}, low, firing=False)[0].holds is None
    high = Observation(T0, Point(T0, 100, n, insufficient))
    assert threshold.evaluate(params, {}, high, firing=True)[0].holds is None


def test_threshold__above_rules_mirror_below_rules():
    params = threshold.Params(comparison="above", threshold=300, clear_bound=270)
    assert _run(params, [301, 280, 270]) == [True, True, False]


def test_threshold__the_verdict_names_bound_clear_bound_and_sample():
    params = threshold.Params(threshold=60, clear_bound=65)
    verdict, _ = threshold.evaluate(params, {}, Observation(T0, Point(T0, 40, 7)), firing=False)
    assert (verdict.value, verdict.threshold, verdict.clear_bound, verdict.comparison, verdict.sample_size) == (
        40,
        60,
        65,
        "below",
        7,
    )


def test_threshold__a_clear_bound_on_the_bad_side_is_refused():
    with pytest.raises(ValidationError, match="clear_bound"):
        threshold.Params(threshold=60, clear_bound=50)
