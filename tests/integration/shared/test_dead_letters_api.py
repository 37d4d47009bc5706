"""Dead letters can be listed and replayed over REST, within the caller's organisation."""

from __future__ import annotations

import httpx
import pytest

from services.improvement.main import DEFINITION
from shared.app import create_app
from shared.events import ThresholdBreached
from tests.harness import RunningService, Stack, eventually, produce, unique

pytestmark = pytest.mark.integration


async def test_dead_letter__is_listed_with_its_reason_and_replays_onto_its_topic(stack: Stack):
    settings = DEFINITION.settings_type(port=0, database=unique("improvement"))
    service = await RunningService(create_app(DEFINITION, stack.platform(), settings)).start()
    org = unique("org")
    try:
        await produce(
            stack.bootstrap,
            "threshold.breached",
            b'{"org": "%s"}' % org.encode(),
            key=f"{org}/b-1".encode(),
            headers={"ce_id": unique("id"), "ce_type": ThresholdBreached.type_name()},
        )
        async with httpx.AsyncClient(base_url=service.url, headers=stack.headers(org, "admin")) as http:

            async def listed() -> list:
                return (await http.get("/api/v1/dead-letters/improvement")).json()["items"]

            [dead] = await eventually(listed)
            assert dead["topic"] == "threshold.breached"
            assert "invalid qualityloop.threshold.breached.v1 payload" in dead["reason"]

            other_org = await http.get(
                "/api/v1/dead-letters/improvement", headers=stack.headers(unique("org"), "admin")
            )
            assert other_org.json()["items"] == []
            analyst = await http.get("/api/v1/dead-letters/improvement", headers=stack.headers(org, "analyst"))
            assert analyst.status_code == 403

            replayed = await http.post(f"/api/v1/dead-letters/improvement/{dead['id']}/replay")
            assert replayed.status_code == 200 and replayed.json()["replayed_at"] is not None
            # Still malformed, so the replayed copy dead-letters again: proof it went back on the topic.
            await eventually(lambda: _count_at_least(listed, 2))
    finally:
        await service.stop()


async def _count_at_least(listed, n: int) -> bool:
    return len(await listed()) >= n
