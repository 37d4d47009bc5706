"""What the improvement service's views and use cases receive: its runtime, typed with its own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from services.improvement.settings import ImprovementSettings
from shared.pagination import MAX_LIMIT
from shared.runtime import Runtime, get_runtime

ImprovementRuntime = Runtime[ImprovementSettings]
RuntimeDep = Annotated[ImprovementRuntime, Depends(get_runtime)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
