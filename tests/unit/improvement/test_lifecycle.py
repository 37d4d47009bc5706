"""The action state machine: every allowed and every refused transition, and who may make each."""

from __future__ import annotations

import itertools

import pytest

from services.improvement.domain.lifecycle import (
    STATES,
    TRANSITIONS,
    Actor,
    TransitionRefused,
    allowed,
    transition,
)

EVERYONE: frozenset[Actor] = frozenset({"responsible", "accountable", "unit_manager", "quality_manager", "system"})
ALLOWED = {
    ("open", "in_progress"),
    ("open", "cancelled"),
    ("in_progress", "done"),
    ("in_progress", "cancelled"),
    ("done", "verified"),
    ("done", "reopened"),
    ("reopened", "in_progress"),
    ("reopened", "cancelled"),
}


def test_the_transitions_are_exactly_the_documented_ones():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_transition__allowed_for_someone(current, target):
    result = transition(current, target, EVERYONE, watched=False, reason="because")
    assert (result.previous, result.state) == (current, target)


@pytest.mark.parametrize(
    ("current", "target"), [pair for pair in itertools.product(STATES, STATES) if pair not in ALLOWED]
)
def test_transition__refused_when_it_does_not_exist(current, target):
    with pytest.raises(TransitionRefused) as refused:
        transition(current, target, EVERYONE, watched=False, reason="because")
    assert refused.value.current == current
    assert refused.value.allowed == [t for t in TRANSITIONS[current]]
    assert target not in refused.value.allowed


def test_terminal_states_allow_nothing():
    assert allowed("verified", EVERYONE, watched=False) == []
    assert allowed("cancelled", EVERYONE, watched=False) == []


@pytest.mark.parametrize("actor", ["responsible", "accountable", "unit_manager", "quality_manager"])
def test_people_take_work_in_hand_and_finish_it(actor):
    actors = frozenset({actor})
    assert transition("open", "in_progress", actors, watched=True).state == "in_progress"
    assert transition("reopened", "in_progress", actors, watched=True).state == "in_progress"
    assert transition("in_progress", "done", actors, watched=True).state == "done"


@pytest.mark.parametrize("actor", ["responsible", "unit_manager", "system"])
def test_only_the_accountable_or_a_quality_manager_cancel(actor):
    with pytest.raises(TransitionRefused) as refused:
        transition("open", "cancelled", frozenset({actor}), watched=False, reason="duplicate")
    assert "cancelled" not in refused.value.allowed
    assert transition("open", "cancelled", frozenset({"accountable"}), watched=False, reason="dup").reason == "dup"


def test_the_service_does_not_work_actions():
    assert allowed("open", frozenset({"system"}), watched=True) == []
    assert allowed("in_progress", frozenset({"system"}), watched=True) == []


def test_a_watched_action_is_verified_only_by_the_scores():
    with pytest.raises(TransitionRefused) as refused:
        transition("done", "verified", frozenset({"quality_manager"}), watched=True)
    assert refused.value.allowed == ["reopened"]
    assert transition("done", "verified", frozenset({"system"}), watched=True).state == "verified"


def test_an_unwatched_action_is_verified_by_a_quality_manager_not_its_owner():
    assert transition("done", "verified", frozenset({"quality_manager"}), watched=False).state == "verified"
    with pytest.raises(TransitionRefused):
        transition("done", "verified", frozenset({"responsible", "unit_manager"}), watched=False)


def test_the_responsible_person_cannot_reopen_their_own_work():
    with pytest.raises(TransitionRefused) as refused:
        transition("done", "reopened", frozenset({"responsible"}), watched=True, reason="no")
    assert refused.value.allowed == []


@pytest.mark.parametrize(("current", "target"), [("open", "cancelled"), ("done", "reopened")])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_cancelling_and_reopening_need_a_reason(current, target, reason):
    with pytest.raises(TransitionRefused, match="needs a reason"):
        transition(current, target, EVERYONE, watched=True, reason=reason)
