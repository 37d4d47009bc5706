"""What the improvement service's views and use cases receive: its runtime, typed with its own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from services.improvement.settings import ImprovementSettings
from shared.auth import Principal, require_role
from shared.pagination import MAX_LIMIT
from shared.runtime import Runtime, get_runtime

ImprovementRuntime = Runtime[ImprovementSettings]
RuntimeDep = Annotated[ImprovementRuntime, Depends(get_runtime)]
# The matrix, plans, risks and the organisation's settings are quality management's to change. Actions
# are worked by unit managers in their subtree and by quality management; the action's own responsible
# or accountable person may also work it, whatever their role (checked per action).
QualityManager = Annotated[Principal, Depends(require_role("quality_manager"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
