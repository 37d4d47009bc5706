"""What a score.updated tells a done action: its indicator's figure, and the reading it counts as."""

from __future__ import annotations

from datetime import UTC, datetime

from services.improvement.handlers import observation_in
from shared.events import Envelope, IndicatorScore, ScoreUpdated

SENT = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def update(period: str, start: datetime | None, *, samples: int = 8, insufficient: bool = False) -> Envelope:
    score = ScoreUpdated(
        org="o",
        unit_id="b-1",
        unit_path="north/b-1",
        period=period,
        period_start=start,
        sample_size=samples,
        indicators={"csat": IndicatorScore(value=72.5, sample_size=samples, insufficient=insufficient)},
        composite=81.0,
        min_samples=5,
    )
    return Envelope(data=score, source="/tests", time=SENT)


def test_a_calendar_period__counts_as_that_period():
    day = datetime(2026, 12, 3, tzinfo=UTC)
    assert observation_in(update("day", day), "csat") == {
        "period_start": day,
        "value": 72.5,
        "sample_size": 8,
        "insufficient": False,
    }


def test_the_all_period__each_update_is_a_reading_of_its_own():
    for start in (None, datetime(1970, 1, 1, tzinfo=UTC)):
        observation = observation_in(update("all", start), "csat")
        assert observation is not None and observation["period_start"] == SENT


def test_too_few_samples_for_the_organisation__insufficient():
    observation = observation_in(update("day", SENT, samples=3), "csat")
    assert observation is not None and observation["insufficient"] is True
    flagged = observation_in(update("day", SENT, insufficient=True), "csat")
    assert flagged is not None and flagged["insufficient"] is True


def test_the_composite_and_a_missing_indicator():
    composite = observation_in(update("day", SENT), "composite")
    assert composite is not None and composite["value"] == 81.0
    assert observation_in(update("day", SENT), "nps") is None
