"""`qualityloop console` prints a sign-in URL whose token the platform accepts, with the role and scope asked for."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from devstack.cli import main
from tests.e2e.conftest import Platform
from tests.harness import Stack, unique

pytestmark = pytest.mark.e2e


async def test_console_command__prints_a_sign_in_url_the_gateway_accepts(
    stack: Stack,
    platform: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    # The embedded default signs with the key under its data folder; here that is the test stack's key.
    (tmp_path / "keys").mkdir()
    shutil.copy(stack.private_key, tmp_path / "keys" / "signing-key.pem")
    shutil.copy(stack.public_key, tmp_path / "keys" / "signing-key.pub.pem")
    monkeypatch.setenv("QL_DATA_DIR", str(tmp_path))
    org = unique("console-cmd")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=stack.headers(org, "admin"), timeout=10) as http:
        for unit in ({"id": "north", "name": "华北区"}, {"id": "b-002", "name": "北京二分行", "parent_id": "north"}):
            assert (await http.post("/api/v1/units", json=unit)).status_code == 201
        assert (await http.post("/api/v1/units", json={"id": "east", "name": "华东区"})).status_code == 201

    arguments = ["console", "--org", org, "--role", "unit_manager", "--scope", "north/b-002"]
    assert main([*arguments, "--gateway", platform.gateway]) == 0
    url = capsys.readouterr().out.strip()

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == platform.gateway
    assert parts.path == "/console/"
    assert parts.query == "", "the token travels in the fragment, which browsers never send to a server"
    token = parts.fragment.removeprefix("token=")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["org"], claims["roles"], claims["scopes"]) == (org, ["unit_manager"], ["north/b-002"])
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as http:
        units = await http.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
        assert units.status_code == 200
        assert [u["id"] for u in units.json()["items"]] == ["b-002"]
        page = await http.get("/console/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        script = await http.get("/console/vendor/echarts/echarts.esm.min.mjs")
        assert script.headers["content-type"].startswith("text/javascript"), "module scripts need a JavaScript type"
