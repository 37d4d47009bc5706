"""Control charts: the Western Electric rules one by one, EWMA and CUSUM against published worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.alerts.rules import spc
from services.alerts.rules.base import Observation, Point

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# NIST/SEMATECH e-Handbook of Statistical Methods, 6.3.2.4 (EWMA control charts): target 50, s = 2.0539, λ = 0.3.
NIST_EWMA_DATA = [52.0, 47.0, 53.0, 49.3, 50.1, 47.0, 51.0, 50.1, 51.2, 50.5, 49.6, 47.6, 49.9, 51.3, 47.8, 51.2,
                  52.6, 52.4, 53.6, 52.1]  # fmt: skip
NIST_EWMA = [50.60, 49.52, 50.56, 50.18, 50.16, 49.21, 49.75, 49.85, 50.26, 50.33, 50.11, 49.36, 49.52, 50.05, 49.38,
             49.92, 50.73, 51.23, 51.94, 51.99]  # fmt: skip

# Montgomery & Runger, Applied Statistics and Probability for Engineers, Example 16-6 (tabular CUSUM):
# target 99, K = 1, H = 10 (σ = 1 here, so k = 1 and h = 10 in σ units).
MONTGOMERY_DATA = [102.0, 94.8, 98.3, 98.4, 102.0, 98.5, 99.0, 97.7, 100.0, 98.1, 101.3, 98.7, 101.1, 98.4, 97.0,
                   96.7, 100.3, 101.4, 97.2, 101.0]  # fmt: skip
MONTGOMERY_UPPER = [2.0, 0, 0, 0, 2.0, 0.5, 0, 0, 0, 0, 1.3, 0, 1.1, 0, 0, 0, 0.3, 1.7, 0, 1.0]
MONTGOMERY_LOWER = [0, 3.2, 2.9, 2.5, 0, 0, 0, 0.3, 0, 0, 0, 0, 0, 0, 1.0, 2.3, 0, 0, 0.8, 0]


def test_ewma__statistic_and_limits_equal_the_nist_worked_example():
    assert [round(v, 2) for v in spc.ewma_series(NIST_EWMA_DATA, 50, 0.3)] == NIST_EWMA
    low, high = spc.ewma_limits(50, 2.0539, 0.3, 3)
    # The handbook prints UCL = 52.5884 and LCL = 47.4115 (computed with √(λ/(2−λ)) rounded to 0.4201).
    assert high == pytest.approx(52.5884, abs=1e-4)
    assert low == pytest.approx(47.4115, abs=1e-4)


def test_ewma__the_nist_example_is_in_control_and_a_shift_is_caught():
    params = spc.Params(kind="spc", chart="ewma", centre=50, sigma=2.0539, lambda_=0.3, width=3, sides="both")
    assert _firing(params, NIST_EWMA_DATA) == [False] * 20
    assert _firing(params, [47.0, 46.5, 46.0, 46.0])[-1] is True


def test_cusum__sums_equal_the_montgomery_worked_example():
    high = low = 0.0
    uppers, lowers = [], []
    for x in MONTGOMERY_DATA:
        high, low = spc.cusum_step(high, low, x - 99, 1)
        uppers.append(round(high, 1))
        lowers.append(round(low, 1))
    assert uppers == MONTGOMERY_UPPER
    assert lowers == MONTGOMERY_LOWER


def test_cusum__the_example_stays_below_h_and_a_sustained_shift_crosses_it():
    params = spc.Params(kind="spc", chart="cusum", centre=99, sigma=1, k=1, h=10, sides="both")
    assert _firing(params, MONTGOMERY_DATA) == [False] * 20
    shifted = _firing(params, [96.0] * 6)  # each point adds 3 − k = 2 to the lower sum; it must exceed h
    assert shifted == [False] * 5 + [True]


@pytest.mark.parametrize(
    ("rule", "zs", "fires"),
    [
        (1, [0, 0, -3.1], True),
        (1, [0, 0, -2.9], False),
        (2, [-2.1, 0.5, -2.2], True),
        (2, [-2.1, 2.2, 0.1], False),
        (2, [-2.1, 0.5, 2.2], False),  # two beyond 2σ, but on opposite sides
        (3, [-1.1, -1.2, 0.3, -1.5, -1.1], True),
        (3, [-1.1, -1.2, 0.3, 0.5, -1.1], False),
        (4, [-0.1] * 8, True),
        (4, [-0.1] * 7 + [0.1], False),
    ],
)
def test_western_electric__each_rule(rule, zs, fires):
    broken = spc.western_electric(zs, [rule])
    assert (broken == [(rule, "low")]) is fires


def test_western_electric__high_side_mirrors_low_side():
    assert spc.western_electric([0.2] * 8, [4]) == [(4, "high")]


def test_shewhart__estimates_centre_and_sigma_from_its_baseline_then_watches():
    params = spc.Params(kind="spc", baseline_periods=5, western_electric=[1])
    baseline = [80.0, 82.0, 80.0, 82.0, 80.0]  # mean 80.8, moving range 2 → σ = 2/1.128
    states = _firing(params, [*baseline, 80.0, 70.0])
    assert states == [False] * 6 + [True]


def test_shewhart__clears_on_the_next_point_in_control():
    params = spc.Params(kind="spc", centre=80, sigma=2, western_electric=[1])
    assert _firing(params, [79, 70, 79]) == [False, True, False]


def test_spc__reads_only_completed_periods_it_has_not_seen():
    params = spc.Params(kind="spc", centre=80, sigma=2, western_electric=[1])
    history = (Point(T0, 70, 10),)
    verdict, state = spc.evaluate(params, {}, Observation(T0 + DAY, Point(T0 + DAY, 80, 3), history), firing=False)
    assert verdict.holds is True and verdict.threshold == 74
    again, _ = spc.evaluate(params, state, Observation(T0 + DAY, Point(T0 + DAY, 80, 4), history), firing=True)
    assert again.holds is None


def test_spc__centre_without_sigma_is_refused():
    with pytest.raises(ValidationError, match="centre and sigma"):
        spc.Params(kind="spc", centre=80)


def _firing(params, values, *, n=10):
    """Feed each value as a completed period, one at a time; answer the firing state after each."""
    state: dict = {}
    firing, out = False, []
    history: list[Point] = []
    for i, value in enumerate(values):
        history.append(Point(T0 + i * DAY, value, n))
        at = T0 + (i + 1) * DAY
        verdict, state = spc.evaluate(params, state, Observation(at, Point(at, None, 0), tuple(history)), firing=firing)
        if verdict.holds is not None:
            firing = verdict.holds
        out.append(firing)
    return out
