"""What the feedback service's views and use cases receive: its runtime, typed with its own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.feedback.settings import FeedbackSettings
from shared.runtime import Runtime, get_runtime

FeedbackRuntime = Runtime[FeedbackSettings]
RuntimeDep = Annotated[FeedbackRuntime, Depends(get_runtime)]
