"""Behaviour of the evaluation index system: validation, AHP weights and the composite score."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scoring.index_system import (
    AhpInconsistentError,
    IndexSystem,
    IndexSystemDraft,
    LeafIndicator,
    ahp_weights,
    build_index_system,
    composite,
    default_index_system,
    with_ahp_weights,
)
from services.scoring.statistics import QUALITY_DIMENSIONS, MetricStats, merge_all

# Saaty (1990), "How to make a decision: the analytic hierarchy process",
# European Journal of Operational Research 48, 9–26: criteria for buying a house
# (size, transportation, neighbourhood, age, yard, modern facilities, condition,
# financing).
SAATY_HOUSE: list[list[float]] = [
    [1, 5, 3, 7, 6, 6, 1 / 3, 1 / 4],
    [1 / 5, 1, 1 / 3, 5, 3, 3, 1 / 5, 1 / 7],
    [1 / 3, 3, 1, 6, 3, 4, 6, 1 / 5],
    [1 / 7, 1 / 5, 1 / 6, 1, 1 / 3, 1 / 4, 1 / 7, 1 / 8],
    [1 / 6, 1 / 3, 1 / 3, 3, 1, 1 / 2, 1 / 5, 1 / 6],
    [1 / 6, 1 / 3, 1 / 4, 4, 2, 1, 1 / 5, 1 / 6],
    [3, 5, 1 / 6, 7, 5, 5, 1, 1 / 2],
    [4, 7, 5, 8, 6, 6, 2, 1],
]

# Wikipedia, "Analytic hierarchy process – leader example": criteria experience,
# education, charisma, age.
LEADER_CRITERIA: list[list[float]] = [
    [1, 4, 3, 7],
    [1 / 4, 1, 1 / 3, 3],
    [1 / 3, 3, 1, 5],
    [1 / 7, 1 / 3, 1 / 5, 1],
]


def stats_of(*feedback: Mapping[str, Any]) -> MetricStats:
    return merge_all(MetricStats.from_feedback(f) for f in feedback)


def leaf(id_: str, weight: float, metric: str = "csat.share", **extra: Any) -> dict[str, Any]:
    return {"kind": "metric", "id": id_, "name": id_, "weight": weight, "metric": metric, **extra}


def group(id_: str, weight: float, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "group", "id": id_, "name": id_, "weight": weight, "children": children}


def system(*indicators: dict[str, Any]) -> IndexSystem:
    return IndexSystem.model_validate({"name": "test", "version": 1, "indicators": list(indicators)})


# ---------------------------------------------------------------------------
# Index system validation


def test_default_index_system__is_valid_and_weights_sum_to_one() -> None:
    default = default_index_system()

    assert math.fsum(i.weight for i in default.indicators) == pytest.approx(1.0)
    assert {leaf.metric for leaf in default.leaves()} >= {
        "csat.share",
        "nps",
        "ces",
        "sentiment",
        "servqual.gap",
    }
    assert {f"dimension.{d}" for d in QUALITY_DIMENSIONS} <= {leaf.metric for leaf in default.leaves()}


def test_index_system__round_trips_through_a_plain_document() -> None:
    default = default_index_system()

    assert IndexSystem.model_validate(default.model_dump(mode="json")) == default


def test_index_system__rejects_sibling_weights_not_summing_to_one_naming_the_group() -> None:
    with pytest.raises(ValidationError, match=r"indicator 'quality': weights of a, b sum to 0.9, expected 1"):
        system(group("quality", 1.0, [leaf("a", 0.5), leaf("b", 0.4, "nps")]))


def test_index_system__rejects_top_level_weights_not_summing_to_one() -> None:
    with pytest.raises(ValidationError, match=r"top level: weights of a, b sum to 1\.1"):
        system(leaf("a", 0.6), leaf("b", 0.5, "nps"))


def test_index_system__accepts_weights_within_the_tolerance() -> None:
    system(leaf("a", 1 / 3), leaf("b", 1 / 3, "nps"), leaf("c", 0.3333334, "ces"))


def test_index_system__rejects_duplicate_ids_anywhere_in_the_tree() -> None:
    with pytest.raises(ValidationError, match="indicator 'a': id is used more than once"):
        system(leaf("a", 0.5), group("g", 0.5, [leaf("a", 1.0, "nps")]))


def test_index_system__rejects_an_unknown_metric_naming_the_indicator() -> None:
    with pytest.raises(ValidationError, match="indicator 'mood': unknown metric key 'happiness'"):
        system(leaf("mood", 1.0, "happiness"))


def test_index_system__requires_a_target_and_direction_for_measures() -> None:
    with pytest.raises(ValidationError, match=r"indicator 'wait': metric 'measure\.wait' needs a target"):
        system(leaf("wait", 1.0, "measure.wait"))


def test_index_system__rejects_a_non_positive_target() -> None:
    with pytest.raises(ValidationError, match="indicator 'wait': target must be a positive number"):
        system(leaf("wait", 1.0, "measure.wait", target=0, direction="lower_is_better"))


def test_index_system__rejects_a_target_on_a_rating_metric() -> None:
    with pytest.raises(ValidationError, match=r"indicator 'csat': metric 'csat\.share' takes no target"):
        system(leaf("csat", 1.0, target=80))


def test_index_system__rejects_an_empty_group() -> None:
    with pytest.raises(ValidationError, match="indicator 'g': needs at least one indicator"):
        system(group("g", 1.0, []))


@pytest.mark.parametrize("bad_id", ["", "Upper", "1st", "with space"])
def test_index_system__rejects_malformed_ids(bad_id: str) -> None:
    with pytest.raises(ValidationError):
        system(leaf(bad_id, 1.0))


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5])
def test_index_system__rejects_weights_outside_zero_to_one(weight: float) -> None:
    with pytest.raises(ValidationError):
        LeafIndicator(id="a", name="a", weight=weight, metric="nps")


# ---------------------------------------------------------------------------
# AHP


def test_ahp_weights__reproduce_saatys_house_example_and_reject_its_cr_of_0_169() -> None:
    """Saaty (1990), EJOR 48:9–26, Table 2: weights .173 .054 .188 .018 .031 .036 .167 .333,
    λmax = 9.669, C.I. = 0.238, C.R. = 0.169 (RI 1.41 for n = 8)."""
    with pytest.raises(AhpInconsistentError, match=r"consistency ratio 0\.169 must be below 0\.1"):
        ahp_weights(SAATY_HOUSE)

    result = ahp_weights(SAATY_HOUSE, max_consistency_ratio=0.2)

    assert [round(w, 3) for w in result.weights] == [0.173, 0.054, 0.188, 0.018, 0.031, 0.036, 0.167, 0.333]
    assert round(result.lambda_max, 3) == 9.669
    assert round(result.consistency_index, 3) == 0.238
    assert round(result.consistency_ratio, 3) == 0.169


def test_ahp_weights__reproduce_the_leader_example_criteria() -> None:
    """Wikipedia, "Analytic hierarchy process – leader example": experience .547,
    education .127, charisma .270, age .056. By hand from the eigenvector:
    λmax = 4.1184, CI = (4.1184 − 4)/3 = 0.0395, CR = 0.0395/0.90 = 0.0439."""
    result = ahp_weights(LEADER_CRITERIA)

    assert result.weights == pytest.approx([0.547, 0.127, 0.270, 0.056], abs=1e-3)
    assert result.lambda_max == pytest.approx(4.1184, abs=1e-4)
    assert result.consistency_index == pytest.approx(0.0395, abs=1e-4)
    assert result.consistency_ratio == pytest.approx(0.0439, abs=1e-4)


def test_ahp_weights__of_a_consistent_matrix_are_exact_with_zero_cr() -> None:
    result = ahp_weights([[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]])

    assert result.weights == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert result.lambda_max == pytest.approx(3.0)
    assert result.consistency_ratio == pytest.approx(0.0, abs=1e-9)


def test_ahp_weights__of_one_or_two_criteria_are_always_consistent() -> None:
    assert ahp_weights([[1]]).weights == [1.0]
    two = ahp_weights([[1, 3], [1 / 3, 1]])
    assert two.weights == pytest.approx([0.75, 0.25])
    assert two.consistency_ratio == 0.0


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([], "must have 1 to 15 rows"),
        ([[1, 2], [0.5]], "must be square: row 1 has 1 entries, expected 2"),
        ([[1, -2], [-0.5, 1]], r"entry \[0\]\[1\] must be a positive number"),
        ([[1, 0], [0, 1]], "must be a positive number"),
        ([[1, 2], [2, 1]], r"not reciprocal: \[1\]\[0\] = 2"),
        ([[2, 1], [1, 1]], r"diagonal \[0\]\[0\] must be 1"),
    ],
)
def test_ahp_weights__rejects_malformed_matrices(matrix: list[list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ahp_weights(matrix)


def test_with_ahp_weights__weights_siblings_and_makes_a_valid_system() -> None:
    criteria = [
        LeafIndicator(id=i, name=i, weight=0.25, metric=m)
        for i, m in (("exp", "csat.share"), ("edu", "nps"), ("cha", "ces"), ("age", "sentiment"))
    ]

    weighted = with_ahp_weights(criteria, LEADER_CRITERIA)
    made = IndexSystem(name="ahp", version=2, indicators=weighted)

    assert [i.weight for i in made.indicators] == pytest.approx([0.5476, 0.1266, 0.2699, 0.0559], abs=1e-4)


def test_with_ahp_weights__rejects_a_matrix_of_another_size() -> None:
    with pytest.raises(ValueError, match="3 rows for 2 indicators"):
        with_ahp_weights(
            [
                LeafIndicator(id="a", name="a", weight=0.5, metric="nps"),
                LeafIndicator(id="b", name="b", weight=0.5, metric="ces"),
            ],
            [[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]],
        )


# ---------------------------------------------------------------------------
# Composite

HAND_FEEDBACK: list[dict[str, Any]] = [
    {"csat": 5, "nps": 10, "ces": 2, "sentiment": 0.8, "dimensions": dict.fromkeys(QUALITY_DIMENSIONS, 4)},
    {"csat": 4, "nps": 9, "ces": 3, "sentiment": 0.6},
    {"csat": 3, "nps": 7},
    {"csat": 2, "nps": 3},
]


def test_composite__weights_indicator_scores_and_renormalises_over_missing_ones() -> None:
    # CSAT share 50 → 50; NPS (2 − 1)/4 = 25 → 62.5; CES 2.5 → 75; dimensions all 4 → 75;
    # sentiment 0.7 → 70; no SERVQUAL, so the other weights (0.9) are renormalised:
    # (0.3·50 + 0.2·62.5 + 0.1·75 + 0.2·75 + 0.1·70) / 0.9 = 57 / 0.9.
    result = composite(default_index_system(), stats_of(*HAND_FEEDBACK), min_samples=4)

    assert result.score == pytest.approx(57 / 0.9)
    assert result.coverage == pytest.approx(0.9)
    assert result.n == 4
    assert not result.insufficient
    by_id = {r.id: r for r in result.indicators}
    assert by_id["servqual"].score is None and by_id["servqual"].effective_weight == 0.0
    assert by_id["csat"].effective_weight == pytest.approx(0.3 / 0.9)
    assert by_id["dimensions"].score == pytest.approx(75.0)
    assert by_id["dimensions"].n == 1 and by_id["dimensions"].insufficient


def test_composite__is_insufficient_below_the_minimum_sample() -> None:
    result = composite(default_index_system(), stats_of(*HAND_FEEDBACK), min_samples=5)

    assert result.insufficient
    assert result.score == pytest.approx(57 / 0.9)


def test_composite__renormalises_inside_groups_too() -> None:
    stats = stats_of({"dimensions": {"speed": 5, "cost": 3}})

    result = composite(default_index_system(), stats, min_samples=1)

    dimensions = next(r for r in result.indicators if r.id == "dimensions")
    assert dimensions.score == pytest.approx(75.0)  # (100 + 50) / 2
    assert dimensions.coverage == pytest.approx(2 / 6)
    assert [c.effective_weight for c in dimensions.children if c.score is not None] == pytest.approx([0.5, 0.5])
    assert result.score == pytest.approx(75.0)
    assert result.coverage == pytest.approx(0.2 * 2 / 6)


def test_composite__without_any_data_has_no_score_and_is_insufficient() -> None:
    result = composite(default_index_system(), MetricStats.empty(), min_samples=1)

    assert result.score is None and result.ci_low is None and result.ci_high is None
    assert result.insufficient
    assert result.coverage == 0.0


def test_composite__scores_operational_measures_against_targets() -> None:
    ops = system(
        leaf("csat", 0.5),
        group(
            "operations",
            0.5,
            [
                leaf("wait", 0.5, "measure.waiting_time_seconds", target=90, direction="lower_is_better"),
                leaf("fcr", 0.5, "measure.first_contact_resolution", target=0.8, direction="higher_is_better"),
            ],
        ),
    )
    stats = stats_of(
        {"csat": 5, "measures": {"waiting_time_seconds": 60, "first_contact_resolution": 1}},
        {"csat": 4, "measures": {"waiting_time_seconds": 180, "first_contact_resolution": 1}},
        {"csat": 4, "measures": {"first_contact_resolution": 0}},
        {"csat": 2, "measures": {"first_contact_resolution": 1}},
    )

    result = composite(ops, stats, min_samples=2)

    # Waiting 120 s against 90 → 75; FCR 0.75 against 0.8 → 93.75; CSAT 3/4 → 75.
    operations = result.indicators[1]
    assert [c.score for c in operations.children] == pytest.approx([75.0, 93.75])
    assert operations.score == pytest.approx(84.375)
    assert result.score == pytest.approx(0.5 * 75 + 0.5 * 84.375)


def test_composite__reports_the_index_system_it_used() -> None:
    result = composite(default_index_system(), stats_of({"csat": 5}), min_samples=1)

    assert (result.system_name, result.system_version) == ("Default service quality index", 1)


feedback_strategy = st.fixed_dictionaries(
    {},
    optional={
        "csat": st.integers(1, 5),
        "nps": st.integers(0, 10),
        "ces": st.integers(1, 7),
        "servqual": st.dictionaries(
            st.sampled_from(["tangibles", "reliability", "responsiveness", "assurance", "empathy"]),
            st.fixed_dictionaries({"perception": st.integers(1, 7), "expectation": st.integers(1, 7)}),
        ),
        "dimensions": st.dictionaries(st.sampled_from(QUALITY_DIMENSIONS), st.integers(1, 5)),
        "sentiment": st.floats(0.0, 1.0),
    },
)


@settings(max_examples=50)
@given(st.lists(feedback_strategy, max_size=20))
def test_composite__lies_within_its_interval_and_0_to_100(feedback: list[dict[str, Any]]) -> None:
    result = composite(default_index_system(), stats_of(*feedback), min_samples=3)

    if result.score is None:
        assert result.coverage == 0.0
        return
    assert result.ci_low is not None and result.ci_high is not None
    assert 0.0 <= result.ci_low <= result.score + 1e-9
    assert result.score - 1e-9 <= result.ci_high <= 100.0
    used = [r for r in result.indicators if r.score is not None]
    assert math.fsum(r.effective_weight for r in used) == pytest.approx(1.0)


def _draft(**changes: Any) -> IndexSystemDraft:
    body: dict[str, Any] = {
        "name": "Drafted",
        "indicators": [
            {"id": "csat", "name": "CSAT", "metric": "csat.share"},
            {
                "id": "dims",
                "name": "Dimensions",
                "kind": "group",
                "children": [
                    {"id": "speed", "name": "Speed", "metric": "dimension.speed", "weight": 0.4},
                    {"id": "attitude", "name": "Attitude", "metric": "dimension.attitude", "weight": 0.6},
                ],
            },
        ],
        "ahp": [[1, 3], [1 / 3, 1]],
    }
    return IndexSystemDraft.model_validate({**body, **changes})


def test_build_index_system__derives_ahp_weights_and_reports_consistency():
    system, [consistency] = build_index_system(_draft(), version=4)

    assert system.version == 4
    assert [i.weight for i in system.indicators] == pytest.approx([0.75, 0.25])
    assert [i.weight for i in system.indicators[1].children] == [0.4, 0.6]  # type: ignore[union-attr]
    assert consistency.group == "top"
    assert consistency.consistency_ratio == pytest.approx(0.0)


def test_build_index_system__names_the_group_whose_ahp_is_inconsistent():
    children = [{"id": i, "name": i, "metric": f"dimension.{i}"} for i in ("speed", "attitude", "cost")]
    inconsistent = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]
    group: dict[str, Any] = {
        "id": "dims",
        "name": "Dimensions",
        "kind": "group",
        "children": children,
        "ahp": inconsistent,
    }
    draft = _draft(indicators=[{"id": "csat", "name": "CSAT", "metric": "csat.share"}, group])

    with pytest.raises(AhpInconsistentError, match=r"indicator 'dims': .*consistency ratio"):
        build_index_system(draft, version=2)


def test_build_index_system__needs_a_weight_or_a_matrix():
    with pytest.raises(ValueError, match="indicator 'csat': needs a weight"):
        build_index_system(_draft(ahp=None), version=2)
