"""Threshold rules: breach once, clear with hysteresis, never on too few samples."""

from __future__ import annotations

import pytest

from services.alerts.domain import ThresholdRule, Transition, evaluate, fingerprint

RULE = ThresholdRule(
    id="r1",
    org="acme",
    indicator="csat",
    comparison="below",
    threshold=60,
    min_samples=5,
    scope="north",
    period="all",
    level="orange",
    clear_margin=5,
)


def _evaluate(value, *, n=10, firing=False, insufficient=False, rule=RULE):
    return evaluate(rule, value=value, sample_size=n, insufficient=insufficient, firing=firing)


def test_evaluate__breaches_below_the_threshold_when_not_firing():
    assert _evaluate(59.9) is Transition.BREACH


def test_evaluate__does_not_breach_again_while_firing():
    assert _evaluate(10, firing=True) is Transition.NONE


@pytest.mark.parametrize("value", [60, 64.9])
def test_evaluate__keeps_firing_inside_the_clearing_margin(value):
    assert _evaluate(value, firing=True) is Transition.NONE


def test_evaluate__clears_beyond_the_margin():
    assert _evaluate(65, firing=True) is Transition.CLEAR


@pytest.mark.parametrize(("n", "insufficient"), [(4, False), (10, True)])
def test_evaluate__says_nothing_on_too_few_samples(n, insufficient):
    assert _evaluate(0, n=n, insufficient=insufficient) is Transition.NONE
    assert _evaluate(100, n=n, insufficient=insufficient, firing=True) is Transition.NONE


def test_evaluate__above_rules_mirror_below_rules():
    above = ThresholdRule(**{**RULE.__dict__, "comparison": "above", "threshold": 300, "clear_margin": 30})
    assert _evaluate(301, rule=above) is Transition.BREACH
    assert _evaluate(280, rule=above, firing=True) is Transition.NONE
    assert _evaluate(270, rule=above, firing=True) is Transition.CLEAR


def test_applies_to__its_scope_subtree_and_period_only():
    assert RULE.applies_to("north", "all")
    assert RULE.applies_to("north/b-1", "all")
    assert not RULE.applies_to("northeast/b-1", "all")
    assert not RULE.applies_to("north/b-1", "day")


def test_fingerprint__one_per_rule_and_unit():
    assert fingerprint("r1", "north/b-1") == fingerprint("r1", "north/b-1")
    assert fingerprint("r1", "north/b-1") != fingerprint("r1", "north/b-2")
    assert fingerprint("r1", "north/b-1") != fingerprint("r2", "north/b-1")
