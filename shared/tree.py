"""The organisation tree as every service sees it: unit paths, subtrees and lineages."""

from __future__ import annotations

WHOLE_ORGANISATION = "*"


def in_subtree(unit_path: str, scope: str) -> bool:
    """Whether a unit path lies in the subtree rooted at ``scope`` (``*``: the whole organisation)."""
    return scope == WHOLE_ORGANISATION or unit_path == scope or unit_path.startswith(f"{scope}/")


def lineage(unit_path: str) -> list[str]:
    """Every ancestor path of a unit and its own: ``a/b/c`` → ``[a, a/b, a/b/c]``."""
    parts = unit_path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
