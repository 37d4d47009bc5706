"""The bulk import of a unit tree: read the body, check every row, add all of them or none."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.feedback import repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.domain import NewUnit, Rejected, RowError, place_units, read_unit_csv
from services.feedback.models import MAX_IMPORT, UnitCreate, UnitImport
from services.feedback.service.units import commit_tree_change, rejected_problem, stage_new_unit, unit_document
from shared import audit
from shared.auth import Principal
from shared.ids import new_id
from shared.problems import Problem, validation_errors


def read_import(content_type: str, body: bytes) -> list[Any]:
    """The rows of an import body: CSV (``text/csv``, header ``id,name,kind,parent_id,external_code``) or JSON."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "text/csv":
        try:
            return read_unit_csv(body.decode("utf-8-sig"))
        except UnicodeDecodeError as error:
            raise rejected_problem(Rejected("body", "a CSV must be UTF-8")) from error
        except Rejected as error:
            raise rejected_problem(error) from error
    if media_type in ("application/json", ""):
        try:
            return UnitImport.model_validate_json(body).units
        except ValidationError as error:
            raise Problem(
                422, "Invalid request", "the request does not validate", errors=validation_errors(error.errors())
            ) from error
    raise Problem(415, "Unsupported media type", "send application/json or text/csv")


async def import_units(runtime: FeedbackRuntime, *, principal: Principal, rows: Sequence[Any]) -> int:
    """Add a whole tree in one unit of work, or nothing: any bad row answers 422 with every row's errors."""
    if len(rows) > MAX_IMPORT:
        raise rejected_problem(Rejected("units", f"has {len(rows)} rows, more than the {MAX_IMPORT} allowed"))
    errors: list[RowError] = []
    checked: dict[int, UnitCreate] = {}
    for row, raw in enumerate(rows, 1):
        try:
            checked[row] = UnitCreate.model_validate(raw)
        except ValidationError as error:
            errors.extend(RowError(row, e["field"], e["reason"]) for e in validation_errors(error.errors()))
    new = [_tree_row(row, raw, checked.get(row)) for row, raw in enumerate(rows, 1)]
    named = [u for u in new if u is not None]
    existing = await repository.find_units_by(
        runtime.db,
        org=principal.org,
        field_name="id",
        values={u.id for u in named} | {u.parent_id for u in named if u.parent_id},
    )
    taken = await repository.find_units_by(
        runtime.db,
        org=principal.org,
        field_name="external_code",
        values={u.external_code for u in named if u.external_code is not None},
    )
    placed, tree_errors = place_units(
        named,
        existing={
            u["id"]: u["path"] if u["active"] and principal.can_see(u["path"]) else None for u in existing.values()
        },
        taken_codes=taken.keys(),
        may_add_roots=principal.sees_whole_organisation,
    )
    errors = sorted([*errors, *tree_errors], key=lambda e: e.row)
    if errors:
        report = [{"row": e.row, "field": e.field, "reason": e.reason} for e in errors]
        raise Problem(
            422, "Invalid import", f"{len({e.row for e in errors})} rows are invalid; nothing was stored", errors=report
        )
    now = datetime.now(UTC)
    work = runtime.unit_of_work()
    for new_unit, path in placed:
        stage_new_unit(work, unit_document(principal.org, checked[new_unit.row], path, created_at=now))
    # One entry for the import (it may add 20,000 units), naming every unit it added.
    added = {"created": len(placed), "units": [new_unit.id for new_unit, _ in placed]}
    audit.record(work, principal, "import", "unit", new_id("im"), None, added)
    await commit_tree_change(runtime, work, org=principal.org, conflict="a unit of the import was added meanwhile")
    return len(placed)


def _tree_row(row: int, raw: Any, unit_in: UnitCreate | None) -> NewUnit | None:
    """Where a row sits in the tree; a row that failed its checks still names its id, so its children stay put."""
    if unit_in is not None:
        return NewUnit(row, unit_in.id, unit_in.parent_id, unit_in.external_code)
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        parent_id, code = raw.get("parent_id"), raw.get("external_code")
        return NewUnit(
            row,
            raw["id"],
            parent_id if isinstance(parent_id, str) else None,
            code if isinstance(code, str) else None,
            ok=False,
        )
    return None
