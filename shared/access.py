"""Who may call which operation: one table for every service, enforced by create_app for every route.

A row names an operation by its OpenAPI operation id (the endpoint function's name) and the roles that
may call it; views carry no role checks of their own. Subtree and organisation filtering stays in the
services (``Principal.scope_filter``): this table only says which roles get past the door. A route
without a row is logged at start-up, fails ``tests/unit/shared/test_access.py`` and answers only admins.

Regenerate the table in docs/architecture.md after changing it: ``python -m shared.access``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials
from starlette.routing import BaseRoute

from shared.auth import Principal, authenticate, bearer
from shared.problems import Problem

log = logging.getLogger(__name__)

EVERY_SERVICE = "*"


@dataclass(frozen=True)
class Access:
    """The roles that may call an operation, and whether it needs an organisation-wide token."""

    roles: frozenset[str]
    whole_organisation: bool = False
    public: bool = False

    def allows(self, principal: Principal) -> bool:
        """Whether the principal holds one of the roles (and an organisation-wide scope where needed)."""
        if not principal.roles & self.roles:
            return False
        return principal.sees_whole_organisation or not self.whole_organisation

    def describe(self) -> str:
        """The roles as the docs show them."""
        if self.public:
            return "anyone (no token)"
        shown = ", ".join(f"`{role}`" for role in sorted(self.roles, key=ROLE_ORDER.index))
        return shown + (" (organisation-wide token)" if self.whole_organisation else "")


ROLE_ORDER = ["integration", "analyst", "unit_manager", "quality_manager", "admin"]

PUBLIC = Access(frozenset(), public=True)
# `integration` posts feedback and reads back what it submitted (the service checks it is its own);
# managers may post feedback too (entered by hand at a branch).
INTAKE = Access(frozenset({"integration", "unit_manager", "quality_manager", "admin"}))
SUBMITTED = Access(frozenset({"integration", "analyst", "unit_manager", "quality_manager", "admin"}))
READ = Access(frozenset({"analyst", "unit_manager", "quality_manager", "admin"}))
# Working actions and acknowledging alerts, in the caller's subtrees.
WORK = Access(frozenset({"unit_manager", "quality_manager", "admin"}))
# Index systems, rules, silences, channels, responsibilities, plans, risks (the unit tree is the admins').
MANAGE = Access(frozenset({"quality_manager", "admin"}))
MANAGE_ORGANISATION = Access(frozenset({"quality_manager", "admin"}), whole_organisation=True)
ADMIN = Access(frozenset({"admin"}))
# Dead letters and the audit log belong to no one unit: only an organisation-wide admin reads them.
ADMIN_ORGANISATION = Access(frozenset({"admin"}), whole_organisation=True)
# What a route without a row answers to: fail closed, but keep admins working.
UNLISTED = ADMIN

ACCESS: dict[str, dict[str, Access]] = {
    EVERY_SERVICE: {
        # Probes, metrics and the event contract (create_app's own, not in the OpenAPI document).
        "_healthz": PUBLIC,
        "_readyz": PUBLIC,
        "_metrics": PUBLIC,
        "asyncapi_document": PUBLIC,
        "list_dead_letters": ADMIN_ORGANISATION,
        "replay_dead_letter": ADMIN_ORGANISATION,
        "list_audit_entries": ADMIN_ORGANISATION,
        "export_audit_entries": ADMIN_ORGANISATION,
    },
    "feedback": {
        "post_feedback": INTAKE,
        "post_feedback_batch": INTAKE,
        "get_feedback": SUBMITTED,
        "list_feedback": READ,
        "count_feedback": READ,
        "create_unit": ADMIN,
        "import_units": ADMIN,
        "get_unit": READ,
        "list_units": READ,
        "update_unit": ADMIN,
        "deactivate_unit": ADMIN,
        "create_erasure": ADMIN,
    },
    "scoring": {
        "current_index_system": READ,
        "change_index_system": MANAGE_ORGANISATION,
        "current_score": READ,
        "score_series": READ,
        "children_ranking": READ,
        "compare_periods": READ,
    },
    "alerts": {
        "create_rule": MANAGE,
        "list_rules": READ,
        "get_rule": READ,
        "update_rule": MANAGE,
        "disable_rule": MANAGE,
        "enable_rule": MANAGE,
        "delete_rule": MANAGE,
        "try_new_rule": MANAGE,
        "try_saved_rule": MANAGE,
        "list_alerts": READ,
        "count_alerts": READ,
        "get_alert": READ,
        "acknowledge_alert": WORK,
        "resolve_alert": WORK,
        "create_silence": MANAGE,
        "list_silences": READ,
        "get_silence": READ,
        "expire_silence": MANAGE,
        "create_channel": MANAGE,
        "list_channels": READ,
        "get_channel": READ,
        "update_channel": MANAGE,
        "delete_channel": MANAGE,
        "test_channel": MANAGE,
        "get_policy": READ,
        "put_policy": MANAGE_ORGANISATION,
        "list_chains": READ,
        "get_chain": READ,
        "put_chain": MANAGE_ORGANISATION,
        "delete_chain": MANAGE_ORGANISATION,
    },
    "improvement": {
        "create_responsibility": MANAGE,
        "list_responsibilities": READ,
        "get_owner": READ,
        "get_settings": READ,
        "update_settings": MANAGE_ORGANISATION,
        "get_responsibility": READ,
        "update_responsibility": MANAGE,
        "delete_responsibility": MANAGE,
        "create_action": WORK,
        "list_actions": READ,
        "get_figures": READ,
        "get_action": READ,
        "update_action": WORK,
        "transition_action": WORK,
        "comment_action": WORK,
        "set_root_cause": WORK,
        "set_measures": WORK,
        "set_follow_up": WORK,
        "attach": WORK,
        "reassign": WORK,
        "create_plan": MANAGE,
        "list_plans": READ,
        "get_plan": READ,
        "update_plan": MANAGE,
        "delete_plan": MANAGE,
        "move_plan": MANAGE,
        "create_risk": MANAGE,
        "list_risks": READ,
        "risk_matrix": READ,
        "get_risk": READ,
        "update_risk": MANAGE,
        "delete_risk": MANAGE,
        "list_firings": READ,
    },
}


def access_row(service: str, operation_id: str) -> Access | None:
    """The row of an operation: the service's own, else one every service shares."""
    return ACCESS.get(service, {}).get(operation_id) or ACCESS[EVERY_SERVICE].get(operation_id)


def operation_id(route: APIRoute) -> str:
    """The operation id FastAPI gives a route (``generate_unique_id_function``): its endpoint's name."""
    return route.name


def operation_of(route: RouteContext) -> str:
    """A route's operation id as its OpenAPI document shows it (an explicit ``operation_id`` wins)."""
    return str(route.operation_id or route.unique_id)


def api_routes(routes: Sequence[BaseRoute]) -> list[RouteContext]:
    """An app's API routes as served (included routers flattened, with the app's operation ids)."""
    return [context for context in iter_route_contexts(routes) if isinstance(context.original_route, APIRoute)]


def resolve_access(service: str, routes: Sequence[BaseRoute]) -> dict[int, Access]:
    """Each API route's row by the route object's id (routes are unhashable); routes without one answer only admins."""
    resolved: dict[int, Access] = {}
    for route in api_routes(routes):
        # A route left out of the OpenAPI document still needs its row: hiding it must not open it.
        row = access_row(service, operation_of(route))
        if row is None:
            log.error(
                "operation without a row in shared/access.py: only admins may call it",
                extra={"service": service, "operation": operation_of(route), "path": route.path_format},
            )
            row = UNLISTED
        resolved[id(route.original_route)] = row
    return resolved


def unlisted_operations(service: str, routes: Sequence[BaseRoute]) -> list[str]:
    """The operation ids of a service's routes (documented or not) that have no row."""
    return [operation_of(route) for route in api_routes(routes) if access_row(service, operation_of(route)) is None]


async def enforce_access(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """App-wide dependency: the caller's token and roles must allow the matched route's operation."""
    table: Mapping[int, Access] = request.app.state.access
    # The matched route as FastAPI puts it in the scope: the original route object of the router.
    access = table.get(id(request.scope.get("route")), UNLISTED)
    if access.public:
        return
    principal = await authenticate(request, credentials)
    if not access.allows(principal):
        if principal.roles & access.roles:
            raise Problem(403, "Forbidden", "this needs an organisation-wide token (scope `*`)")
        raise Problem(403, "Forbidden", f"this needs one of the roles: {', '.join(sorted(access.roles))}")


def render_table(services: Mapping[str, Sequence[BaseRoute]]) -> str:
    """The access table as markdown, one row per operation of each service (their routes given)."""
    lines = [
        "| service | operation | method and path | who may call it |",
        "|---|---|---|---|",
    ]
    for service, routes in services.items():
        for route in sorted(api_routes(routes), key=lambda r: (r.path_format, sorted(r.methods or ()))):
            if not route.include_in_schema:
                continue
            row = access_row(service, operation_of(route))
            who = row.describe() if row else "**no row: admins only**"
            methods = "/".join(sorted(route.methods or ()))
            lines.append(f"| {service} | `{operation_of(route)}` | `{methods} {route.path_format}` | {who} |")
    return "\n".join(lines) + "\n"


DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
BEGIN, END = "<!-- access table: generated by `python -m shared.access` -->", "<!-- end of access table -->"


def with_table(document: str, table: str) -> str:
    """The document with its generated access section replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(document):
        raise ValueError(f"the document has no section between {BEGIN!r} and {END!r}")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", document)


def service_routes() -> dict[str, list[BaseRoute]]:
    """Every service's routes as its app serves them (the shared dead-letter and audit routes included)."""
    from devstack.cli import SERVICES
    from shared.app import service_app_routes

    return {service: service_app_routes(service) for service in SERVICES}


def main() -> int:
    """Rewrite the access table in docs/architecture.md (only its section; the rest is left as it is)."""
    document = DOC.read_text()
    updated = with_table(document, render_table(service_routes()))
    if updated != document:
        # Written beside and renamed: others edit this file too, and a half-written copy must never be seen.
        staged = DOC.with_suffix(".md.tmp")
        staged.write_text(updated)
        staged.replace(DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
