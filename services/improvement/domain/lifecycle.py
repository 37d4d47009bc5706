"""The action's states, which transitions exist, and who may make each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

State = Literal["open", "in_progress", "done", "verified", "reopened", "cancelled"]
STATES: tuple[State, ...] = ("open", "in_progress", "done", "verified", "reopened", "cancelled")
ACTIVE: frozenset[State] = frozenset({"open", "in_progress", "reopened"})
CLOSED: frozenset[State] = frozenset({"verified", "cancelled"})

# Who may make a transition: the person responsible, the accountable person, a unit manager of the
# action's subtree, a quality manager, or the service itself (verification on scores).
Actor = Literal["responsible", "accountable", "unit_manager", "quality_manager", "system"]
PEOPLE: frozenset[Actor] = frozenset({"responsible", "accountable", "unit_manager", "quality_manager"})
MANAGERS: frozenset[Actor] = frozenset({"accountable", "quality_manager"})

TRANSITIONS: Mapping[State, Mapping[State, frozenset[Actor]]] = {
    "open": {"in_progress": PEOPLE, "cancelled": MANAGERS},
    "in_progress": {"done": PEOPLE, "cancelled": MANAGERS},
    # A done action is verified by the scores; by hand only when it watches no indicator (see below),
    # and a reviewer who finds the fix did not work reopens it.
    "done": {"verified": frozenset({"system", "quality_manager"}), "reopened": frozenset({"system", *MANAGERS})},
    "reopened": {"in_progress": PEOPLE, "cancelled": MANAGERS},
    "verified": {},
    "cancelled": {},
}
NEEDS_REASON: frozenset[State] = frozenset({"cancelled", "reopened"})


class TransitionRefused(Exception):
    """A transition that does not exist from the current state, or that these actors may not make."""

    def __init__(self, current: State, target: str, allowed: list[State], why: str) -> None:
        super().__init__(why)
        self.current, self.target, self.allowed, self.why = current, target, allowed, why


@dataclass(frozen=True)
class Transition:
    """An accepted change of state, with the reason when one is needed."""

    previous: State
    state: State
    reason: str | None


def allowed(current: State, actors: frozenset[Actor], *, watched: bool) -> list[State]:
    """The states these actors may move an action to from ``current``.

    ``watched``: the action has an indicator whose scores decide verification; then only the service
    verifies it (ISO 9001 §10.2.1 d: the effectiveness is reviewed, not declared).
    """
    targets = []
    for target, who in TRANSITIONS[current].items():
        if target == "verified" and watched and "system" not in actors:
            continue
        if who & actors:
            targets.append(target)
    return targets


def transition(
    current: State, target: str, actors: frozenset[Actor], *, watched: bool, reason: str | None = None
) -> Transition:
    """The transition to ``target``, or TransitionRefused naming the current state and the allowed ones."""
    permitted = allowed(current, actors, watched=watched)
    if target not in TRANSITIONS[current]:
        raise TransitionRefused(current, target, permitted, f"an action that is {current} cannot become {target}")
    if target not in permitted:
        raise TransitionRefused(current, target, permitted, f"you may not move an action from {current} to {target}")
    if target in NEEDS_REASON and not (reason and reason.strip()):
        raise TransitionRefused(current, target, permitted, f"moving an action to {target} needs a reason")
    return Transition(current, as_state(target), reason)


def as_state(name: str) -> State:
    """The state of that name; ValueError if there is none."""
    for state in STATES:
        if state == name:
            return state
    raise ValueError(f"no action state {name!r}")
