"""Behaviour of the scoring statistics: sufficient statistics, metrics, intervals, scores."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scoring.statistics import (
    QUALITY_DIMENSIONS,
    SERVQUAL_DIMENSIONS,
    Direction,
    FeedbackRatings,
    MetricStats,
    Moments,
    ces_mean,
    csat_mean,
    csat_share,
    dimension_mean,
    estimate,
    evaluate,
    measure_attainment,
    measure_mean,
    merge,
    merge_all,
    normalise,
    nps,
    nps_interval,
    parse_metric,
    sentiment_mean,
    servqual_expectation,
    servqual_gap,
    servqual_perception,
    subtract,
    t_interval,
    t_quantile,
    wilson_interval,
)


def stats_of(*feedback: Mapping[str, Any]) -> MetricStats:
    return merge_all(MetricStats.from_feedback(f) for f in feedback)


def nested(flat: Mapping[str, int]) -> dict[str, Any]:
    """What MongoDB stores after `$inc` with dotted keys."""
    doc: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return doc


# ---------------------------------------------------------------------------
# Input


def test_feedback_ratings__accept_an_empty_feedback() -> None:
    assert MetricStats.from_feedback({}) == MetricStats({"n": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {"csat": 6},
        {"csat": 0},
        {"nps": 11},
        {"ces": 8},
        {"csat": 4.5},
        {"servqual": {"reliability": {"perception": 8, "expectation": 3}}},
        {"servqual": {"reliability": {"perception": 5}}},
        {"servqual": {"friendliness": {"perception": 5, "expectation": 5}}},
        {"dimensions": {"speed": 6}},
        {"dimensions": {"beauty": 3}},
        {"sentiment": 1.5},
        {"sentiment": float("nan")},
        {"measures": {"waiting.time": 3.0}},
        {"measures": {"waiting_time_seconds": -1.0}},
        {"measures": {"waiting_time_seconds": float("inf")}},
        {"unknown": 1},
    ],
)
def test_feedback_ratings__reject_values_off_their_scale(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeedbackRatings.model_validate(bad)


# ---------------------------------------------------------------------------
# The flat representation


def test_from_feedback__writes_count_sum_sumsq_and_histogram() -> None:
    stats = MetricStats.from_feedback({"csat": 4, "nps": 9, "dimensions": {"speed": 2}})

    assert stats.to_increments() == {
        "n": 1,
        "csat.n": 1, "csat.sum": 4, "csat.sumsq": 16, "csat.h.4": 1,
        "nps.n": 1, "nps.sum": 9, "nps.sumsq": 81, "nps.h.9": 1,
        "dimension.speed.n": 1, "dimension.speed.sum": 2, "dimension.speed.sumsq": 4,
        "dimension.speed.h.2": 1,
    }  # fmt: skip


def test_from_feedback__stores_sentiment_and_measures_in_thousandths() -> None:
    stats = MetricStats.from_feedback({"sentiment": 0.25, "measures": {"waiting_time_seconds": 1.5}})

    assert stats.get("sentiment.sum") == 250
    assert stats.get("sentiment.sumsq") == 62_500
    assert stats.get("measure.waiting_time_seconds.sum") == 1500
    assert stats.get("measure.waiting_time_seconds.sumsq") == 2_250_000


def test_from_feedback__stores_the_respondents_mean_servqual_gap_in_sixtieths() -> None:
    stats = MetricStats.from_feedback(
        {
            "servqual": {
                "reliability": {"perception": 5, "expectation": 7},
                "empathy": {"perception": 6, "expectation": 5},
                "assurance": {"perception": 6, "expectation": 6},
            }
        }
    )

    # Mean gap (−2 + 1 + 0) / 3 = −1/3, i.e. −20/60.
    assert stats.moments("servqual.gap").total == -20
    assert stats.moments("servqual.gap").total_sq == 400
    assert stats.get("servqual.reliability.gap.sum") == -2


def test_increments__round_trip_through_a_flat_map() -> None:
    stats = stats_of({"csat": 5, "sentiment": 0.9}, {"csat": 3, "measures": {"fcr": 1}})

    assert MetricStats.from_increments(stats.to_increments()) == stats


def test_from_document__reads_the_nested_document_that_dotted_inc_keys_make() -> None:
    stats = stats_of({"csat": 5, "nps": 10}, {"servqual": {"empathy": {"perception": 3, "expectation": 6}}})

    assert MetricStats.from_document(nested(stats.to_increments())) == stats


def test_from_increments__accepts_integral_floats_from_the_store() -> None:
    assert MetricStats.from_increments({"n": 2.0, "csat.n": 2.0}) == MetricStats({"n": 2, "csat.n": 2})


@pytest.mark.parametrize(
    ("counters", "message"),
    [
        ({"csat.mean": 3}, "unknown statistics key 'csat.mean'"),
        ({"measure.a.b.n": 1}, "unknown statistics key"),
        ({"csat.h.9": 1}, "unknown statistics key"),
        ({"n": -1}, "must not be negative"),
        ({"csat.h.4": -1}, "must not be negative"),
    ],
)
def test_metric_stats__rejects_unknown_keys_and_negative_counts(counters: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricStats(counters)


def test_from_increments__rejects_fractional_values() -> None:
    with pytest.raises(ValueError, match="must be integral"):
        MetricStats.from_increments({"n": 1.5})


def test_metric_stats__allows_negative_sums_of_gaps() -> None:
    stats = MetricStats({"servqual.gap.n": 1, "servqual.gap.sum": -60, "servqual.gap.sumsq": 3600})

    assert stats.get("servqual.gap.sum") == -60


def test_metric_stats__drops_zero_counters_so_equal_sets_compare_equal() -> None:
    assert MetricStats({"n": 0, "csat.n": 0}) == MetricStats.empty()


def test_merge__adds_counters_key_wise() -> None:
    a = MetricStats({"n": 1, "csat.n": 1, "csat.sum": 4})
    b = MetricStats({"n": 2, "nps.n": 2})

    assert merge(a, b) == MetricStats({"n": 3, "csat.n": 1, "csat.sum": 4, "nps.n": 2})
    assert a + b == merge(a, b)


def test_subtract__restores_the_stats_before_a_feedback_was_added() -> None:
    before = stats_of({"csat": 5, "sentiment": 0.333}, {"nps": 0})
    erased = MetricStats.from_feedback({"csat": 2, "sentiment": 0.777, "measures": {"aht": 12.345}})

    assert (before + erased) - erased == before
    assert subtract(before + erased, before) == erased


def test_subtract__refuses_to_remove_feedback_that_is_not_there() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        MetricStats.from_feedback({"csat": 5}) - MetricStats.from_feedback({"csat": 4})


def test_measure_names__lists_the_measures_present() -> None:
    stats = stats_of({"measures": {"waiting_time_seconds": 3, "fcr": 1}})

    assert stats.measure_names() == ["fcr", "waiting_time_seconds"]


# ---------------------------------------------------------------------------
# Metrics, hand-computed


def test_csat_share__is_the_percentage_of_fours_and_fives() -> None:
    stats = stats_of(*({"csat": r} for r in (5, 4, 3, 2, 5)))

    share = csat_share(stats)

    assert share is not None
    assert share.value == pytest.approx(60.0)
    assert share.n == 5
    low, high = wilson_interval(3, 5)
    assert (share.ci_low, share.ci_high) == pytest.approx((100 * low, 100 * high))


def test_csat_mean__is_the_mean_rating() -> None:
    stats = stats_of(*({"csat": r} for r in (5, 4, 3, 2, 5)))

    mean = csat_mean(stats)

    assert mean is not None and mean.value == pytest.approx(3.8)


def test_nps__counts_passives_in_denominator_only() -> None:
    # 5 promoters, 3 passives, 2 detractors: (5 − 2) / 10 = +30.
    ratings = (9, 10, 9, 10, 9, 7, 8, 7, 6, 0)
    stats = stats_of(*({"nps": r} for r in ratings))

    score = nps(stats)

    assert score is not None
    assert score.value == pytest.approx(30.0)
    assert score.n == 10


def test_nps__ranges_from_minus_100_to_100() -> None:
    assert nps(stats_of({"nps": 0}, {"nps": 6})).value == pytest.approx(-100.0)  # type: ignore[union-attr]
    assert nps(stats_of({"nps": 9}, {"nps": 10})).value == pytest.approx(100.0)  # type: ignore[union-attr]
    assert nps(stats_of({"nps": 7}, {"nps": 8})).value == pytest.approx(0.0)  # type: ignore[union-attr]


def test_nps_interval__is_the_adjusted_wald_of_rocks_2016() -> None:
    """Rocks (2016), The American Statistician 70(4): add 3/4 promoter, 3/4 detractor, 3 to n.

    By hand for 5 promoters, 2 detractors, n = 10: n' = 13, p' = 5.75/13,
    d' = 2.75/13, NPS' = 3/13 = 0.230769, var = (8.5/13 − (3/13)²)/13 = 0.0461994,
    se = 0.214941, 1.959964 · se = 0.421275, interval [−0.190506, 0.652045].
    """
    low, high = nps_interval(5, 2, 10)

    assert low == pytest.approx(-19.0506, abs=1e-3)
    assert high == pytest.approx(65.2045, abs=1e-3)


def test_nps_interval__contains_the_observed_score_on_tiny_samples() -> None:
    low, high = nps_interval(1, 0, 1)

    assert low < 100.0
    assert high == pytest.approx(100.0)


def test_ces_mean__is_the_mean_effort() -> None:
    ces = ces_mean(stats_of({"ces": 2}, {"ces": 3}, {"ces": 4}))

    assert ces is not None and ces.value == pytest.approx(3.0)


def test_servqual_gap__is_mean_perception_minus_mean_expectation_per_dimension() -> None:
    stats = stats_of(
        {
            "servqual": {
                "reliability": {"perception": 5, "expectation": 7},
                "empathy": {"perception": 6, "expectation": 5},
            }
        },
        {"servqual": {"reliability": {"perception": 4, "expectation": 6}}},
    )

    reliability = servqual_gap(stats, "reliability")
    empathy = servqual_gap(stats, "empathy")
    perception = servqual_perception(stats, "reliability")
    expectation = servqual_expectation(stats, "reliability")

    assert reliability is not None and reliability.value == pytest.approx(-2.0)
    assert empathy is not None and empathy.value == pytest.approx(1.0)
    assert perception is not None and perception.value == pytest.approx(4.5)
    assert expectation is not None and expectation.value == pytest.approx(6.5)
    assert servqual_gap(stats, "tangibles") is None


def test_servqual_gap__overall_is_the_mean_of_each_respondents_mean_gap() -> None:
    stats = stats_of(
        {
            "servqual": {
                "reliability": {"perception": 5, "expectation": 7},
                "empathy": {"perception": 6, "expectation": 5},
            }
        },
        {"servqual": {"reliability": {"perception": 4, "expectation": 6}}},
    )

    overall = servqual_gap(stats)

    # Respondent 1: (−2 + 1) / 2 = −0.5; respondent 2: −2; mean −1.25.
    assert overall is not None
    assert overall.value == pytest.approx(-1.25)
    assert overall.n == 2


def test_servqual_gap__rejects_an_unknown_dimension() -> None:
    with pytest.raises(ValueError, match="unknown SERVQUAL dimension 'friendliness'"):
        servqual_gap(MetricStats.empty(), "friendliness")


def test_dimension_mean__is_the_mean_rating_of_that_dimension() -> None:
    stats = stats_of({"dimensions": {"speed": 2, "cost": 5}}, {"dimensions": {"speed": 4}})

    speed = dimension_mean(stats, "speed")
    cost = dimension_mean(stats, "cost")

    assert speed is not None and speed.value == pytest.approx(3.0) and speed.n == 2
    assert cost is not None and cost.value == pytest.approx(5.0) and cost.n == 1
    assert dimension_mean(stats, "innovation") is None


def test_sentiment_mean__is_exact_to_the_thousandth() -> None:
    mean = sentiment_mean(stats_of({"sentiment": 0.2}, {"sentiment": 0.5}, {"sentiment": 0.8}))

    assert mean is not None and mean.value == pytest.approx(0.5, abs=1e-12)


def test_measure_mean__of_a_zero_one_measure_is_a_rate() -> None:
    stats = stats_of(*({"measures": {"first_contact_resolution": v}} for v in (1, 1, 0, 1)))

    rate = measure_mean(stats, "first_contact_resolution")

    assert rate is not None and rate.value == pytest.approx(0.75)


def test_measure_attainment__scales_by_target_in_the_better_direction() -> None:
    assert measure_attainment(120, 90, Direction.LOWER_IS_BETTER) == pytest.approx(75.0)
    assert measure_attainment(60, 90, Direction.LOWER_IS_BETTER) == pytest.approx(100.0)
    assert measure_attainment(0, 90, Direction.LOWER_IS_BETTER) == pytest.approx(100.0)
    assert measure_attainment(0.75, 0.8, Direction.HIGHER_IS_BETTER) == pytest.approx(93.75)
    assert measure_attainment(0.9, 0.8, Direction.HIGHER_IS_BETTER) == pytest.approx(100.0)


def test_measure_attainment__rejects_a_non_positive_target() -> None:
    with pytest.raises(ValueError, match="target must be positive"):
        measure_attainment(1.0, 0.0, Direction.HIGHER_IS_BETTER)


def test_metrics__are_none_without_data() -> None:
    empty = MetricStats.empty()

    assert csat_share(empty) is None
    assert nps(empty) is None
    assert ces_mean(empty) is None
    assert servqual_gap(empty) is None
    assert sentiment_mean(empty) is None
    assert measure_mean(empty, "waiting_time_seconds") is None


# ---------------------------------------------------------------------------
# Distributions and intervals


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042), (100, 1.984), (1000, 1.962)],
)
def test_t_quantile__matches_published_table_at_0_975(df: int, expected: float) -> None:
    assert round(t_quantile(0.975, df), 3) == expected


@pytest.mark.parametrize(("df", "expected"), [(1, 63.657), (4, 4.604), (20, 2.845)])
def test_t_quantile__matches_published_table_at_0_995(df: int, expected: float) -> None:
    assert round(t_quantile(0.995, df), 3) == expected


def test_t_quantile__is_continuous_where_the_exact_series_hands_over_to_the_expansion() -> None:
    assert t_quantile(0.975, 200) - t_quantile(0.975, 201) == pytest.approx(5.9e-5, abs=1e-5)


def test_t_quantile__is_antisymmetric() -> None:
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))
    assert t_quantile(0.5, 7) == 0.0


def test_t_quantile__rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_wilson_interval__matches_newcombe_1998() -> None:
    """Newcombe (1998), Statistics in Medicine 17:857–872, Table II, method 3 (Wilson score)."""
    cases = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    for (successes, n), expected in cases.items():
        low, high = wilson_interval(successes, n)
        assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval__rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_t_interval__is_mean_plus_minus_t_times_standard_error() -> None:
    # Values 1..5: mean 3, s² = 2.5, se = √0.5 = 0.707107, t(0.975, 4) = 2.776445.
    low, high = t_interval(Moments(n=5, total=15, total_sq=55))

    assert low == pytest.approx(3 - 1.963243, abs=1e-5)
    assert high == pytest.approx(3 + 1.963243, abs=1e-5)


def test_t_interval__is_clipped_to_the_scale_and_is_the_whole_scale_for_one_value() -> None:
    assert t_interval(Moments(n=1, total=4, total_sq=16), (1.0, 5.0)) == (1.0, 5.0)
    # 4, 5, 5: mean 14/3, se = 1/3, t(0.975, 2) = 4.302653: [3.232449, 6.100884] → high clipped.
    low, high = t_interval(Moments(n=3, total=14, total_sq=66), (1.0, 5.0))
    assert high == 5.0
    assert low == pytest.approx(14 / 3 - 4.302653 / 3, abs=1e-5)


def test_moments__variance_uses_the_fixed_point_scale() -> None:
    # 0.2, 0.5, 0.8 in thousandths: variance 0.09.
    moments = Moments(n=3, total=1500, total_sq=40_000 + 250_000 + 640_000, scale=1000)

    assert moments.mean == pytest.approx(0.5)
    assert moments.variance() == pytest.approx(0.09)


# ---------------------------------------------------------------------------
# Metric keys, normalisation and evaluation


@pytest.mark.parametrize(
    "metric",
    ["csat.share", "csat.mean", "nps", "ces", "servqual.gap", "servqual.gap.empathy",
     "dimension.innovation", "sentiment", "measure.waiting_time_seconds"],
)  # fmt: skip
def test_parse_metric__knows_every_metric_form(metric: str) -> None:
    parse_metric(metric)


@pytest.mark.parametrize("metric", ["csat", "servqual.gap.friendliness", "dimension.beauty", "measure.", "measure.A"])
def test_parse_metric__rejects_unknown_keys_with_the_known_forms(metric: str) -> None:
    with pytest.raises(ValueError, match=r"unknown metric key .* known forms: csat\.share"):
        parse_metric(metric)


@pytest.mark.parametrize(
    ("metric", "value", "score"),
    [
        ("csat.share", 72.5, 72.5),
        ("csat.mean", 1.0, 0.0),
        ("csat.mean", 4.0, 75.0),
        ("dimension.speed", 5.0, 100.0),
        ("nps", -100.0, 0.0),
        ("nps", 30.0, 65.0),
        ("ces", 7.0, 0.0),
        ("ces", 3.0, 200 / 3),
        ("servqual.gap", -6.0, 0.0),
        ("servqual.gap.reliability", -1.25, 475 / 12),
        ("servqual.gap", 6.0, 100.0),
        ("sentiment", 0.42, 42.0),
    ],
)
def test_normalise__maps_each_metric_onto_0_to_100(metric: str, value: float, score: float) -> None:
    assert normalise(metric, value) == pytest.approx(score)


def test_normalise__scores_measures_against_their_target() -> None:
    assert normalise("measure.wait", 120, 90, Direction.LOWER_IS_BETTER) == pytest.approx(75.0)
    assert normalise("measure.fcr", 0.75, 0.8, Direction.HIGHER_IS_BETTER) == pytest.approx(93.75)
    with pytest.raises(ValueError, match="needs a target and a direction"):
        normalise("measure.wait", 120)


def test_estimate__dispatches_on_the_metric_key() -> None:
    stats = stats_of({"csat": 5, "dimensions": {"cost": 2}}, {"csat": 3})

    assert estimate("csat.share", stats).value == pytest.approx(50.0)  # type: ignore[union-attr]
    assert estimate("dimension.cost", stats).value == pytest.approx(2.0)  # type: ignore[union-attr]
    assert estimate("nps", stats) is None


def test_evaluate__gives_value_score_intervals_and_sample_size() -> None:
    stats = stats_of(*({"ces": r} for r in (2, 3, 4)))

    result = evaluate("ces", stats, min_samples=3)

    assert result.value == pytest.approx(3.0)
    assert result.score == pytest.approx(200 / 3)
    assert result.n == 3
    assert not result.insufficient
    # CES is better when lower, so the high end of the value is the low end of the score.
    assert result.score_ci_low == pytest.approx((7 - result.ci_high) / 6 * 100)  # type: ignore[operator]
    assert result.score_ci_high == pytest.approx((7 - result.ci_low) / 6 * 100)  # type: ignore[operator]


def test_evaluate__flags_fewer_samples_than_the_minimum() -> None:
    result = evaluate("csat.share", stats_of({"csat": 5}, {"csat": 4}), min_samples=30)

    assert result.insufficient
    assert result.score == pytest.approx(100.0)


def test_evaluate__without_data_has_no_value_and_is_insufficient() -> None:
    result = evaluate("nps", MetricStats.empty(), min_samples=1)

    assert result.value is None and result.score is None and result.n == 0
    assert result.insufficient


def test_evaluate__measure_of_one_sample_has_an_open_upper_bound() -> None:
    stats = stats_of({"measures": {"wait": 120}})

    result = evaluate("measure.wait", stats, min_samples=1, target=90, direction=Direction.LOWER_IS_BETTER)

    assert result.ci_low == 0.0 and result.ci_high is None
    assert (result.score_ci_low, result.score_ci_high) == (0.0, 100.0)
    assert result.score == pytest.approx(75.0)


# ---------------------------------------------------------------------------
# Properties

servqual_ratings = st.fixed_dictionaries({"perception": st.integers(1, 7), "expectation": st.integers(1, 7)})
feedback_strategy = st.fixed_dictionaries(
    {},
    optional={
        "csat": st.integers(1, 5),
        "nps": st.integers(0, 10),
        "ces": st.integers(1, 7),
        "servqual": st.dictionaries(st.sampled_from(SERVQUAL_DIMENSIONS), servqual_ratings),
        "dimensions": st.dictionaries(st.sampled_from(QUALITY_DIMENSIONS), st.integers(1, 5)),
        "sentiment": st.floats(0.0, 1.0),
        "measures": st.dictionaries(
            st.sampled_from(["waiting_time_seconds", "handling_time_seconds", "first_contact_resolution"]),
            st.floats(0.0, 100_000.0),
        ),
    },
)
feedback_lists = st.lists(feedback_strategy, max_size=25)


@given(feedback_lists, st.data())
def test_merge__of_any_split_equals_the_stats_of_the_whole(feedback: list[dict[str, Any]], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(feedback)))

    whole = stats_of(*feedback)

    assert merge(stats_of(*feedback[:cut]), stats_of(*feedback[cut:])) == whole
    assert whole.n == len(feedback)


@given(feedback_lists, feedback_lists)
def test_subtract__of_a_merged_part_restores_the_other_exactly(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> None:
    stats_a, stats_b = stats_of(*a), stats_of(*b)

    assert subtract(merge(stats_a, stats_b), stats_b) == stats_a


@given(
    st.lists(
        st.tuples(st.sampled_from(["north/a/b1", "north/a/b2", "north/c/b3", "south/d/b4"]), feedback_strategy),
        max_size=25,
    )
)
def test_roll_up__parent_stats_equal_the_sum_of_its_childrens(
    located: list[tuple[str, dict[str, Any]]],
) -> None:
    def roll_up(prefix: str) -> MetricStats:
        return stats_of(*(f for path, f in located if path == prefix or path.startswith(prefix + "/")))

    assert roll_up("north") == roll_up("north/a") + roll_up("north/c")
    assert roll_up("north/a") == roll_up("north/a/b1") + roll_up("north/a/b2")
    assert stats_of(*(f for _, f in located)) == roll_up("north") + roll_up("south")


@given(feedback_lists)
def test_from_document__round_trips_any_stats(feedback: list[dict[str, Any]]) -> None:
    stats = stats_of(*feedback)

    assert MetricStats.from_document(nested(stats.to_increments())) == stats


@settings(max_examples=50)
@given(feedback_lists)
def test_evaluate__score_lies_in_its_interval_and_in_0_to_100(feedback: list[dict[str, Any]]) -> None:
    stats = stats_of(*feedback)
    metrics = ["csat.share", "csat.mean", "nps", "ces", "servqual.gap", "sentiment",
               *(f"dimension.{d}" for d in QUALITY_DIMENSIONS)]  # fmt: skip

    for metric in metrics:
        result = evaluate(metric, stats, min_samples=5)
        if result.score is None:
            continue
        assert result.score_ci_low is not None and result.score_ci_high is not None
        assert 0.0 <= result.score_ci_low <= result.score + 1e-9
        assert result.score - 1e-9 <= result.score_ci_high <= 100.0


@given(st.integers(1, 500), st.data())
def test_wilson_interval__contains_the_observed_proportion(n: int, data: st.DataObject) -> None:
    successes = data.draw(st.integers(0, n))

    low, high = wilson_interval(successes, n)

    assert 0.0 <= low <= successes / n + 1e-12
    assert successes / n - 1e-12 <= high <= 1.0


@given(st.integers(1, 400), st.floats(0.51, 0.999))
def test_t_quantile__is_positive_above_the_median_and_shrinks_as_df_grows(df: int, p: float) -> None:
    t = t_quantile(p, df)

    assert t > 0
    assert math.isfinite(t)
    assert t_quantile(p, df + 1) <= t + 1e-9
