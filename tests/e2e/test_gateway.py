"""The real nginx gateway: rate limits and body-size limits answer problem+json, security headers, TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack.cli import SERVICES
from devstack.processes import Child, GatewayLimits, GatewayTls, free_port, start_gateway

pytestmark = pytest.mark.e2e

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@pytest.fixture(scope="module")
def strict_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with a tiny body limit in front of services that are not running (their paths answer 503)."""
    upstreams = {service: free_port() for service in SERVICES}
    limits = GatewayLimits(max_body_size="1k")
    gateway: Child = start_gateway(free_port(), upstreams, tmp_path_factory.mktemp("gateway"), limits=limits)
    try:
        yield f"http://127.0.0.1:{gateway.port}"
    finally:
        gateway.stop()


def _is_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    assert response.headers["x-request-id"]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_gateway__refuses_an_oversized_body_with_413_problem(strict_gateway):
    response = httpx.post(f"{strict_gateway}/api/v1/feedback", content=b"x" * 4096)
    _is_problem(response, 413)


def test_gateway__limits_each_client_and_answers_429_with_retry_after(tmp_path):
    upstreams = {service: free_port() for service in SERVICES}
    limits = GatewayLimits(rate="1r/m", burst=2)
    gateway = start_gateway(free_port(), upstreams, tmp_path / "gateway", limits=limits)
    try:
        url = f"http://127.0.0.1:{gateway.port}/api/v1/units"
        answers = [httpx.get(url) for _ in range(6)]
    finally:
        gateway.stop()
    # Three pass the limit (rate plus burst) and reach a service that is down: 503 problem, no Retry-After.
    assert [a.status_code for a in answers[:3]] == [503, 503, 503]
    _is_problem(answers[0], 503)
    assert "retry-after" not in answers[0].headers
    for refused in answers[3:]:
        _is_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"


def test_gateway__answers_unknown_paths_with_a_404_problem_and_serves_its_index(strict_gateway):
    _is_problem(httpx.get(f"{strict_gateway}/nope"), 404)
    index = httpx.get(f"{strict_gateway}/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    for service in SERVICES:
        assert f'href="/openapi/{service}.json"' in index.text


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "gateway.crt", directory / "gateway.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_gateway__terminates_tls_with_hsts_and_redirects_plain_http(tmp_path):
    certificate, key = _self_signed(tmp_path / "tls")
    tls = GatewayTls(certificate=certificate, key=key, port=free_port(), host="127.0.0.1")
    plain_port = free_port()
    gateway = start_gateway(plain_port, {s: free_port() for s in SERVICES}, tmp_path / "gateway", tls=tls)
    try:
        secure = httpx.get(
            f"https://127.0.0.1:{tls.port}/healthz", verify=ssl.create_default_context(cafile=certificate)
        )
        assert secure.status_code == 200 and secure.json() == {"status": "ok"}
        assert secure.headers["strict-transport-security"].startswith("max-age=")
        redirected = httpx.get(f"http://127.0.0.1:{plain_port}/api/v1/units?x=1")
        assert redirected.status_code == 308
        assert redirected.headers["location"] == f"https://127.0.0.1:{tls.port}/api/v1/units?x=1"
        assert httpx.get(f"http://127.0.0.1:{plain_port}/healthz").status_code == 200
    finally:
        gateway.stop()
