"""Rules on single feedback, and SLO burn rates with the SRE Workbook's windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.alerts import rules
from services.alerts.rules import burn_rate, event
from services.alerts.rules.base import Feedback

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(("severity", "fires"), [("moderate", False), ("serious", True), ("critical", True)])
def test_event__a_complaint_of_serious_or_worse_fires_at_once(severity, fires):
    params = event.Params(kind="event", match="complaint")
    feedback = Feedback(at=T0, kind="complaint", complaint_severity=severity)
    verdict, _ = event.evaluate(params, {}, feedback, firing=False)
    assert (verdict.holds is True) is fires


def test_event__a_second_match_while_firing_raises_nothing_new_and_keeps_it_open():
    params = event.Params(kind="event", resolve_after_seconds=3600)
    first = Feedback(at=T0, kind="complaint", complaint_severity="serious")
    _, state = event.evaluate(params, {}, first, firing=False)
    later = Feedback(at=T0 + 30 * MINUTE, kind="complaint", complaint_severity="critical")
    verdict, state = event.evaluate(params, state, later, firing=True)
    assert verdict.holds is None and state["matched"] == 2
    assert event.recheck(params, state, T0 + 60 * MINUTE, firing=True)[0].holds is None
    assert event.recheck(params, state, T0 + 90 * MINUTE, firing=True)[0].holds is False


def test_event__a_lowest_rating_fires_only_with_a_comment():
    params = event.Params(kind="event", match="low_rating")
    silent = Feedback(at=T0, kind="rating", csat=1)
    spoken = Feedback(at=T0, kind="rating", csat=1, has_comment=True)
    assert event.evaluate(params, {}, silent, firing=False)[0].holds is None
    assert event.evaluate(params, {}, spoken, firing=False)[0].holds is True


def test_event__an_audit_below_its_score_fires():
    params = event.Params(kind="event", match="audit", audit_below=70)
    assert event.evaluate(params, {}, Feedback(at=T0, kind="audit", audit_percent=65), firing=False)[0].holds
    assert event.evaluate(params, {}, Feedback(at=T0, kind="audit", audit_percent=75), firing=False)[0].holds is None


def _rate(params, state, *, start, minutes, bad_share, per_minute=4, firing=False):
    """Feed ratings for ``minutes`` from ``start``: ``bad_share`` of them bad (rating 1), the rest 5."""
    verdict = None
    for minute in range(minutes):
        for i in range(per_minute):
            index = minute * per_minute + i
            bad = int((index + 1) * bad_share) > int(index * bad_share)  # spread evenly
            feedback = Feedback(at=start + minute * MINUTE, kind="rating", csat=1 if bad else 5)
            latest, state = burn_rate.evaluate(params, state, feedback, firing=firing)
            if latest.holds is not None:
                firing, verdict = latest.holds, latest
    return firing, state, verdict


def test_burn_rate__workbook_defaults():
    params = burn_rate.Params(kind="burn_rate")
    assert [(w.burn_rate, w.long_seconds, w.short_seconds) for w in params.windows] == [
        (14.4, 3600, 300),
        (6, 21600, 1800),
        (1, 259200, 21600),
    ]


def test_burn_rate__an_error_ratio_sustained_over_both_windows_fires():
    # 99% objective: 14.4× burns an error ratio of 14.4%; 20% bad for an hour burns both the 1 h and 5 m windows.
    params = burn_rate.Params(kind="burn_rate", objective=0.99, windows=[burn_rate.WORKBOOK_WINDOWS[0]])
    firing, _, verdict = _rate(params, {}, start=T0, minutes=60, bad_share=0.2)
    assert firing is True
    assert verdict.threshold == pytest.approx(85.6)


def test_burn_rate__the_short_window_alone_does_not_fire():
    params = burn_rate.Params(kind="burn_rate", objective=0.99, windows=[burn_rate.WORKBOOK_WINDOWS[0]])
    # 55 good minutes, then 5 minutes of all bad: the 5 m window burns 100×, the hour only ~8.3%/1% = 8.3×.
    firing, state, _ = _rate(params, {}, start=T0, minutes=55, bad_share=0)
    firing, _, _ = _rate(params, state, start=T0 + 55 * MINUTE, minutes=5, bad_share=1, firing=firing)
    assert firing is False


def test_burn_rate__the_long_window_alone_does_not_fire_and_recovery_clears():
    params = burn_rate.Params(kind="burn_rate", objective=0.99, windows=[burn_rate.WORKBOOK_WINDOWS[0]])
    firing, state, _ = _rate(params, {}, start=T0, minutes=60, bad_share=0.3)
    assert firing is True
    # Ten good minutes: the hour still burns above 14.4×, the last 5 minutes do not, so it clears.
    firing, state, _ = _rate(params, state, start=T0 + 60 * MINUTE, minutes=10, bad_share=0, firing=True)
    assert firing is False


def test_burn_rate__a_quiet_spell_clears_on_the_timer():
    params = burn_rate.Params(kind="burn_rate", objective=0.99, windows=[burn_rate.WORKBOOK_WINDOWS[0]])
    firing, state, verdict = _rate(params, {}, start=T0, minutes=60, bad_share=0.3)
    assert firing and verdict.recheck_at is not None
    cleared, _ = burn_rate.recheck(params, state, T0 + 70 * MINUTE, firing=True)
    assert cleared.holds is False


def test_burn_rate__a_rate_that_could_never_fire_is_refused_naming_the_window():
    with pytest.raises(ValidationError, match=r"windows\.0\.burn_rate"):
        burn_rate.Params(kind="burn_rate", objective=0.9)


def test_rules__parse_picks_the_kind_and_defaults_to_threshold():
    assert rules.parse({"threshold": 60}).kind == "threshold"
    assert rules.parse({"kind": "event"}).kind == "event"
    assert rules.source_of(rules.parse({"kind": "burn_rate"})) == "feedback"
