"""The console's OpenID Connect sign-in (authorization code + PKCE) against a stand-in provider.

No identity provider runs here, so the provider's three endpoints are answered inside the browser by
Playwright's request routing; what is checked is the console's side: discovery, the S256 challenge
matching the verifier sent to the token endpoint, state and nonce, and the access token then used on
the real APIs behind the real gateway."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Route, expect

from shared.auth import issue_token
from tests.e2e.conftest import Platform
from tests.e2e.console_support import DESKTOP, chromium, open_page, script_errors
from tests.harness import Stack, unique

pytestmark = pytest.mark.e2e
ISSUER = "https://idp.example.test/realms/bank"
CORS = {"Access-Control-Allow-Origin": "*"}


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"e30.{part}."


async def test_console_oidc__code_flow_with_pkce_signs_in_and_calls_the_apis(stack: Stack, platform: Platform):
    org = unique("console-oidc")
    async with httpx.AsyncClient(base_url=platform.gateway, headers=stack.headers(org, "admin"), timeout=10) as http:
        assert (await http.post("/api/v1/units", json={"id": "north", "name": "华北区"})).status_code == 201
    access_token = issue_token(stack.private_key.read_bytes(), org=org, roles=["quality_manager"], subject="zhao.min")
    seen: dict[str, Any] = {}

    async def config(route: Route) -> None:
        oidc = {"issuer": ISSUER, "client_id": "qualityloop-console", "name": "Bank SSO"}
        await route.fulfill(json={"poll_seconds": 10, "oidc": oidc})

    async def discovery(route: Route) -> None:
        endpoints = {"authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token"}
        await route.fulfill(json={"issuer": ISSUER, **endpoints}, headers=CORS)

    async def authorize(route: Route) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(route.request.url).query).items()}
        seen["authorize"] = query
        back = f"{query['redirect_uri']}?{urlencode({'code': 'code-123', 'state': query['state']})}"
        await route.fulfill(status=302, headers={"Location": back})

    async def token(route: Route) -> None:
        form = {k: v[0] for k, v in parse_qs(route.request.post_data or "").items()}
        seen["token"] = form
        nonce = seen["authorize"]["nonce"]
        body = {"access_token": access_token, "id_token": _unsigned_jwt({"nonce": nonce}), "token_type": "Bearer"}
        await route.fulfill(json=body, headers=CORS)

    async with chromium() as browser:
        page = await open_page(browser, DESKTOP)
        await page.route("**/console/config.json", config)
        await page.route(f"{ISSUER}/.well-known/openid-configuration", discovery)
        await page.route(f"{ISSUER}/auth?*", authorize)
        await page.route(f"{ISSUER}/token", token)
        await page.goto(f"{platform.gateway}/console/")
        await page.get_by_role("button", name="Sign in with Bank SSO").click()
        await expect(page.locator("header")).to_contain_text("zhao.min")
        await expect(page.locator("#treemap svg")).to_contain_text("华北区")
        assert "code=" not in page.url, "the code and state are removed from the address bar"
        assert script_errors(page) == []

    asked, exchanged = seen["authorize"], seen["token"]
    assert asked["response_type"] == "code"
    assert asked["client_id"] == "qualityloop-console"
    assert asked["redirect_uri"] == f"{platform.gateway}/console/"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert exchanged["grant_type"] == "authorization_code"
    assert exchanged["code"] == "code-123"
    assert exchanged["redirect_uri"] == asked["redirect_uri"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(exchanged["code_verifier"].encode()).digest()).rstrip(b"=")
    assert challenge.decode() == asked["code_challenge"], "the verifier sent is the one the challenge was made from"
