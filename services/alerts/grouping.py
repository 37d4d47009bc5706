"""Grouping: the alerts of one rule on a unit and its descendants form one group, notified together.

A rule groups at a depth of the tree (``group_depth``, default 1: the region): every alert of the rule on
units under one region is one group while any of them fires, so a regional decline is one message
naming its branches. Depth 0 groups the rule's whole scope.
"""

from __future__ import annotations

from shared.tree import WHOLE_ORGANISATION


def group_root(unit_path: str, depth: int) -> str:
    """The path whose subtree the unit's alerts are grouped under."""
    if depth <= 0:
        return WHOLE_ORGANISATION
    parts = unit_path.split("/")
    return "/".join(parts[:depth]) if len(parts) > depth else unit_path


def group_key(rule_id: str, unit_path: str, depth: int) -> str:
    """The key of the open group an alert joins."""
    return f"{rule_id}\x1f{group_root(unit_path, depth)}"


def paths_named(unit_paths: list[str], limit: int = 50) -> list[str]:
    """The group's units as a notification names them: shallowest first, at most ``limit``."""
    return sorted(set(unit_paths), key=lambda p: (p.count("/"), p))[:limit]
