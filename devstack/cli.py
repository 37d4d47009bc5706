"""The ``qualityloop`` command: run the whole platform locally, serve one service, issue dev tokens."""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from cryptography.fernet import Fernet

from devstack.processes import (
    Child,
    free_port,
    port_in_use,
    start_broker,
    start_database,
    start_gateway,
    wait_until_ready,
)
from devstack.supervisor import GaveUp, Part, Supervisor
from shared.auth import ROLES, ensure_signing_key, issue_token
from shared.tree import WHOLE_ORGANISATION

SERVICES = ("feedback", "scoring", "alerts", "improvement")
DEFAULT_PORTS = {
    "gateway": 8080,
    "broker": 19092,
    "database": 27027,
    "feedback": 8101,
    "scoring": 8102,
    "alerts": 8103,
    "improvement": 8104,
}


def data_dir() -> Path:
    """Where the embedded default keeps its data, keys and logs (``QL_DATA_DIR``, default ./.data)."""
    return Path(os.environ.get("QL_DATA_DIR", ".data")).resolve()


def port_of(part: str) -> int:
    """A part's port, from ``QL_<PART>_PORT`` or the default."""
    return int(os.environ.get(f"QL_{part.upper()}_PORT", DEFAULT_PORTS[part]))


def pseudonym_key(directory: Path) -> str:
    """The embedded default's pseudonymisation key, created once and kept with the data."""
    path = directory / "pseudonym.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def sealing_key(directory: Path) -> str:
    """The embedded default's key that seals channel secrets (a Fernet key), created once with the data."""
    path = directory / "alerts-secret.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def service_environment(data: Path) -> dict[str, str]:
    """The settings every service process gets on the embedded default."""
    _, public_key = ensure_signing_key(data / "keys")
    env = {
        "QL_KAFKA_BOOTSTRAP": f"127.0.0.1:{port_of('broker')}",
        "QL_MONGO_URI": f"mongodb://127.0.0.1:{port_of('database')}/?directConnection=true",
        "QL_AUTH_PUBLIC_KEY_FILE": str(public_key),
        "QL_FEEDBACK_PSEUDONYM_KEY": pseudonym_key(data / "keys"),
        # Not the fixed development key: webhook secrets and SMTP passwords are sealed per installation.
        "QL_ALERTS_SECRET_KEY": sealing_key(data / "keys"),
    }
    env.update({f"QL_{name.upper()}_PORT": str(port_of(name)) for name in SERVICES})
    return env


def run(_: argparse.Namespace) -> int:
    """Start broker, database, the four services and the gateway, keep them running; stop them all on Ctrl-C."""
    busy = [
        f"{part} (port {port_of(part)}, QL_{part.upper()}_PORT)" for part in DEFAULT_PORTS if port_in_use(port_of(part))
    ]
    if busy:
        print(f"already in use: {', '.join(busy)}. Stop what listens there or choose other ports.", flush=True)
        return 2
    data = data_dir()
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **service_environment(data)}
    supervisor = Supervisor(log=lambda line: print(line, flush=True))
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        _start_everything(supervisor, env, data)
        _announce(data)
        while not stopping:
            supervisor.check()
            time.sleep(0.5)
        return 0
    except GaveUp as error:
        print(f"giving up: {error}; see {logs}", flush=True)
        return 1
    except (RuntimeError, TimeoutError) as error:
        print(f"could not start QualityLoop: {error} (logs in {logs})", flush=True)
        return 1
    finally:
        print("stopping…", flush=True)
        # Gateway first (no new requests), then services (they finish their batches), then the servers.
        supervisor.stop_all()
        print("stopped", flush=True)


def _start_everything(supervisor: Supervisor, env: dict[str, str], data: Path) -> None:
    """Start the parts in dependency order under the supervisor, each ready before the next that needs it."""
    logs = data / "logs"
    readiness_port = free_port()
    supervisor.serve_readiness(readiness_port)
    supervisor.start(Part("broker", lambda: start_broker(port_of("broker"), logs / "broker.log")))
    supervisor.start(Part("database", lambda: start_database(port_of("database"), data / "db", logs / "database.log")))
    for name in SERVICES:
        supervisor.start(
            Part(name, functools.partial(_start_service, name, env, logs / f"{name}.log"), wait_until_ready)
        )
    upstreams = {n: port_of(n) for n in SERVICES}
    supervisor.start(
        Part(
            "gateway",
            lambda: start_gateway(port_of("gateway"), upstreams, data / "gateway", readiness_port=readiness_port),
        )
    )


def _start_service(name: str, env: dict[str, str], log_path: Path) -> Child:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.cli", "serve", name],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Child(name, process, port_of(name))


def _announce(data: Path) -> None:
    url = f"http://127.0.0.1:{port_of('gateway')}"
    print(
        f"\nQualityLoop is running.\n"
        f"  gateway:  {url}/  (API under {url}/api/v1/)\n"
        f"  data:     {data}\n"
        f"  logs:     {data / 'logs'}\n"
        f"  a token:  TOKEN=$(.venv/bin/qualityloop token --org demo --role admin)\n"
        f"Press Ctrl-C to stop everything.\n",
        flush=True,
    )


def serve(args: argparse.Namespace) -> int:
    """Run one service (its API and its consumers) in this process."""
    import uvicorn

    from shared.app import create_app
    from shared.settings import PlatformSettings
    from shared.telemetry import setup_logging

    setup_logging(args.service)
    definition = importlib.import_module(f"services.{args.service}.main").DEFINITION
    settings = definition.settings_type()
    app = create_app(definition, PlatformSettings(), settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def token(args: argparse.Namespace) -> int:
    """Print a development bearer token signed with the embedded default's key."""
    private_key, _ = ensure_signing_key(data_dir() / "keys")
    print(
        issue_token(
            private_key.read_bytes(),
            org=args.org,
            roles=args.role,
            scopes=args.scope or [WHOLE_ORGANISATION],
            subject=args.subject,
            ttl_seconds=args.ttl,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qualityloop`` console script."""
    parser = argparse.ArgumentParser(prog="qualityloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole platform on the embedded default").set_defaults(func=run)
    serve_parser = commands.add_parser("serve", help="run one service")
    serve_parser.add_argument("service", choices=SERVICES)
    serve_parser.set_defaults(func=serve)
    token_parser = commands.add_parser("token", help="print a development token")
    token_parser.add_argument("--org", required=True)
    token_parser.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    token_parser.add_argument("--scope", action="append", help="unit path of a subtree (repeatable); default: all")
    token_parser.add_argument("--subject", default="developer")
    token_parser.add_argument("--ttl", type=int, default=12 * 3600, help="seconds the token is valid")
    token_parser.set_defaults(func=token)
    from devstack.console import add_console_command  # here: devstack.console imports this module

    add_console_command(commands)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
