"""The legacy-storage migration has an end: the release named in the code drops it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from services.feedback.legacy_storage import LEGACY_STORAGE_REMOVED_IN

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


def test_legacy_storage__is_dropped_before_the_release_that_removes_it():
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert _release(version) < _release(LEGACY_STORAGE_REMOVED_IN), (
        f"{version} is the release that drops services/feedback/legacy_storage.py: delete it and its start-up call"
    )
