"""Inhibition: while a unit's red alert fires, lower-level alerts on the same indicator in its subtree are
not notified (they are still recorded). Alertmanager's inhibit rule with source level red, target any
lower level, equal indicator, target unit inside the source unit."""

from __future__ import annotations

from collections.abc import Iterable

from services.alerts.rules.base import level_rank
from services.alerts.silences import AlertFacts
from shared.tree import in_subtree

INHIBITING_LEVEL = "red"


def inhibited(alert: AlertFacts, firing: Iterable[AlertFacts]) -> bool:
    """Whether a firing red alert on the alert's unit or an ancestor, same indicator, holds this one back."""
    if alert.level == INHIBITING_LEVEL:
        return False
    return any(
        other.level == INHIBITING_LEVEL
        and other.indicator == alert.indicator
        and level_rank(alert.level) < level_rank(other.level)
        and in_subtree(alert.unit_path, other.unit_path)
        for other in firing
    )
