"""Verified closure on constructed score series: recovery for N periods verifies, the window's end reopens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.improvement.domain.verification import Observation, Watch, assess, infer_comparison

DONE = datetime(2026, 11, 2, tzinfo=UTC)
WATCH = Watch(
    indicator="csat",
    clear_bound=65,
    comparison="below",
    periods=3,
    min_samples=5,
    since=DONE,
    window_ends=DONE + timedelta(days=14),
)


def day(n: int) -> datetime:
    return DONE + timedelta(days=n)


def series(*values: float | None, samples: int = 10) -> list[Observation]:
    return [Observation(day(i), value, samples) for i, value in enumerate(values)]


def test_three_recovered_days_in_a_row_verify():
    verdict = assess(WATCH, series(70, 66, 65), now=day(3))
    assert verdict.outcome == "verified"
    assert verdict.streak == 3
    assert verdict.reason == "csat back past 65 for 3 consecutive period(s) (last 65)"


def test_a_relapse_restarts_the_run():
    verdict = assess(WATCH, series(70, 72, 60, 70, 71), now=day(5))
    assert (verdict.outcome, verdict.streak) == ("watching", 2)
    assert assess(WATCH, series(70, 72, 60, 70, 71, 80), now=day(6)).outcome == "verified"


def test_the_threshold_is_not_enough_the_clearing_bound_counts():
    # Above the rule's threshold (say 60) but below its clearing bound of 65: not recovered.
    assert assess(WATCH, series(62, 63, 64, 64), now=day(4)).streak == 0


def test_periods_with_too_few_samples_neither_count_nor_break_the_run():
    observations = [*series(70, 70), Observation(day(2), 20, 2), Observation(day(3), 80, 9)]
    assert assess(WATCH, observations, now=day(4)).outcome == "verified"
    thin = [Observation(day(i), 90, 4) for i in range(5)]
    assert assess(WATCH, thin, now=day(5)).streak == 0


def test_insufficient_flag_and_missing_values_do_not_count():
    observations = [Observation(day(0), 90, 50, insufficient=True), Observation(day(1), None, 50)]
    assert assess(WATCH, observations, now=day(2)).streak == 0


def test_periods_before_the_action_was_done_do_not_count():
    before = [Observation(DONE - timedelta(days=i), 90, 10) for i in (1, 2, 3)]
    assert assess(WATCH, before, now=day(1)).streak == 0


def test_the_latest_figure_of_a_period_counts():
    # The same day first looked good, then bad once more feedback came in.
    observations = [*series(70, 70), Observation(day(1), 50, 12), Observation(day(2), 70, 10)]
    assert assess(WATCH, observations, now=day(3)).streak == 1


def test_the_window_ends_without_recovery__reopened_with_the_reason():
    verdict = assess(WATCH, series(70, 60, 66, 61), now=WATCH.window_ends)
    assert verdict.outcome == "reopened"
    assert "csat was not back past 65 for 3 consecutive period(s)" in verdict.reason
    assert "last value 61" in verdict.reason


def test_the_window_ends_without_any_figure():
    verdict = assess(WATCH, [], now=WATCH.window_ends + timedelta(seconds=1))
    assert verdict.outcome == "reopened"
    assert "no period with enough samples" in verdict.reason


def test_before_the_window_ends_it_keeps_watching():
    assert assess(WATCH, series(60), now=WATCH.window_ends - timedelta(seconds=1)).outcome == "watching"


def test_a_ceiling_rule_recovers_downwards():
    waiting = Watch("waiting_time", 300, "above", 2, 5, DONE, DONE + timedelta(days=7))
    assert assess(waiting, series(280, 300), now=day(2)).outcome == "verified"
    assert assess(waiting, series(280, 301), now=day(2)).outcome == "watching"


def test_the_direction_inferred_from_the_breach():
    assert infer_comparison(40, 60) == "below"
    assert infer_comparison(900, 600) == "above"
