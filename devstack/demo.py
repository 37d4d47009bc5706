"""`make demo`: an organisation of 1,000 branches, a day of feedback, an incident, and the loop closing.

Run it with `make run` going in another terminal. It creates a new demo organisation (every run its
own, so it can be run again), with its rules, silences, channels, escalation chain, responsibilities
and a risk; starts a local webhook receiver and a local SMTP catcher so that deliveries can be seen;
streams a day of feedback; then makes one branch's service collapse and shows, step by step, the score
dropping, the alert, the notification, the action assigned to the branch's owner, the owner taking it
in hand and finishing it, and, once customers are happy again, the action verified.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

from devstack.processes import free_port
from devstack.simulator import Incident, Organisation, build_organisation, feedback_stream, one_feedback
from shared.auth import ensure_signing_key, issue_token

T = TypeVar("T")
BATCH = 500
WEBHOOK_SECRET = "whsec_" + "ZGVtby13ZWJob29rLXNpZ25pbmcta2V5LTAwMQ=="


class Narrator:
    """Prints what happens, with the seconds since the demo started."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        """One line of the story."""
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", flush=True)


class Inbox:
    """What the local receivers got: webhook bodies and e-mails."""

    def __init__(self) -> None:
        self.webhooks: list[dict[str, Any]] = []
        self.emails: list[str] = []
        self.lock = threading.Lock()


def start_webhook_receiver(inbox: Inbox, narrator: Narrator) -> int:
    """A local HTTP receiver for the demo's webhook channel; the port it listens on."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            signed = all(self.headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {"raw": body.decode(errors="replace")}
            with inbox.lock:
                inbox.webhooks.append(payload)
            data = payload.get("data") or {}
            units = ", ".join(data.get("unit_paths") or [])
            narrator.say(
                f"📨 webhook received: {payload.get('type', '?')} {data.get('rule_name', '')} on {units}"
                f" (signed: {'yes' if signed else 'no'})"
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def start_smtp_catcher(inbox: Inbox, narrator: Narrator) -> int | None:
    """A local SMTP server that keeps what it receives (aiosmtpd, when installed); its port."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        return None

    class Catcher:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            subject = str(message.get("Subject", "(no subject)"))
            with inbox.lock:
                inbox.emails.append(subject)
            narrator.say(f"✉️  e-mail received: {subject}")
            return "250 OK"

    port = free_port()
    Controller(Catcher(), hostname="127.0.0.1", port=port).start()
    return port


class Demo:
    """One run of the demo against a running platform."""

    def __init__(self, gateway: str, org: str, http: httpx.AsyncClient, narrator: Narrator) -> None:
        self.gateway, self.org, self.http, self.say = gateway, org, http, narrator.say
        self.organisation: Organisation = build_organisation()

    async def call(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201, 202, 204)
    ) -> Any:
        """One API call; a refusal stops the demo with the platform's own explanation."""
        response = await self.http.request(method, path, json=body)
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:600]}")
        return response.json() if response.content else None

    async def set_up(self, webhook_port: int, smtp_port: int | None) -> tuple[str, str]:
        """The tree, rules, silences, channels, escalation, responsibilities and a risk; the branch to watch."""
        org = self.organisation
        rows = [unit.as_import_row() for unit in org.units]
        await self.call("POST", "/api/v1/units/import", {"units": rows})
        branches = len(org.branches)
        self.say(f"🏢 organisation {self.org}: {len(org.units):,} units (3 regions, 30 cities, {branches:,} branches)")
        await self.call(
            "PATCH",
            "/api/v1/responsibilities/settings",
            {"default_owner": "zhang.quality", "verification_periods": 1, "verification_window_hours": 24},
        )
        for region in ("north", "east", "south"):
            await self.call("POST", "/api/v1/responsibilities", {"scope": region, "responsible": f"{region}.manager"})
        branch = org.branches[0]
        path = org.paths[branch.id]
        await self.call(
            "POST", "/api/v1/responsibilities", {"scope": path, "responsible": "li.wei", "accountable": "north.manager"}
        )
        rule = await self.call(
            "POST",
            "/api/v1/rules",
            {
                "name": "CSAT 低于 60 / CSAT below 60",
                "kind": "threshold",
                "indicator": "csat",
                "threshold": 60,
                "clear_bound": 65,
                "min_samples": 8,
                "level": "red",
                "unit_kinds": ["branch"],
                "group_depth": 3,
            },
        )
        await self.call(
            "POST",
            "/api/v1/rules",
            {"name": "严重投诉 / serious complaint", "kind": "event", "level": "orange", "unit_kinds": ["branch"]},
            ok=(201, 422),
        )
        await self.call(
            "POST",
            "/api/v1/silences",
            {
                "matchers": {"scope": "south", "levels": ["blue"]},
                "weekly": [{"days": [5, 6], "start": "00:00", "end": "23:59"}],
                "timezone": "Asia/Shanghai",
                "comment": "华南区周末装修 / South region refit at weekends",
            },
            ok=(201, 422),
        )
        channels = [
            {
                "name": "demo webhook",
                "config": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{webhook_port}/hook",
                    "secret": WEBHOOK_SECRET,
                    "language": "zh",
                },
            }
        ]
        if smtp_port:
            channels.append(
                {
                    "name": "demo e-mail",
                    "config": {
                        "type": "email",
                        "host": "127.0.0.1",
                        "port": smtp_port,
                        "security": "none",
                        "sender": "qualityloop@demo.local",
                        "recipients": ["li.wei@demo.local"],
                        "language": "en",
                    },
                }
            )
        for channel in channels:
            await self.call("POST", "/api/v1/channels", channel)
        await self.call(
            "PUT",
            "/api/v1/escalations/red",
            {"level": "red", "steps": [{"wait_minutes": 30, "notify": ["owner_up"]}]},
            ok=(200, 201, 422),
        )
        await self.call(
            "POST",
            "/api/v1/risks",
            {
                "title": "网点系统故障 / branch system outage",
                "scope": "north",
                "likelihood": 3,
                "impact": 4,
                "indicators": ["csat"],
                "rule_ids": [rule["id"]],
                "owner": "north.manager",
                "prevention": ["每日开门前系统自检 / system self-check before opening"],
                "playbook": [
                    {
                        "title": "启用备用终端 / switch to backup terminals",
                        "assignee": "responsible",
                        "due_in_hours": 2,
                    },
                    {
                        "title": "安抚排队客户 / look after waiting customers",
                        "assignee": "accountable",
                        "due_in_hours": 1,
                    },
                ],
            },
        )
        self.say("📐 rules (threshold, event), a weekend silence, webhook and e-mail channels, a red escalation chain,")
        self.say(
            "   responsibilities (regions, the branch's owner li.wei, a default owner) and a risk with its playbook"
        )
        return branch.id, rule["id"]

    async def stream_day(self) -> int:
        """A day of ordinary feedback over the whole tree, in batches, with a progress bar."""
        start = datetime.now(UTC) - timedelta(hours=24)
        bodies = list(feedback_stream(self.organisation, start=start, hours=24, per_hour=100))
        sent = 0
        for offset in range(0, len(bodies), BATCH):
            await self.call(
                "POST", "/api/v1/feedback/batch", {"items": bodies[offset : offset + BATCH]}, ok=(200, 201, 207)
            )
            sent = min(len(bodies), offset + BATCH)
            bar = "█" * int(30 * sent / len(bodies))
            print(f"\r   streaming a day of feedback [{bar:<30}] {sent:,}/{len(bodies):,}", end="", flush=True)
        print(flush=True)
        return sent

    async def incident(self, branch: str, count: int = 12) -> None:
        """The branch's service collapses: unhappy customers, one after another."""
        now = datetime.now(UTC)
        self.organisation.incidents.append(Incident("collapse", self.organisation.paths[branch], now, quality=0.0))
        import random

        rng = random.Random(3)
        for index in range(count):
            body = one_feedback(self.organisation, branch, now + timedelta(seconds=index), rng)
            await self.call("POST", "/api/v1/feedback", body)

    async def recover(self, branch: str, count: int = 40) -> None:
        """The fix works: the branch's customers are happy again."""
        now = datetime.now(UTC)
        self.organisation.incidents.append(Incident("recovery", self.organisation.paths[branch], now, quality=1.0))
        import random

        rng = random.Random(4)
        bodies = [one_feedback(self.organisation, branch, now + timedelta(seconds=i), rng) for i in range(count)]
        await self.call("POST", "/api/v1/feedback/batch", {"items": bodies}, ok=(200, 201, 207))


async def until(what: Callable[[], Awaitable[T | None]], timeout: float = 60) -> T:
    """Poll until ``what`` gives something, or fail saying the demo waited too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await what()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise TimeoutError(f"waited {timeout:.0f} s")


async def run_demo(gateway: str, org: str, data: Path) -> int:
    """The whole story; 0 when the action was verified."""
    narrator = Narrator()
    inbox = Inbox()
    private_key, _ = ensure_signing_key(data / "keys")
    token = issue_token(private_key.read_bytes(), org=org, roles=["admin"], subject="demo")
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        try:
            await http.get("/healthz")
        except httpx.HTTPError:
            print(f"nothing answers at {gateway}: start the platform first with `make run` in another terminal")
            return 2
        demo = Demo(gateway, org, http, narrator)
        webhook_port = start_webhook_receiver(inbox, narrator)
        smtp_port = start_smtp_catcher(inbox, narrator)
        narrator.say(f"local receivers: webhook http://127.0.0.1:{webhook_port}/hook, SMTP 127.0.0.1:{smtp_port}")
        branch, _ = await demo.set_up(webhook_port, smtp_port)
        count = await demo.stream_day()
        narrator.say(f"📊 {count:,} feedback of the last 24 hours taken in")
        narrator.say(f"💥 incident: the service of branch {branch} collapses (a queue, a rude clerk, the system down)")
        await demo.incident(branch)

        async def low_score() -> dict[str, Any] | None:
            score = await demo.call("GET", f"/api/v1/scores/{branch}?period=all", ok=(200, 404))
            csat = (score.get("indicators") or {}).get("csat") or {}
            return score if csat.get("value") is not None and csat["value"] < 60 else None

        score = await until(low_score)
        csat = score["indicators"]["csat"]
        narrator.say(f"📉 score: CSAT of {branch} fell to {csat['value']:.0f}% on {csat['sample_size']} ratings")

        async def firing() -> dict[str, Any] | None:
            page = await demo.call("GET", "/api/v1/alerts?status=firing")
            return next((a for a in page["items"] if a.get("unit_id") == branch), None)

        alert = await until(firing)
        narrator.say(f"🚨 alert {alert['id']} firing: level {alert.get('level')}, rule {alert.get('rule_id')}")
        await until(lambda: _notified(inbox, branch), timeout=60)

        async def assigned() -> dict[str, Any] | None:
            page = await demo.call("GET", f"/api/v1/actions?alert_id={alert['id']}")
            return next((a for a in page["items"] if a.get("assignee")), None)

        action = await until(assigned)
        narrator.say(f"📋 action {action['id']} assigned to {action['assignee']}, due {action.get('due_at')}")
        await demo.call("POST", f"/api/v1/actions/{action['id']}/transitions", {"to": "in_progress"})
        narrator.say("🛠  li.wei takes it in hand (the alert is acknowledged by that)")
        await demo.call(
            "PUT",
            f"/api/v1/actions/{action['id']}/root-cause",
            {"category": "machine", "description": "排队叫号系统故障 / queue ticket system down"},
            ok=(200, 422),
        )
        await demo.call("POST", f"/api/v1/actions/{action['id']}/transitions", {"to": "done", "reason": "系统已修复"})
        narrator.say("✅ the fix is in: action done; now the scores must show it worked")
        await demo.recover(branch)

        async def verified() -> dict[str, Any] | None:
            current = await demo.call("GET", f"/api/v1/actions/{action['id']}")
            return current if current.get("status") == "verified" else None

        await until(verified, timeout=90)
        narrator.say(f"🏁 action {action['id']} verified: the branch's CSAT is back above the rule's clearing bound")
        print(
            f"\nLook around:\n"
            f"  console:   {gateway}/console/\n"
            f"  the alert: {gateway}/api/v1/alerts/{alert['id']}\n"
            f"  the action:{gateway}/api/v1/actions/{action['id']}\n"
            f"  a token:   .venv/bin/qualityloop token --org {org} --role admin\n"
            f"  deliveries seen here: {len(inbox.webhooks)} webhook(s), {len(inbox.emails)} e-mail(s)",
            flush=True,
        )
        return 0


async def _notified(inbox: Inbox, branch: str) -> bool:
    """Whether a webhook named the branch."""
    with inbox.lock:
        return any(branch in json.dumps(body, ensure_ascii=False) for body in inbox.webhooks)


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the demo."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--org", default=f"demo-{datetime.now(UTC):%m%d-%H%M%S}", help="a new organisation's name")
    parser.add_argument("--gateway", default=f"http://127.0.0.1:{os.environ.get('QL_GATEWAY_PORT', '8080')}")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("QL_DATA_DIR", ".data")).resolve()
    try:
        return asyncio.run(run_demo(args.gateway, args.org, data))
    except (RuntimeError, TimeoutError) as error:
        print(f"\nthe demo stopped: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
