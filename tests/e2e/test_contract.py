"""Schemathesis against every service through the real gateway: no server errors, answers as documented.

Bounded in examples and time (a few seconds per service); the checks are the contract's: no 5xx, status
codes, content types, headers and bodies as each OpenAPI document declares them.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
import pytest

from devstack.cli import SERVICES
from tests.e2e.conftest import Platform
from tests.harness import Stack, unique

pytestmark = pytest.mark.e2e

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = 8
SECONDS_PER_SERVICE = 15
SCHEMATHESIS = Path(sys.executable).with_name("st")


async def schemathesis(platform: Platform, service: str, token: str, report: Path) -> tuple[int, str]:
    """Run schemathesis on one service's document through the gateway; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{platform.gateway}/openapi/{service}.json",
        "--url",
        platform.gateway,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(SECONDS_PER_SERVICE),
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Schemathesis keeps its own state in the working directory: not in the repository.
        cwd=report.parent,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_schemathesis__finds_nothing_in_any_service_through_the_gateway(
    platform: Platform, stack: Stack, tmp_path
):
    # The four run side by side: most of a run is schemathesis starting and waiting on answers.
    token = stack.token(unique("org"), "admin")
    runs = await asyncio.gather(
        *(schemathesis(platform, service, token, tmp_path / f"{service}.xml") for service in SERVICES)
    )
    found = {service: output for service, (code, output) in zip(SERVICES, runs, strict=True) if code != 0}
    assert not found, "schemathesis found problems:\n" + "\n\n".join(
        f"=== {service} ===\n{output[-8000:]}" for service, output in found.items()
    )


async def test_gateway_index__links_every_services_document(platform: Platform):
    async with httpx.AsyncClient(base_url=platform.gateway) as http:
        index = (await http.get("/")).text
        for link in re.findall(r'href="([^"]+)"', index):
            response = await http.get(link)
            assert response.status_code == 200, link
            assert response.json()["info"]["title"] or response.json()["asyncapi"]
        for service in SERVICES:
            assert f"/openapi/{service}.json" in index
