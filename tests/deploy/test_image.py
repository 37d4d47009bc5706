"""The Dockerfile builds one non-root image for every service, with a health check that finds the served
service's port the way the service does."""

import re

import pytest

from deploy.generate import ROOT, SERVICE_PORTS, SERVICES
from deploy.image.healthcheck import served_service, settings_of

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_the_image_is_multi_stage_non_root_and_checks_its_health():
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2
    assert re.search(r"^USER 10001", DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE
    assert "enrichment.warm_up()" in DOCKERFILE


def test_the_build_context_holds_what_the_dockerfile_copies():
    kept = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
            assert any(path == k or path.startswith(f"{k}/") for k in kept), f"{path} is left out by .dockerignore"


def test_one_services_image_by_default_and_a_gateway_target():
    stages = re.findall(r"^FROM \S+ AS (\w+)$", DOCKERFILE, re.M)
    assert stages[-1] == "runtime"
    assert "gateway" in stages


@pytest.mark.parametrize("service", SERVICES)
def test_the_health_check_finds_the_served_service_and_its_port(service, tmp_path, monkeypatch):
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(
        b"\0".join([b"/opt/qualityloop/bin/python", b"/opt/qualityloop/bin/qualityloop", b"serve", service.encode()])
    )
    assert served_service(cmdline) == service
    monkeypatch.setenv("QL_FEEDBACK_PSEUDONYM_KEY", "test")
    monkeypatch.delenv(f"QL_{service.upper()}_PORT", raising=False)
    assert settings_of(service).port == SERVICE_PORTS[service]
    monkeypatch.setenv(f"QL_{service.upper()}_PORT", "9999")
    assert settings_of(service).port == 9999
