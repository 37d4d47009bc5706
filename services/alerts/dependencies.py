"""What the alerts service's views and use cases receive: its runtime, typed with its own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.alerts.settings import AlertsSettings
from shared.runtime import Runtime, get_runtime

AlertsRuntime = Runtime[AlertsSettings]
RuntimeDep = Annotated[AlertsRuntime, Depends(get_runtime)]
