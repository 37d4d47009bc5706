"""The bare FastAPI app: one POST endpoint that validates a small JSON body and answers 201."""

from __future__ import annotations

from fastapi import FastAPI, status
from pydantic import BaseModel

app = FastAPI(title="bench bare app")


class FeedbackIn(BaseModel):
    """A small feedback-like body."""

    unit_id: str
    channel: str
    ratings: dict[str, int] = {}


@app.post("/api/v1/feedback", status_code=status.HTTP_201_CREATED)
async def post_feedback(feedback_in: FeedbackIn) -> dict[str, str]:
    """Accept the body and answer without any I/O."""
    return {"unit_id": feedback_in.unit_id, "channel": feedback_in.channel}
