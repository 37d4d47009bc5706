"""Identifiers that sort by creation time."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """A unique id that sorts by creation time, so a cursor over it stays correct while rows arrive."""
    return f"{prefix}_{time.time_ns():x}{os.urandom(5).hex()}"
