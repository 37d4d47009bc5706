"""Use cases of the unit tree: add, change, move and deactivate units, and read them."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from services.feedback import repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.domain import Rejected, check_move, child_path, moved_path
from services.feedback.models import UnitCreate, UnitUpdate
from services.feedback.unit_cache import UNIT_CACHE
from shared import audit
from shared.auth import Principal
from shared.events import UnitChange, UnitChanged
from shared.ids import new_id
from shared.problems import NotFound, Problem
from shared.storage import Document, UnitOfWork
from shared.tree import lineage


def rejected_problem(error: Rejected) -> Problem:
    """The 422 answer to input that breaks a rule, naming its field."""
    return Problem(422, "Invalid request", error.reason, errors=[{"field": error.field, "reason": error.reason}])


async def get_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_id: str) -> Document:
    """One unit inside the caller's scopes, or 404."""
    unit = await repository.get_unit(runtime.db, org=principal.org, unit_id=unit_id)
    if unit is None or not principal.can_see(unit["path"]):
        raise NotFound("unit", unit_id)
    return unit


async def list_units(
    runtime: FeedbackRuntime, *, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[Document], str | None]:
    """A page of the units the caller may see, newest first, and the next cursor."""
    return await repository.list_units(runtime.db, principal=principal, cursor=cursor, limit=limit)


async def create_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_in: UnitCreate) -> Document:
    """Add a unit under its parent (or as a root) and tell the other services."""
    path = child_path(await _parent_path(runtime, principal=principal, parent_id=unit_in.parent_id), unit_in.id)
    unit = unit_document(principal.org, unit_in, path, created_at=datetime.now(UTC))
    work = runtime.unit_of_work()
    stage_new_unit(work, unit)
    audit.record(work, principal, "create", "unit", unit["id"], None, repository.unit_read(unit))
    await commit_tree_change(
        runtime, work, org=principal.org, conflict=f"a unit with id {unit_in.id!r} or that external code exists"
    )
    return unit


def unit_document(org: str, unit_in: UnitCreate, path: str, *, created_at: datetime) -> Document:
    """A new unit as stored, at ``path``."""
    # A time-sortable string id, as for feedback: the unit list's cursor pages over it.
    return {
        "_id": new_id("un"),
        **unit_in.model_dump(),
        "org": org,
        "path": path,
        "lineage": lineage(path),
        "active": True,
        "created_at": created_at,
    }


def stage_new_unit(work: UnitOfWork, unit: Document) -> None:
    """Stage a new unit and its ``unit.changed`` event."""
    repository.create_unit(work, unit)
    work.publish(_unit_changed(unit, "created"))


async def update_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_id: str, unit_in: UnitUpdate) -> Document:
    """Change a unit's name, kind or external code, or move it with its subtree; only sent fields change."""
    unit = await get_unit(runtime, principal=principal, unit_id=unit_id)
    changes = {k: v for k, v in unit_in.model_dump(exclude_unset=True).items() if v != unit.get(k)}
    if not changes:
        return unit
    work = runtime.unit_of_work()
    after = {**unit, **changes}
    if "parent_id" in changes:
        after = await _stage_move(runtime, work, principal=principal, unit=unit, changes=changes)
    else:
        repository.update_unit(work, org=principal.org, unit_id=unit_id, changes=changes)
        if changes.keys() & {"name", "kind"}:
            work.publish(_unit_changed(after, "renamed"))
    # A move is recorded on the unit moved; its subtree follows it (their unit.changed events say so).
    action = "move" if "parent_id" in changes else "update"
    audit.record(work, principal, action, "unit", unit_id, repository.unit_read(unit), repository.unit_read(after))
    await commit_tree_change(runtime, work, org=principal.org, conflict="another unit has that external code")
    return await get_unit(runtime, principal=principal, unit_id=unit_id)


async def _stage_move(
    runtime: FeedbackRuntime, work: UnitOfWork, *, principal: Principal, unit: Document, changes: Document
) -> Document:
    """Stage the move of a unit's subtree: every unit's path and lineage, and its stored feedback's; the unit after."""
    parent_path = await _parent_path(runtime, principal=principal, parent_id=changes["parent_id"])
    try:
        new_root = check_move(unit["path"], parent_path)
    except Rejected as error:
        raise rejected_problem(error) from error
    moved = unit
    for member in await repository.get_subtree(runtime.db, org=principal.org, unit_path=unit["path"]):
        path = moved_path(member["path"], old_root=unit["path"], new_root=new_root)
        fields = {**(changes if member["id"] == unit["id"] else {}), "path": path, "lineage": lineage(path)}
        repository.update_unit(work, org=principal.org, unit_id=member["id"], changes=fields)
        repository.move_unit_feedback(work, unit=member, new_path=path, new_lineage=fields["lineage"])
        work.publish(_unit_changed({**member, **fields}, "moved", previous_path=member["path"]))
        if member["id"] == unit["id"]:
            moved = {**member, **fields}
    return moved


async def deactivate_unit(runtime: FeedbackRuntime, *, principal: Principal, unit_id: str) -> Document:
    """Mark a unit inactive, so that it takes no more feedback, and tell the other services."""
    unit = await get_unit(runtime, principal=principal, unit_id=unit_id)
    if unit["active"]:
        work = runtime.unit_of_work()
        after = {**unit, "active": False}
        repository.update_unit(work, org=principal.org, unit_id=unit_id, changes={"active": False})
        work.publish(_unit_changed(after, "deactivated"))
        before = repository.unit_read(unit)
        audit.record(work, principal, "deactivate", "unit", unit_id, before, repository.unit_read(after))
        await commit_tree_change(runtime, work, org=principal.org, conflict="the unit changed meanwhile")
    return await get_unit(runtime, principal=principal, unit_id=unit_id)


async def _parent_path(runtime: FeedbackRuntime, *, principal: Principal, parent_id: str | None) -> str | None:
    """The path of a unit's new parent (None for a root), which must be visible and active."""
    if parent_id is None:
        if not principal.sees_whole_organisation:
            raise Problem(403, "Forbidden", "only an organisation-wide token may make a root unit")
        return None
    parent = await repository.get_unit(runtime.db, org=principal.org, unit_id=parent_id)
    if parent is None or not principal.can_see(parent["path"]):
        raise rejected_problem(Rejected("parent_id", f"no unit {parent_id!r}"))
    if not parent["active"]:
        raise rejected_problem(Rejected("parent_id", f"unit {parent_id!r} is deactivated"))
    path: str = parent["path"]
    return path


def _unit_changed(unit: Document, change: UnitChange, previous_path: str | None = None) -> UnitChanged:
    return UnitChanged(
        org=unit["org"],
        unit_id=unit["id"],
        unit_path=unit["path"],
        change=change,
        name=unit["name"],
        kind=unit["kind"],
        parent_id=unit["parent_id"],
        previous_path=previous_path,
        active=unit["active"],
    )


async def commit_tree_change(runtime: FeedbackRuntime, work: UnitOfWork, *, org: str, conflict: str) -> None:
    """Commit a change of the unit tree, then drop the organisation's cached units so intake sees it at once.

    Other processes see it when their cache entries expire (``UnitCache`` ttl).
    """
    try:
        await runtime.commit(work)
    except DuplicateKeyError as error:
        raise Problem(409, "Conflict", conflict) from error
    UNIT_CACHE.forget(runtime.db.name, org)
