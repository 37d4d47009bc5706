"""Keeps the embedded default's parts running: a part that dies is restarted, the rest keep serving.

A part that exits (killed by the kernel's out-of-memory killer, say) is logged and started again
after a backoff (1 s, doubling to 30 s), then its readiness is awaited; meanwhile the gateway's
``/readyz`` names it as down. The supervisor gives up, stopping everything and saying why, only when
one part has died ``GIVE_UP_AFTER`` times within ``GIVE_UP_WINDOW`` seconds: a part that cannot stay
up (a broken setting, a port taken by someone else) should not be restarted for ever.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.processes import Child

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
GIVE_UP_AFTER = 5
GIVE_UP_WINDOW = 300.0


@dataclass
class Part:
    """One supervised process: how to start it and how to know it is ready."""

    name: str
    start: Callable[[], Child]
    wait_ready: Callable[[Child], None] = lambda child: None
    child: Child | None = None
    state: str = "starting"
    restarts: int = 0
    deaths: list[float] = field(default_factory=list)
    next_start: float = 0.0

    def status(self) -> dict[str, Any]:
        """What /readyz says of the part."""
        pid = self.child.process.pid if self.child else None
        return {"state": self.state, "pid": pid, "restarts": self.restarts}


class GaveUp(RuntimeError):
    """A part kept dying: the platform stops."""


class Supervisor:
    """Starts parts in order, restarts the ones that die, and answers /readyz for the gateway."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.parts: list[Part] = []
        self._log = log
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self, part: Part) -> None:
        """Start a part and wait until it is ready (start-up failures are the caller's to report)."""
        self.parts.append(part)
        part.child = part.start()
        part.wait_ready(part.child)
        part.state = "ready"

    def check(self, now: float | None = None) -> None:
        """One round: notice parts that died, restart those whose backoff has passed; GaveUp if one keeps dying."""
        now = time.monotonic() if now is None else now
        for part in self.parts:
            if part.state == "ready" and part.child is not None and part.child.process.poll() is not None:
                self._died(part, now)
            if part.state == "down" and now >= part.next_start:
                self._restart(part)

    def _died(self, part: Part, now: float) -> None:
        assert part.child is not None
        code = part.child.process.returncode
        part.deaths = [t for t in part.deaths if now - t < GIVE_UP_WINDOW] + [now]
        if len(part.deaths) >= GIVE_UP_AFTER:
            raise GaveUp(
                f"{part.name} exited {len(part.deaths)} times within {GIVE_UP_WINDOW:.0f} s (last code {code})"
            )
        backoff = min(FIRST_BACKOFF_SECONDS * 2 ** (len(part.deaths) - 1), MAX_BACKOFF_SECONDS)
        part.state, part.next_start = "down", now + backoff
        self._log(f"{part.name} exited with {code}; restarting it in {backoff:.0f} s")

    def _restart(self, part: Part) -> None:
        part.state = "restarting"
        part.restarts += 1
        try:
            part.child = part.start()
            part.wait_ready(part.child)
        except (RuntimeError, TimeoutError, OSError) as error:
            self._log(f"{part.name} did not come back: {error}")
            if part.child is not None:
                part.child.stop()
            part.state = "ready"  # so that the next check counts it as a death and backs off further
            return
        part.state = "ready"
        self._log(f"{part.name} is back (restart {part.restarts})")

    def stop_all(self) -> None:
        """Stop every part, the last started first."""
        for part in reversed(self.parts):
            if part.child is not None:
                part.child.stop()
        if self._server is not None:
            self._server.shutdown()

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """The platform's readiness: 200 when every part is ready, else 503 naming the parts down."""
        parts = {part.name: part.status() for part in self.parts}
        down = sorted(name for name, status in parts.items() if status["state"] != "ready")
        body = {"status": "not ready" if down else "ready", "down": down, "parts": parts}
        return (503 if down else 200), body

    def serve_readiness(self, port: int) -> None:
        """Answer GET /readyz on 127.0.0.1:port in a thread (the gateway proxies its /readyz here)."""
        supervisor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body = supervisor.readiness()
                payload = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, name="readiness", daemon=True).start()
