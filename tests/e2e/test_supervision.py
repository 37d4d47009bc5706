"""`qualityloop run` under a fault: a SIGKILLed service is restarted and the rest keeps serving."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from devstack.cli import SERVICES
from devstack.processes import free_port
from shared.auth import issue_token
from tests.e2e.local_run import interrupt, start, wait_for_banner

pytestmark = pytest.mark.e2e


def _readiness(gateway: str) -> tuple[int, dict]:
    answer = httpx.get(f"{gateway}/readyz", timeout=5)
    return answer.status_code, answer.json()


def _until(predicate, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("the condition did not hold in time")


def test_a_killed_service__is_restarted_while_the_others_keep_serving(tmp_path: Path):
    ports = {part: free_port() for part in ("gateway", "broker", "database", *SERVICES)}
    env = {**os.environ, "QL_DATA_DIR": str(tmp_path / "data")}
    env.update({f"QL_{part.upper()}_PORT": str(port) for part, port in ports.items()})
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    log = tmp_path / "run.log"
    process = start(env, log)
    try:
        wait_for_banner(process, log)
        code, body = _readiness(gateway)
        assert code == 200 and body["down"] == []
        key = (tmp_path / "data" / "keys" / "signing-key.pem").read_bytes()
        auth = {"Authorization": f"Bearer {issue_token(key, org='acme', roles=['admin'])}"}
        assert httpx.post(f"{gateway}/api/v1/units", json={"id": "b-1", "name": "一分行"}, headers=auth).is_success

        os.kill(body["parts"]["scoring"]["pid"], signal.SIGKILL)

        down = _until(lambda: (r := _readiness(gateway))[0] == 503 and r[1])
        assert down["down"] == ["scoring"]
        # The feedback service keeps taking feedback while scoring is away; nothing is lost.
        posted = httpx.post(
            f"{gateway}/api/v1/feedback",
            json={"unit_id": "b-1", "channel": "app", "ratings": {"csat": 5}},
            headers=auth,
        )
        assert posted.status_code in (200, 201, 202), posted.text
        back = _until(lambda: (r := _readiness(gateway))[0] == 200 and r[1])
        assert back["parts"]["scoring"]["restarts"] == 1
        score = _until(
            lambda: (
                (r := httpx.get(f"{gateway}/api/v1/scores/b-1", headers=auth)).status_code == 200
                and r.json().get("sample_size") == 1
                and r.json()
            )
        )
        assert score["sample_size"] == 1
        assert "scoring exited with -9; restarting it" in log.read_text()
    finally:
        assert interrupt(process) == 0
