"""What the improvement service's views and use cases receive: its runtime, typed with its own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.improvement.settings import ImprovementSettings
from shared.runtime import Runtime, get_runtime

ImprovementRuntime = Runtime[ImprovementSettings]
RuntimeDep = Annotated[ImprovementRuntime, Depends(get_runtime)]
