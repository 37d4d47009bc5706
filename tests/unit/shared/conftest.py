"""Fixtures of the shared contract's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.auth import ensure_signing_key


@pytest.fixture(scope="module")
def public_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A public key the services' token verifier can be built with (no token is verified)."""
    return ensure_signing_key(tmp_path_factory.mktemp("keys"))[1]
