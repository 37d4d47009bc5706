"""Email over STARTTLS and implicit TLS, the server's certificate checked."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack.processes import free_port
from services.alerts.notify import EmailConfig, send
from tests.integration.alerts.notify.conftest import SMTP_PASSWORD, SMTP_USER, MailHandler, authenticate, firing


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The SMTP server's TLS context."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(scope="module")
def starttls_server(certificate) -> Iterator[tuple[int, MailHandler]]:
    """A submission server that requires STARTTLS before login (port 587's behaviour)."""
    handler, port = MailHandler(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticate,
    )
    controller.start()
    yield port, handler
    controller.stop()


@pytest.fixture(scope="module")
def tls_server(certificate) -> Iterator[tuple[int, MailHandler]]:
    """A server speaking TLS from the first byte (port 465's behaviour)."""
    handler, port = MailHandler(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_context(certificate),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield port, handler
    controller.stop()


def config(port: int, security: str) -> EmailConfig:
    """An email channel with a login, through a local server."""
    return EmailConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "security": security,
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "sender": "alerts@example.com",
            "recipients": ["qm@example.com"],
        }
    )


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_email__is_delivered_over_tls_to_a_trusted_server(
    security, certificate, starttls_server, tls_server, http, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    port, handler = starttls_server if security == "starttls" else tls_server
    attempt = await send(config(port, security), firing(), http=http, message_id=f"dlv_{security}")
    assert attempt.ok, attempt.error
    assert handler.envelopes[-1].rcpt_tos == ["qm@example.com"]


async def test_email__refuses_a_server_whose_certificate_is_not_trusted(starttls_server, http, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    port, handler = starttls_server
    received = len(handler.envelopes)
    attempt = await send(config(port, "starttls"), firing(), http=http, message_id="dlv_untrusted")
    assert not attempt.ok
    assert "certificate" in (attempt.error or "").lower()
    assert len(handler.envelopes) == received
