"""What the scoring service's views and use cases receive: its runtime, typed with its own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.scoring.settings import ScoringSettings
from shared.runtime import Runtime, get_runtime

ScoringRuntime = Runtime[ScoringSettings]
RuntimeDep = Annotated[ScoringRuntime, Depends(get_runtime)]
