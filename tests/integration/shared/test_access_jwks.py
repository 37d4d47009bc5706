"""Tokens verified against a JWKS served by a real HTTP server: rotation, unknown keys, bounded refetching."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.processes import free_port
from shared.auth import TokenVerifier, issue_token
from shared.problems import Problem
from shared.settings import PlatformSettings


class Provider:
    """A stand-in OIDC provider: its signing keys, the JWKS it serves, and how often it was asked."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.served: list[str] = []
        self.fetches = 0

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def publish(self, *kids: str) -> None:
        self.served = list(kids)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.served:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(self, kid: str, org: str = "acme") -> str:
        pem = self.keys[kid].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return issue_token(pem, org=org, roles=["analyst"], issuer="https://idp.example", key_id=kid)


@pytest.fixture
def provider() -> Iterator[tuple[Provider, str]]:
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps(state.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def _verifier(url: str, *, min_refresh_seconds: float) -> TokenVerifier:
    settings = PlatformSettings(
        kafka_bootstrap="x:1",
        mongo_uri="mongodb://x",
        auth_jwks_url=url,
        auth_issuer="https://idp.example",
        auth_jwks_min_refresh_seconds=min_refresh_seconds,
    )
    return TokenVerifier(settings)


async def test_jwks__a_rotated_key_is_fetched_when_a_token_names_it(provider):
    idp, url = provider
    idp.add_key("2026-11")
    idp.add_key("2026-12")
    idp.publish("2026-11")
    verifier = _verifier(url, min_refresh_seconds=0)

    assert (await verifier.principal(idp.token("2026-11"))).org == "acme"
    assert (await verifier.principal(idp.token("2026-11", org="beta"))).org == "beta"
    assert idp.fetches == 1, "known keys are cached"

    idp.publish("2026-11", "2026-12")
    assert (await verifier.principal(idp.token("2026-12"))).org == "acme"
    assert idp.fetches == 2, "an unknown key id refetches the JWKS once"

    idp.publish("2026-12")
    assert (await verifier.principal(idp.token("2026-12", org="gamma"))).org == "gamma"


async def test_jwks__unknown_key_ids_refetch_at_most_once_per_interval(provider):
    idp, url = provider
    idp.add_key("current")
    idp.add_key("forged")
    idp.publish("current")
    verifier = _verifier(url, min_refresh_seconds=3600)

    assert (await verifier.principal(idp.token("current"))).org == "acme"
    for _ in range(20):
        with pytest.raises(Problem) as refused:
            await verifier.principal(idp.token("forged"))
        assert refused.value.status == 401
    assert idp.fetches == 1


async def test_jwks__a_token_signed_by_another_key_under_a_known_kid_is_refused(provider):
    idp, url = provider
    idp.add_key("k1")
    idp.publish("k1")
    verifier = _verifier(url, min_refresh_seconds=0)
    impostor = Provider()
    impostor.add_key("k1")
    with pytest.raises(Problem) as refused:
        await verifier.principal(impostor.token("k1"))
    assert "Signature verification failed" in (refused.value.detail or "")


async def test_jwks__an_unreachable_provider_refuses_tokens_without_failing_the_request(provider):
    idp, _ = provider
    idp.add_key("k1")
    verifier = _verifier(f"http://127.0.0.1:{free_port()}/jwks.json", min_refresh_seconds=0)
    with pytest.raises(Problem) as refused:
        await verifier.principal(idp.token("k1"))
    assert refused.value.status == 401
