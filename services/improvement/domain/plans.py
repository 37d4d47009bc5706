"""Improvement plans (PDCA): a target, the phases plan → do → check → act, and progress from the scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["plan", "do", "check", "act", "closed"]
PHASES: tuple[Phase, ...] = ("plan", "do", "check", "act", "closed")
# What was learned is recorded when checking the results and when acting on them.
NEEDS_LEARNING: frozenset[Phase] = frozenset({"check", "act"})
MOVES: dict[Phase, tuple[Phase, ...]] = {
    "plan": ("do",),
    "do": ("check",),
    "check": ("act",),
    # After act: another turn of the cycle, or the plan is closed.
    "act": ("plan", "closed"),
    "closed": (),
}


class PhaseRefused(Exception):
    """A phase move the cycle does not allow, or one that lacks what was learned."""

    def __init__(self, current: Phase, target: str, allowed: tuple[Phase, ...], why: str) -> None:
        super().__init__(why)
        self.current, self.target, self.allowed, self.why = current, target, allowed, why


def move(current: Phase, target: str, *, learning: str | None) -> Phase:
    """The next phase, or PhaseRefused; check and act need what was learned, the cycle goes round after act."""
    allowed = MOVES[current]
    chosen = next((phase for phase in allowed if phase == target), None)
    if chosen is None:
        raise PhaseRefused(current, target, allowed, f"a plan in {current} cannot move to {target}")
    if current in NEEDS_LEARNING and not (learning and learning.strip()):
        raise PhaseRefused(current, target, allowed, f"leaving {current} needs what was learned")
    return chosen


@dataclass(frozen=True)
class Target:
    """Where the plan wants an indicator of a unit to be, by when, and from where it started."""

    indicator: str
    target: float
    baseline: float | None = None

    @property
    def rising(self) -> bool:
        """Whether the target lies above the baseline (higher is better for this plan)."""
        return self.baseline is None or self.target >= self.baseline


def progress(target: Target, current: float | None) -> float | None:
    """The share (0–1) of the way from the baseline to the target that the current value has come.

    Without a baseline or a current value there is no progress to tell; a value past the target is 1,
    one that went the wrong way is 0.
    """
    if current is None or target.baseline is None:
        return None
    span = target.target - target.baseline
    if span == 0:
        return 1.0 if current == target.target else 0.0
    return min(1.0, max(0.0, (current - target.baseline) / span))


def reached(target: Target, current: float | None) -> bool:
    """Whether the current value is at or past the target, in the plan's direction."""
    if current is None:
        return False
    return current >= target.target if target.rising else current <= target.target
