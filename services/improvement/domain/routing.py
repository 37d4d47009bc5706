"""The responsibility matrix (组织架构与职责分工): who owns a breach, and why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.tree import WHOLE_ORGANISATION, in_subtree


@dataclass(frozen=True)
class Breach:
    """What is to be routed: a unit, the indicator, the warning level and the kind of rule that fired."""

    unit_path: str
    indicator: str | None = None
    level: str | None = None
    rule_kind: str | None = None


@dataclass(frozen=True)
class Entry:
    """One row of the matrix: for a unit subtree, optionally narrowed, who is R, A, C and I."""

    id: str
    scope: str
    responsible: str
    accountable: str | None = None
    consulted: tuple[str, ...] = ()
    informed: tuple[str, ...] = ()
    indicators: frozenset[str] = field(default_factory=frozenset)
    rule_kinds: frozenset[str] = field(default_factory=frozenset)
    levels: frozenset[str] = field(default_factory=frozenset)

    def covers(self, breach: Breach) -> bool:
        """Whether the entry's subtree holds the unit and each of its narrowings admits the breach."""
        return (
            in_subtree(breach.unit_path, self.scope)
            and _admits(self.indicators, breach.indicator)
            and _admits(self.rule_kinds, breach.rule_kind)
            and _admits(self.levels, breach.level)
        )

    def specificity(self) -> tuple[int, int, int]:
        """Deeper scope first; then more narrowed dimensions; then fewer values admitted."""
        narrowed = [values for values in (self.indicators, self.rule_kinds, self.levels) if values]
        return scope_depth(self.scope), len(narrowed), -sum(len(values) for values in narrowed)

    def narrowing(self) -> str:
        """The entry's narrowings in words, e.g. ``indicator csat, level red``."""
        parts = [
            f"{name} {', '.join(sorted(values))}"
            for name, values in (("indicator", self.indicators), ("rule kind", self.rule_kinds), ("level", self.levels))
            if values
        ]
        return "; ".join(parts) or "no narrowing"


def _admits(values: frozenset[str], value: str | None) -> bool:
    # An entry narrowed to some values admits only breaches that name one of them.
    return not values or value in values


def scope_depth(scope: str) -> int:
    """How deep a scope lies in the tree: 0 for the whole organisation, 1 for a top unit."""
    return 0 if scope == WHOLE_ORGANISATION else scope.count("/") + 1


@dataclass(frozen=True)
class Match:
    """The routing decision: the owner, the entry that gave it (None: the default owner) and why."""

    responsible: str | None
    accountable: str | None
    entry: Entry | None
    reason: str
    consulted: tuple[str, ...] = ()
    informed: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()

    @property
    def routed(self) -> bool:
        """Whether somebody owns the breach."""
        return self.responsible is not None


def route(entries: Iterable[Entry], breach: Breach, *, default_owner: str | None = None) -> Match:
    """The most specific covering entry wins; a unit without one inherits its ancestors'; else the default owner.

    Ties (same depth, same narrowing) go to the entry created first (the smallest id): the matrix
    answers the same way every time, whichever order the entries are read in.
    """
    covering = sorted((e for e in entries if e.covers(breach)), key=lambda e: e.id)
    candidates = tuple(e.id for e in covering)
    if not covering:
        if default_owner is None:
            return Match(None, None, None, "no entry covers the unit and the organisation has no default owner")
        return Match(default_owner, None, None, "no entry covers the unit: the organisation's default owner")
    best = max(covering, key=Entry.specificity)  # max keeps the first of equals: the oldest entry
    return Match(
        best.responsible,
        best.accountable,
        best,
        _explain(best, breach, len(covering)),
        consulted=best.consulted,
        informed=best.informed,
        candidates=candidates,
    )


def _explain(entry: Entry, breach: Breach, covering: int) -> str:
    if entry.scope == breach.unit_path:
        where = f"entry {entry.id} is set on {entry.scope} itself"
    elif entry.scope == WHOLE_ORGANISATION:
        where = f"entry {entry.id} covers the whole organisation"
    else:
        above = scope_depth(breach.unit_path) - scope_depth(entry.scope)
        where = f"{breach.unit_path} inherits entry {entry.id} of {entry.scope} ({above} level(s) up)"
    rest = f"the most specific of {covering} covering entries" if covering > 1 else "the only covering entry"
    return f"{where}, {entry.narrowing()}; {rest}"


def parent_path(unit_path: str) -> str | None:
    """The path of a unit's parent; None for a top unit."""
    parent, _, _ = unit_path.rpartition("/")
    return parent or None


def route_up(entries: Iterable[Entry], breach: Breach, *, default_owner: str | None, passed: Iterable[str]) -> Match:
    """The owner of the unit's parent who is none of ``passed`` (the people the work already climbed past).

    Escalation climbs the tree: from the parent upwards, the first unit whose routed owner is someone
    new; at the top, the organisation's default owner.
    """
    entries = list(entries)
    skip = set(passed)
    path = parent_path(breach.unit_path)
    while path is not None:
        match = route(entries, Breach(path, breach.indicator, breach.level, breach.rule_kind))
        if match.responsible is not None and match.responsible not in skip:
            return match
        path = parent_path(path)
    top = route([e for e in entries if e.scope == WHOLE_ORGANISATION], breach)
    if top.responsible is not None and top.responsible not in skip:
        return top
    if default_owner is not None and default_owner not in skip:
        return Match(default_owner, None, None, "no owner above the unit: the organisation's default owner")
    return Match(None, None, None, "nobody above the unit who has not had the action already")
