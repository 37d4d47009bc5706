"""``qualityloop console``: a sign-in URL for the quality console with a development token of a chosen role."""

from __future__ import annotations

import argparse
from typing import Any

from devstack.cli import data_dir, port_of
from shared.auth import ROLES, ensure_signing_key, issue_token
from shared.tree import WHOLE_ORGANISATION


def sign_in_url(gateway: str, token: str) -> str:
    """The console's address carrying the token in the fragment (never sent to a server; the page removes it)."""
    return f"{gateway.rstrip('/')}/console/#token={token}"


def console(args: argparse.Namespace) -> int:
    """Print a sign-in URL for the console on the embedded default's gateway."""
    private_key, _ = ensure_signing_key(data_dir() / "keys")
    token = issue_token(
        private_key.read_bytes(),
        org=args.org,
        roles=args.role,
        scopes=args.scope or [WHOLE_ORGANISATION],
        subject=args.subject,
        ttl_seconds=args.ttl,
    )
    print(sign_in_url(args.gateway or f"http://127.0.0.1:{port_of('gateway')}", token))
    return 0


def add_console_command(commands: Any) -> None:
    """Register ``console`` on the ``qualityloop`` command's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "console", help="print a sign-in URL for the quality console with a development token"
    )
    parser.add_argument("--org", required=True)
    parser.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    parser.add_argument("--scope", action="append", help="unit path of a subtree (repeatable); default: all")
    parser.add_argument("--subject", default="developer", help="who the token names (shown in histories)")
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="seconds the token is valid")
    parser.add_argument("--gateway", help="the gateway's URL; default http://127.0.0.1:$QL_GATEWAY_PORT")
    parser.set_defaults(func=console)
