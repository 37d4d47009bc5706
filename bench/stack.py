"""The processes a bench run starts, every one on a free loopback port, and their clean stop."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.processes import (
    ROOT,
    ROUTES,
    Child,
    free_port,
    start_broker,
    start_database,
    start_gateway,
    wait_for_port,
)
from shared.auth import ensure_signing_key, issue_token

SERVICES = ("feedback", "scoring", "alerts", "improvement")
GROUP_PREFIX = "bench"


@dataclass
class Processes:
    """Every child the run started; stopped in reverse order of start, whatever happens."""

    children: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> Child:
        """Track a started child."""
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        """Stop one child now."""
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each running child (with its direct children, e.g. nginx's worker) has used so far."""
        return {c.name: cpu_seconds(c.process.pid) for c in self.children if c.process.poll() is None}

    def stop_all(self) -> None:
        """Stop every child still running, newest first."""
        while self.children:
            child = self.children.pop()
            try:
                child.stop()
            except Exception as error:  # keep stopping the others
                print(f"bench: could not stop {child.name}: {error!r}", file=sys.stderr)


@dataclass
class Servers:
    """Broker, database and signing keys of the run."""

    workdir: Path
    broker: Child
    database: Child
    private_key: Path
    public_key: Path

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap address."""
        return f"127.0.0.1:{self.broker.port}"

    @property
    def mongo_uri(self) -> str:
        """MongoDB connection string."""
        return f"mongodb://127.0.0.1:{self.database.port}/?directConnection=true"

    def token(self, org: str) -> str:
        """An admin bearer token for an organisation."""
        return issue_token(self.private_key.read_bytes(), org=org, roles=["admin"], subject="bench")


def start_servers(workdir: Path, processes: Processes) -> Servers:
    """Start the broker and the database (on disk under workdir) and create the signing keys."""
    logs = workdir / "logs"
    broker = processes.add(start_broker(free_port(), logs / "broker.log"))
    database = processes.add(start_database(free_port(), workdir / "db", logs / "database.log"))
    private_key, public_key = ensure_signing_key(workdir / "keys")
    return Servers(workdir, broker, database, private_key, public_key)


def _spawn_python(name: str, args: list[str], port: int, env: dict[str, str], log_path: Path) -> Child:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Child(name, process, port)


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QL_", "OTEL_EXPORTER_OTLP"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def start_bare_app(workdir: Path, processes: Processes) -> Child:
    """The bare FastAPI app of bench.bare on one uvicorn worker, in its own process."""
    port = free_port()
    child = _spawn_python(
        "bare-app",
        [
            "-m",
            "uvicorn",
            "bench.bare:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        port,
        _base_env(),
        workdir / "logs" / "bare-app.log",
    )
    processes.add(child)
    wait_for_port(port, process=child.process)
    return child


def start_bench_gateway(upstreams: dict[str, int], runtime_dir: Path, processes: Processes) -> Child:
    """nginx with the platform's own gateway config in front of the given upstream ports."""
    return processes.add(start_gateway(free_port(), upstreams, runtime_dir))


def bare_upstreams(port: int) -> dict[str, int]:
    """Every gateway upstream pointed at one port."""
    return dict.fromkeys(ROUTES, port)


def database_name(service: str) -> str:
    """The database a bench run gives a service."""
    return f"bench_{service}"


def group_id(service: str) -> str:
    """The consumer group of a service in a bench run."""
    return f"{GROUP_PREFIX}-{service}"


def service_environment(servers: Servers, ports: dict[str, int]) -> dict[str, str]:
    """What `qualityloop serve <name>` needs, pointed at this run's servers."""
    env = _base_env()
    env.update(
        {
            "QL_KAFKA_BOOTSTRAP": servers.bootstrap,
            "QL_MONGO_URI": servers.mongo_uri,
            "QL_AUTH_PUBLIC_KEY_FILE": str(servers.public_key),
            "QL_FEEDBACK_PSEUDONYM_KEY": secrets.token_hex(32),
            "QL_CONSUMER_GROUP_PREFIX": GROUP_PREFIX,
            # One low feedback on a fresh unit must be enough to breach (the latency figure needs it).
            "QL_SCORING_MIN_SAMPLES": "1",
            "QL_DATA_DIR": str(servers.workdir),
        }
    )
    for name in SERVICES:
        env[f"QL_{name.upper()}_PORT"] = str(ports[name])
        env[f"QL_{name.upper()}_DATABASE"] = database_name(name)
    return env


async def start_services(servers: Servers, processes: Processes, *, timeout: float = 120) -> dict[str, Child]:
    """The four services, each `python -m devstack.cli serve <name>` in its own process, once ready."""
    ports = {name: free_port() for name in SERVICES}
    env = service_environment(servers, ports)
    children: dict[str, Child] = {}
    for name in SERVICES:
        children[name] = processes.add(
            _spawn_python(
                name, ["-m", "devstack.cli", "serve", name], ports[name], env, servers.workdir / "logs" / f"{name}.log"
            )
        )
    async with httpx.AsyncClient(timeout=2) as http:
        await asyncio.gather(*(_wait_ready(http, child, timeout) for child in children.values()))
    return children


async def _wait_ready(http: httpx.AsyncClient, child: Child, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"service {child.name} exited with {child.process.returncode}; see its log")
        try:
            if (await http.get(f"http://127.0.0.1:{child.port}/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"service {child.name} was not ready after {timeout} s")


def _own_cpu_seconds(pid: int) -> tuple[float, int]:
    """utime + stime of a process in seconds, and its parent pid (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[1])


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its direct children (0 where /proc cannot tell)."""
    try:
        total, _ = _own_cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            seconds, parent = _own_cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            total += seconds
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have been busy since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores each child kept busy between two CPU snapshots."""
    return {name: round((after[name] - before.get(name, 0.0)) / seconds, 2) for name in after if seconds > 0}


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
