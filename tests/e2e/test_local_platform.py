"""`qualityloop run`, as `make run` starts it: everything comes up, Ctrl-C stops it, data survives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack.cli import SERVICES
from devstack.processes import free_port
from shared.auth import issue_token
from tests.e2e.local_run import interrupt, start, wait_for_banner

pytestmark = pytest.mark.e2e


def test_run__serves_through_the_gateway_stops_on_ctrl_c_and_keeps_its_data(tmp_path: Path):
    ports = {part: free_port() for part in ("gateway", "broker", "database", *SERVICES)}
    env = {**os.environ, "QL_DATA_DIR": str(tmp_path / "data")}
    env.update({f"QL_{part.upper()}_PORT": str(port) for part, port in ports.items()})
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    log = tmp_path / "first-run.log"

    first = start(env, log)
    try:
        wait_for_banner(first, log)
        assert gateway in log.read_text()
        key = (tmp_path / "data" / "keys" / "signing-key.pem").read_bytes()
        auth = {"Authorization": f"Bearer {issue_token(key, org='acme', roles=['admin'])}"}
        created = httpx.post(f"{gateway}/api/v1/units", json={"id": "hq", "name": "总部"}, headers=auth)
        assert created.status_code == 201, created.text
    finally:
        assert interrupt(first) == 0
    assert "stopped" in log.read_text()

    log = tmp_path / "second-run.log"
    second = start(env, log)
    try:
        wait_for_banner(second, log)
        kept = httpx.get(f"{gateway}/api/v1/units/hq", headers=auth)
        assert kept.status_code == 200 and kept.json()["name"] == "总部"
    finally:
        assert interrupt(second) == 0


def test_run__refuses_to_start_on_a_port_already_in_use(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "QL_DATA_DIR": str(tmp_path / "data"), "QL_GATEWAY_PORT": str(port)}
        env.update({f"QL_{part.upper()}_PORT": str(free_port()) for part in ("broker", "database", *SERVICES)})
        result = subprocess.run(
            [sys.executable, "-m", "devstack.cli", "run"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert f"gateway (port {port}, QL_GATEWAY_PORT)" in result.stdout
