"""A small HTTP/1.1 keep-alive load generator, run in its own process so it never shares a loop with a server.

``python -m bench.loadgen --port P --path /api/v1/feedback --bodies bodies.json`` posts the bodies in turn
from ``--concurrency`` connections for ``--warmup`` + ``--duration`` seconds (or until ``--max-requests``)
and prints one JSON object: counts by status, the rate over the measured window and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Tally:
    """What the workers saw; only responses that finish inside the window count towards the rate."""

    window_start: float
    window_end: float
    max_requests: int | None
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    total_statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    first_error_body: str = ""

    def more(self) -> bool:
        """Whether another request should be sent."""
        if self.max_requests is not None and self.sent >= self.max_requests:
            return False
        return time.perf_counter() < self.window_end


def build_requests(path: str, port: int, bodies: list[Any], headers: list[str]) -> list[bytes]:
    """The raw requests, one per body."""
    extra = "".join(f"{h}\r\n" for h in headers)
    requests = []
    for body in bodies:
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n"
        )
        requests.append(head.encode() + payload)
    return requests


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Read one response: its status, whether the connection stays open, and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep_alive = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, keep_alive, b"".join(parts)
    return status, keep_alive, (await reader.readexactly(length) if length else b"")


async def worker(host: str, port: int, requests: list[bytes], offset: int, tally: Tally) -> None:
    """One connection posting requests back to back until the window closes."""
    index = offset
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while tally.more():
            if writer is None or reader is None:
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError as error:
                    tally.errors[type(error).__name__] += 1
                    await asyncio.sleep(0.05)
                    continue
            tally.sent += 1
            request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                status, keep_alive, body = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
                tally.errors[type(error).__name__] += 1
                writer.close()
                writer = reader = None
                continue
            finished = time.perf_counter()
            tally.total_statuses[status] += 1
            if status >= 400 and not tally.first_error_body:
                tally.first_error_body = body[:500].decode(errors="replace")
            if tally.window_start <= finished < tally.window_end:
                tally.statuses[status] += 1
                tally.latencies.append(finished - started)
            if not keep_alive:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def run(args: argparse.Namespace, requests: list[bytes]) -> dict[str, Any]:
    """Run the load and summarise it."""
    now = time.perf_counter()
    cpu_started = time.process_time()
    tally = Tally(now + args.warmup, now + args.warmup + args.duration, args.max_requests)
    await asyncio.gather(*(worker(args.host, args.port, requests, i, tally) for i in range(args.concurrency)))
    ended = min(time.perf_counter(), tally.window_end)
    window = max(1e-9, ended - tally.window_start)
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    return {
        "concurrency": args.concurrency,
        "window_seconds": window,
        "ok": ok,
        "rate": ok / window,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "total_statuses": {str(k): v for k, v in sorted(tally.total_statuses.items())},
        "total_ok": sum(n for status, n in tally.total_statuses.items() if 200 <= status < 300),
        "errors": dict(tally.errors),
        "first_error_body": tally.first_error_body,
        "p50_ms": _ms(percentile(tally.latencies, 0.50)),
        "p99_ms": _ms(percentile(tally.latencies, 0.99)),
        "max_ms": _ms(max(tally.latencies) if tally.latencies else None),
        "cpu_seconds": time.process_time() - cpu_started,
        "wall_seconds": time.perf_counter() - now,
    }


def _run_loop(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def spawn(
    *,
    port: int,
    path: str,
    bodies: list[Any],
    headers: list[str],
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> dict[str, Any]:
    """Run the load generator in a child process and return its summary (the child is killed if cancelled)."""
    bodies_file = _write_bodies(workdir, bodies)
    args = ["-m", "bench.loadgen", "--port", str(port), "--path", path, "--bodies", str(bodies_file)]
    args += ["--concurrency", str(concurrency), "--duration", str(duration), "--warmup", str(warmup)]
    for header in headers:
        args += ["--header", header]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}): {stderr.decode(errors='replace')[-2000:]}")
    summary: dict[str, Any] = json.loads(stdout)
    return summary


def _write_bodies(workdir: Path, bodies: list[Any]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"bodies-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(bodies))
    return path


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the load on uvloop when available, print the summary as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--bodies", required=True, help="JSON file with a list of bodies, posted in turn")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    parser.add_argument("--max-requests", type=int, default=None)
    args = parser.parse_args(argv)
    bodies = json.loads(Path(args.bodies).read_text())
    result = _run_loop(run(args, build_requests(args.path, args.port, bodies, args.header)))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
