"""Real receivers on free ports: HTTP checking each vendor's documented format and signature, and SMTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.processes import free_port
from services.alerts.notify import Notification, WebhookRejected, new_webhook_secret, verify_webhook
from tests.harness import RunningService

STARTED = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
SMTP_USER, SMTP_PASSWORD = "alerts", "s3cret-密码"
# The vendors refuse a signature whose timestamp is over an hour from their clock.
VENDOR_TOLERANCE_SECONDS = 3600


def firing(unit_paths: tuple[str, ...] = ("north/beijing/chaoyang",)) -> Notification:
    """A red alert firing, as the alerts service would build it."""
    return Notification(
        kind="firing",
        org="acme",
        group_id="grp_1",
        alert_ids=("alr_1",),
        rule_name="CSAT 下滑",
        level="red",
        indicator="csat",
        unit_paths=unit_paths,
        value=58.25,
        bound=70.0,
        sample_size=42,
        period="day",
        started_at=STARTED,
        link="https://ql.example.com/alerts/alr_1",
        occurred_at=STARTED,
    )


@dataclass
class Received:
    """One request a receiver got, and what it answered."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    accepted: bool
    reason: str = ""


@dataclass
class Receivers:
    """What the HTTP receivers expect (their keys and secrets) and what they got."""

    webhook_secret: str = field(default_factory=new_webhook_secret)
    wecom_key: str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    dingtalk_token: str = "1c53e149d8b3f5b3e1e1f5a0b1c2d3e4"
    dingtalk_secret: str = "SEC9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8"
    feishu_token: str = "2a7c3b1e-5d4f-4e6a-9b8c-0d1e2f3a4b5c"
    feishu_secret: str = "feishu-demo-secret"
    slack_token: str = "XXXXXXXXXXXXXXXXXXXXXXXX"
    # Webhook requests to answer 503 (after checking their signature) before accepting: a receiver's outage.
    webhook_outages: int = 0
    received: list[Received] = field(default_factory=list)
    delivered_ids: list[str] = field(default_factory=list)
    base_url: str = ""

    def record(self, request: Request, body: bytes, *, accepted: bool, reason: str = "") -> None:
        """Keep a request for the test to inspect."""
        self.received.append(
            Received(request.url.path, dict(request.query_params), dict(request.headers), body, accepted, reason)
        )

    def last(self, path_start: str) -> Received:
        """The latest request to a path."""
        return [r for r in self.received if r.path.startswith(path_start)][-1]


def recent(timestamp_seconds: float) -> bool:
    """Whether a vendor would accept the timestamp as current."""
    return abs(time.time() - timestamp_seconds) <= VENDOR_TOLERANCE_SECONDS


def dingtalk_documented_sign(timestamp: str, secret: str) -> str:
    """DingTalk's documented signature (before urlencoding): base64 HmacSHA256(secret, "timestamp\\nsecret")."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_documented_sign(timestamp: str, secret: str) -> str:
    """Feishu's documented signature: base64 HmacSHA256 keyed by "timestamp\\nsecret" over nothing."""
    return base64.b64encode(hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


def receiver_app(receivers: Receivers) -> FastAPI:
    """One HTTP server playing a Standard Webhooks receiver, WeCom, DingTalk, Feishu and Slack."""
    app = FastAPI()

    @app.post("/hooks/ql")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        try:
            verify_webhook(receivers.webhook_secret, body, headers)
            # And the reference library, independently of our code.
            Webhook(receivers.webhook_secret).verify(body, headers)
        except (WebhookRejected, WebhookVerificationError) as error:
            receivers.record(request, body, accepted=False, reason=str(error))
            return PlainTextResponse("bad signature", status_code=401)
        if receivers.webhook_outages > 0:
            receivers.webhook_outages -= 1
            receivers.record(request, body, accepted=False, reason="outage")
            return PlainTextResponse("down for maintenance", status_code=503)
        receivers.record(request, body, accepted=True)
        message_id = headers["webhook-id"]
        if message_id not in receivers.delivered_ids:  # the receiver's dedupe on webhook-id
            receivers.delivered_ids.append(message_id)
        return Response(status_code=204)

    @app.post("/slow")
    async def slow(request: Request) -> Response:
        receivers.record(request, await request.body(), accepted=False, reason="slow")
        await asyncio.sleep(2)
        return Response(status_code=204)

    @app.post("/busy")
    async def busy(request: Request) -> Response:
        receivers.record(request, await request.body(), accepted=False, reason="rate limited")
        return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": "120"})

    @app.post("/cgi-bin/webhook/send")
    async def wecom(request: Request) -> JSONResponse:
        body = await request.body()
        if request.query_params.get("key") != receivers.wecom_key:
            return refuse(request, body, {"errcode": 93000, "errmsg": "invalid webhook url"})
        message = await request.json()
        content = message.get("markdown", {}).get("content") if message.get("msgtype") == "markdown" else None
        if not isinstance(content, str) or not content or len(content.encode()) > 4096:
            return refuse(request, body, {"errcode": 40008, "errmsg": "invalid message type"})
        receivers.record(request, body, accepted=True)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @app.post("/robot/send")
    async def dingtalk(request: Request) -> JSONResponse:
        body, query = await request.body(), request.query_params
        if query.get("access_token") != receivers.dingtalk_token:
            return refuse(request, body, {"errcode": 300001, "errmsg": "token is not exist"})
        timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
        signed = timestamp.isdigit() and sign == dingtalk_documented_sign(timestamp, receivers.dingtalk_secret)
        if not signed or not recent(int(timestamp) / 1000):
            return refuse(request, body, {"errcode": 310000, "errmsg": "sign not match"})
        message = await request.json()
        markdown = message.get("markdown", {})
        if message.get("msgtype") != "markdown" or not markdown.get("title") or not markdown.get("text"):
            return refuse(request, body, {"errcode": 40035, "errmsg": "缺少参数 json"})
        receivers.record(request, body, accepted=True)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @app.post("/open-apis/bot/v2/hook/{token}")
    async def feishu(token: str, request: Request) -> JSONResponse:
        body = await request.body()
        if token != receivers.feishu_token:
            return refuse(request, body, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        message = await request.json()
        timestamp, sign = str(message.get("timestamp", "")), message.get("sign", "")
        signed = timestamp.isdigit() and sign == feishu_documented_sign(timestamp, receivers.feishu_secret)
        if not signed or not recent(int(timestamp)):
            return refuse(request, body, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        card = message.get("card", {})
        if message.get("msg_type") != "interactive" or not card.get("header", {}).get("title", {}).get("content"):
            return refuse(request, body, {"code": 19002, "msg": "params error, msg_type need"})
        receivers.record(request, body, accepted=True)
        return JSONResponse({"code": 0, "data": {}, "msg": "success"})

    @app.post("/services/{team}/{bot}/{token}")
    async def slack(team: str, bot: str, token: str, request: Request) -> PlainTextResponse:
        body = await request.body()
        if token != receivers.slack_token:
            receivers.record(request, body, accepted=False, reason="invalid_token")
            return PlainTextResponse("invalid_token", status_code=403)
        message = await request.json()
        if not message.get("text") or not isinstance(message.get("blocks"), list):
            receivers.record(request, body, accepted=False, reason="invalid_payload")
            return PlainTextResponse("invalid_payload", status_code=400)
        receivers.record(request, body, accepted=True)
        return PlainTextResponse("ok")

    def refuse(request: Request, body: bytes, answer: dict[str, Any]) -> JSONResponse:
        """The vendors answer 200 with an error code, not an HTTP error."""
        receivers.record(request, body, accepted=False, reason=str(answer))
        return JSONResponse(answer)

    return app


@pytest.fixture(scope="module")
async def receivers() -> AsyncIterator[Receivers]:
    """The HTTP receivers, served by uvicorn in the test loop on a free port."""
    state = Receivers()
    service = await RunningService(receiver_app(state)).start()
    state.base_url = service.url
    yield state
    await service.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client the delivery job would pass in."""
    async with httpx.AsyncClient() as client:
        yield client


class MailHandler:
    """Keeps every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Accept the message."""
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    """One account, as a mail provider's submission server has."""
    valid = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=valid, handled=False)


@dataclass
class MailServer:
    """An SMTP server on a free port and what it received."""

    port: int
    handler: MailHandler


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) requiring a login, in its own thread."""
    handler = MailHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    yield MailServer(port=port, handler=handler)
    controller.stop()
