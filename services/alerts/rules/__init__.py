"""Rule kinds: each a module with its parameters (``Params``), an ``evaluate`` and, if timers drive it, a
``recheck``; each keeps its own state per fingerprint as a plain dict. A new kind is one module here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, TypeAdapter

from services.alerts.rules import baseline, burn_rate, event, spc, threshold
from services.alerts.rules.base import Feedback, Observation, State, Verdict

Source = Literal["score", "feedback"]


@dataclass(frozen=True)
class RuleKind:
    """One rule kind's interface: what drives it, and how it evaluates and re-evaluates on a timer."""

    kind: str
    source: Source
    evaluate: Callable[..., tuple[Verdict, State]]
    recheck: Callable[..., tuple[Verdict, State]] | None


KINDS: dict[str, RuleKind] = {
    module.KIND: RuleKind(module.KIND, module.SOURCE, module.evaluate, getattr(module, "recheck", None))
    for module in (threshold, baseline, spc, event, burn_rate)
}


def _kind_of(value: Any) -> str:
    # A rule without a kind is a threshold, as rules were before there were other kinds.
    if isinstance(value, dict):
        return str(value.get("kind", "threshold"))
    return str(getattr(value, "kind", "threshold"))


AnyParams = threshold.Params | baseline.Params | spc.Params | event.Params | burn_rate.Params
Params = Annotated[
    Annotated[threshold.Params, Tag("threshold")]
    | Annotated[baseline.Params, Tag("baseline")]
    | Annotated[spc.Params, Tag("spc")]
    | Annotated[event.Params, Tag("event")]
    | Annotated[burn_rate.Params, Tag("burn_rate")],
    Discriminator(_kind_of),
]
PARAMS: TypeAdapter[AnyParams] = TypeAdapter(Params)


def parse(document: dict[str, Any]) -> AnyParams:
    """A rule's parameters from their stored or posted form."""
    return PARAMS.validate_python(document)


def source_of(params: AnyParams) -> Source:
    """Whether scores or single feedback drive the rule."""
    return KINDS[params.kind].source


def on_score(params: AnyParams, state: State, observation: Observation, *, firing: bool) -> tuple[Verdict, State]:
    """Evaluate a score-driven rule on a new figure."""
    return KINDS[params.kind].evaluate(params, state, observation, firing=firing)


def on_feedback(params: AnyParams, state: State, feedback: Feedback, *, firing: bool) -> tuple[Verdict, State]:
    """Evaluate a feedback-driven rule on one feedback."""
    return KINDS[params.kind].evaluate(params, state, feedback, firing=firing)


def recheck(params: AnyParams, state: State, at: datetime, *, firing: bool) -> tuple[Verdict, State]:
    """Evaluate again on a timer (``for`` durations, sliding windows, quiet time); no-op for kinds without."""
    check = KINDS[params.kind].recheck
    if check is None:
        return Verdict(holds=None), state
    return check(params, state, at, firing=firing)
