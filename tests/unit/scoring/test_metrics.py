"""Behaviour of the metric registry and of the metrics it added: complaint rate, audit score, comment polarity."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scoring.aggregation import event_stats, feedback_stats
from services.scoring.index_system import IndexSystem, LeafIndicator, composite
from services.scoring.metrics import FAMILIES, METRIC_KEY_FORMS, is_counter_key, parse_metric
from services.scoring.metrics.audit import audit_item_key
from services.scoring.statistics import (
    Direction,
    FeedbackRatings,
    MetricStats,
    audit_score,
    complaint_rate,
    estimate,
    evaluate,
    merge_all,
    normalise,
    polarity_share,
    subtract,
    t_quantile,
    wilson_interval,
)
from shared.events import Audit, AuditItem, Complaint, FeedbackErased, FeedbackReceived, Ratings


def stats_of(*feedback: Mapping[str, Any]) -> MetricStats:
    return merge_all(MetricStats.from_feedback(f) for f in feedback)


def complaint(severity: str) -> dict[str, Any]:
    return {"complaint": {"category": "queue", "severity": severity}}


def audit(*items: tuple[str, float, float]) -> dict[str, Any]:
    checklist = [{"item": item, "score": score, "max_score": top} for item, score, top in items]
    return {"audit": {"visit_date": "2026-11-05", "checklist": checklist}}


# ---------------------------------------------------------------------------
# The registry


def test_registry__every_family_has_its_own_counter_prefix() -> None:
    prefixes = [family.prefix for family in FAMILIES]

    assert len(set(prefixes)) == len(prefixes)


@pytest.mark.parametrize(
    "metric",
    ["complaint.rate", "complaint.rate.critical", "audit.score", "audit.item.greeting",
     "polarity.positive", "polarity.neutral", "polarity.negative"],
)  # fmt: skip
def test_parse_metric__knows_the_new_metric_forms(metric: str) -> None:
    assert parse_metric(metric).metric == metric


@pytest.mark.parametrize("metric", ["complaint", "complaint.rate.severe", "audit", "audit.item.Greeting", "polarity"])
def test_parse_metric__rejects_malformed_new_keys(metric: str) -> None:
    with pytest.raises(ValueError, match="unknown metric key"):
        parse_metric(metric)


def test_metric_key_forms__list_every_family_once_with_csat_first() -> None:
    assert METRIC_KEY_FORMS[:2] == ("csat.share", "csat.mean")
    assert {"complaint.rate", "audit.score", "polarity.<negative|neutral|positive>"} <= set(METRIC_KEY_FORMS)


def test_counter_keys__of_other_families_are_refused() -> None:
    assert is_counter_key("complaint.severity.minor")
    assert not is_counter_key("complaint.severity.annoying")
    assert not is_counter_key("polarity.mixed")
    assert not is_counter_key("audit.item.Greeting.n")
    with pytest.raises(ValueError, match=r"unknown statistics key 'polarity\.h\.1'"):
        MetricStats({"polarity.h.1": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {"complaint": {"category": "queue", "severity": "annoying"}},
        {"audit": {"visit_date": "2026-11-05", "checklist": []}},
        {"polarity": "mixed"},
    ],
)
def test_feedback_ratings__reject_complaints_audits_and_polarities_off_the_contract(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeedbackRatings.model_validate(bad)


# ---------------------------------------------------------------------------
# Complaint rate


def test_complaint_rate__is_complaints_per_100_feedback_of_any_kind() -> None:
    stats = stats_of(complaint("minor"), complaint("critical"), {"csat": 4}, {}, {"nps": 9})

    overall = complaint_rate(stats)
    critical = complaint_rate(stats, "critical")
    serious = complaint_rate(stats, "serious")

    assert overall is not None and overall.value == 40.0 and overall.n == 5
    assert critical is not None and critical.value == 20.0
    assert serious is not None and serious.value == 0.0
    assert stats.get("complaint.severity.minor") == 1


def test_complaint_rate__interval_is_newcombes_wilson_interval() -> None:
    """Newcombe (1998), Table II, method 3: 15 of 148 → 0.0624 to 0.1605."""
    stats = stats_of(*([complaint("moderate")] * 15), *([{}] * 133))

    rate = estimate("complaint.rate.moderate", stats)

    assert rate is not None
    assert rate.value == 100 * 15 / 148
    assert (round(rate.ci_low, 2), round(rate.ci_high, 2)) == (6.24, 16.05)


def test_complaint_rate__scores_100_without_complaints_and_less_with_more() -> None:
    assert normalise("complaint.rate", 0.0) == 100.0
    assert normalise("complaint.rate.serious", 12.5) == 87.5
    assert normalise("complaint.rate", 100.0) == 0.0


def test_complaint_rate__is_none_without_feedback_and_refuses_an_unknown_severity() -> None:
    assert complaint_rate(MetricStats.empty()) is None
    with pytest.raises(ValueError, match="unknown complaint severity 'annoying'"):
        complaint_rate(MetricStats.empty(), "annoying")


# ---------------------------------------------------------------------------
# Audit score


def test_audit_score__overall_is_each_visits_total_over_its_maximum() -> None:
    # Visit 1: (8 + 1) / (10 + 2) = 75 %; visit 2: (10 + 2) / (10 + 2) = 100 %.
    stats = stats_of(
        audit(("Greeting within 30 s", 8, 10), ("Uniform", 1, 2)),
        audit(("Greeting within 30 s", 10, 10), ("Uniform", 2, 2)),
    )

    overall = audit_score(stats)
    greeting = estimate("audit.item.greeting_within_30_s", stats)
    uniform = estimate("audit.item.uniform", stats)

    assert overall is not None and overall.value == 87.5 and overall.n == 2
    assert greeting is not None and greeting.value == 90.0
    assert uniform is not None and uniform.value == 75.0


def test_audit_score__interval_is_the_t_interval_clipped_at_100() -> None:
    # 80, 90, 100 %: mean 90, s = 10, se = 10/√3, t(0.975, 2) = 4.302653.
    stats = stats_of(*(audit(("Visit", score, 100)) for score in (80, 90, 100)))

    result = evaluate("audit.score", stats, min_samples=3)

    half = t_quantile(0.975, 2) * 10 / 3**0.5
    assert result.value == 90.0 and result.score == 90.0
    assert result.ci_low == pytest.approx(90 - half, abs=1e-9)
    assert result.ci_high == 100.0
    assert round(half, 4) == 24.8414


def test_audit_score__items_with_the_same_key_in_one_visit_count_as_two_ratings_of_one_item() -> None:
    stats = stats_of(audit(("Greeting!", 1, 2), ("greeting", 2, 2)))

    greeting = audit_score(stats, "greeting")

    assert greeting is not None and greeting.n == 2 and greeting.value == 75.0


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ("Greeting within 30 s", "greeting_within_30_s"),
        ("  Clean floor / tidy shelves!  ", "clean_floor_tidy_shelves"),
        ("x" * 80, "x" * 64),
    ],
)
def test_audit_item_key__is_the_lower_cased_words_joined_by_underscores(item: str, key: str) -> None:
    assert audit_item_key(item) == key


def test_audit_item_key__of_a_name_without_latin_letters_is_a_stable_hash() -> None:
    key = audit_item_key("迎宾问候")

    assert key.startswith("item_") and len(key) == 17
    assert key == audit_item_key("迎宾问候") != audit_item_key("着装规范")
    assert audit_item_key("1st impression").startswith("item_")
    assert parse_metric(f"audit.item.{key}").name == key


# ---------------------------------------------------------------------------
# Comment polarity


def test_polarity_share__is_the_share_of_classified_comments() -> None:
    stats = stats_of(
        {"polarity": "positive"}, {"polarity": "positive"}, {"polarity": "negative"}, {"polarity": "neutral"}, {}
    )

    positive = polarity_share(stats, "positive")
    negative = estimate("polarity.negative", stats)

    assert positive is not None and positive.value == 50.0 and positive.n == 4
    low, high = wilson_interval(2, 4)
    assert (positive.ci_low, positive.ci_high) == (100 * low, 100 * high)
    assert negative is not None and negative.value == 25.0
    assert polarity_share(stats_of({}), "positive") is None


def test_polarity__positive_scores_its_share_negative_the_rest_and_neutral_as_told() -> None:
    assert normalise("polarity.positive", 70.0) == 70.0
    assert normalise("polarity.negative", 20.0) == 80.0
    assert normalise("polarity.neutral", 30.0, direction=Direction.LOWER_IS_BETTER) == 70.0
    with pytest.raises(ValueError, match="needs a direction"):
        normalise("polarity.neutral", 30.0)


def test_leaf_indicator__neutral_polarity_needs_a_direction_and_no_target() -> None:
    LeafIndicator(id="n", name="n", weight=1, metric="polarity.neutral", direction=Direction.LOWER_IS_BETTER)
    with pytest.raises(ValidationError, match="needs a direction"):
        LeafIndicator(id="n", name="n", weight=1, metric="polarity.neutral")
    with pytest.raises(ValidationError, match="takes no target or direction"):
        LeafIndicator(id="p", name="p", weight=1, metric="polarity.positive", direction=Direction.HIGHER_IS_BETTER)


# ---------------------------------------------------------------------------
# In the index system, from events, and erased


def test_composite__weighs_the_new_metrics_like_any_other() -> None:
    system = IndexSystem(
        name="complaints and audits",
        version=1,
        indicators=[
            LeafIndicator(id="complaints", name="c", weight=0.5, metric="complaint.rate"),
            LeafIndicator(id="audit", name="a", weight=0.25, metric="audit.score"),
            LeafIndicator(id="positive", name="p", weight=0.25, metric="polarity.positive"),
        ],
    )
    stats = stats_of(
        {**complaint("minor"), "polarity": "negative"},
        {**audit(("Visit", 9, 10)), "polarity": "positive"},
        {"csat": 5},
        {"csat": 4},
    )

    result = composite(system, stats, min_samples=1)

    # Complaints 25 per 100 → 75; audit 90; positive comments 50 %.
    assert result.score == pytest.approx(0.5 * 75 + 0.25 * 90 + 0.25 * 50)


def test_event_stats__counts_complaint_audit_and_polarity_and_falls_back_to_a_given_polarity() -> None:
    visit = Audit(visit_date=date(2026, 11, 5), checklist=[AuditItem(item="Uniform", score=1, max_score=2)])
    grievance = Complaint(category="queue", severity="serious")
    common = {
        "org": "o",
        "unit_id": "b1",
        "unit_path": "n/b1",
        "feedback_id": "f1",
        "occurred_at": "2026-11-05T10:00:00Z",
    }
    received = FeedbackReceived(
        **common, channel="web", received_at="2026-11-05T10:00:01Z", kind="complaint",
        ratings=Ratings(csat=2), complaint=grievance, audit=visit, sentiment=0.1, polarity="negative",
    )  # fmt: skip
    erased = FeedbackErased(
        **common, kind="complaint", ratings=Ratings(csat=2), complaint=grievance, audit=visit, sentiment=0.1
    )

    counted = event_stats(received)

    assert counted == feedback_stats(Ratings(csat=2), 0.1, polarity="negative", complaint=grievance, audit=visit)
    assert counted.get("complaint.severity.serious") == 1 and counted.get("polarity.negative") == 1
    assert counted.get("audit.item.uniform.sum") == 50_000
    assert event_stats(erased, polarity="negative") == counted
    assert event_stats(erased).get("polarity.n") == 0


# ---------------------------------------------------------------------------
# Properties

new_facts = st.fixed_dictionaries(
    {},
    optional={
        "csat": st.integers(1, 5),
        "sentiment": st.floats(0.0, 1.0),
        "polarity": st.sampled_from(["negative", "neutral", "positive"]),
        "complaint": st.fixed_dictionaries(
            {"category": st.just("queue"), "severity": st.sampled_from(["minor", "moderate", "serious", "critical"])}
        ),
        "audit": st.fixed_dictionaries(
            {
                "visit_date": st.just("2026-11-05"),
                "checklist": st.lists(
                    st.fixed_dictionaries(
                        {
                            "item": st.sampled_from(["Greeting", "Uniform", "迎宾问候", "Greeting!"]),
                            "score": st.floats(0.0, 10.0),
                            "max_score": st.floats(10.0, 20.0),
                        }
                    ),
                    min_size=1,
                    max_size=4,
                ),
            }
        ),
    },
)


@given(st.lists(new_facts, max_size=20), st.lists(new_facts, max_size=20))
def test_subtract__takes_complaints_audits_and_polarities_back_out_exactly(
    kept: list[dict[str, Any]], erased: list[dict[str, Any]]
) -> None:
    stats_kept, stats_erased = stats_of(*kept), stats_of(*erased)

    assert subtract(stats_kept + stats_erased, stats_erased) == stats_kept


@given(new_facts)
def test_registry__every_counter_a_family_writes_passes_the_key_check(feedback: dict[str, Any]) -> None:
    stats = MetricStats.from_feedback(feedback)

    assert MetricStats(stats.to_increments()) == stats
    assert all(is_counter_key(key) for key in stats.counters)


def test_event_stats__of_a_feedback_counted_before_the_new_families_leaves_them_out() -> None:
    grievance = Complaint(category="queue", severity="minor")

    before = feedback_stats(Ratings(csat=3), 0.5, polarity="neutral", complaint=grievance, version=1)

    assert before == feedback_stats(Ratings(csat=3), 0.5)
    assert feedback_stats(Ratings(csat=3), 0.5, polarity="neutral", complaint=grievance).get("complaint.n") == 1
