"""Feedback rules in plain Python: unit paths, validation beyond the schema, pseudonyms."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.events import FeedbackKind
from shared.tree import in_subtree

Kind = FeedbackKind


class Rejected(ValueError):
    """Input that breaks a rule; names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def child_path(parent_path: str | None, unit_id: str) -> str:
    """The materialised path of a unit under its parent."""
    return f"{parent_path}/{unit_id}" if parent_path else unit_id


def check_move(unit_path: str, new_parent_path: str | None) -> str:
    """The unit's path under its new parent; moving it under itself or a descendant is rejected."""
    if new_parent_path is not None and in_subtree(new_parent_path, unit_path):
        raise Rejected("parent_id", "a unit cannot move under itself or one of its descendants")
    return child_path(new_parent_path, unit_path.rsplit("/", 1)[-1])


def moved_path(path: str, *, old_root: str, new_root: str) -> str:
    """The path of a unit of a moved subtree, whose root moved from ``old_root`` to ``new_root``."""
    if not in_subtree(path, old_root):
        raise ValueError(f"{path!r} is not inside {old_root!r}")
    return new_root + path[len(old_root) :]


UNIT_CSV_COLUMNS = ("id", "name", "kind", "parent_id", "external_code")
EXTRA_CELLS = "extra_cells"


def read_unit_csv(text: str) -> list[dict[str, str]]:
    """The rows of a unit CSV, each with its non-blank cells; extra cells are kept under ``extra_cells``.

    A header naming an unknown column, or lacking ``id`` or ``name``, is rejected.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [column.strip() for column in reader.fieldnames or ()]
    unknown = [column for column in header if column not in UNIT_CSV_COLUMNS]
    missing = [column for column in ("id", "name") if column not in header]
    if unknown or missing:
        problems = [
            f"unknown {', '.join(unknown)}" if unknown else "",
            f"missing {', '.join(missing)}" if missing else "",
        ]
        raise Rejected("header", f"{'; '.join(p for p in problems if p)}; expected {','.join(UNIT_CSV_COLUMNS)}")
    reader.fieldnames = header
    rows = []
    for row in reader:
        cells = {k: v.strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str) and v.strip()}
        extra = [v for v in row.get(None, ()) if isinstance(v, str) and v.strip()]
        rows.append({**cells, EXTRA_CELLS: ",".join(extra)} if extra else cells)
    return rows


@dataclass(frozen=True)
class RowError:
    """Why one row of an import is refused: its number (the first data row is 1), the field and the reason."""

    row: int
    field: str
    reason: str


@dataclass(frozen=True)
class NewUnit:
    """Where one imported row sits in the tree; ``ok`` is False when the row failed its own checks."""

    row: int
    id: str
    parent_id: str | None
    external_code: str | None = None
    ok: bool = True


def place_units(
    units: Sequence[NewUnit],
    *,
    existing: Mapping[str, str | None],
    taken_codes: Collection[str],
    may_add_roots: bool,
) -> tuple[list[tuple[NewUnit, str]], list[RowError]]:
    """Each unit with its path, parents before children, and the errors that stop the import.

    ``existing`` maps the ids already in the organisation to their path when they may take
    children (None when they may not: deactivated or outside the caller's scopes). Parents may come
    after their children in ``units``. A row below a refused row is not placed, and not reported:
    the refused row is. So the import may go ahead exactly when no error is returned.
    """
    errors: list[RowError] = []
    in_file = {u.id for u in units}
    first_of_id: dict[str, int] = {}
    first_of_code: dict[str, int] = {}
    valid: dict[str, NewUnit] = {}
    for unit in units:
        error = _place_error(unit, existing, taken_codes, may_add_roots, in_file, first_of_id, first_of_code)
        first_of_id.setdefault(unit.id, unit.row)
        if unit.external_code is not None:
            first_of_code.setdefault(unit.external_code, unit.row)
        if error:
            errors.append(RowError(unit.row, *error))
        elif unit.ok:
            valid[unit.id] = unit
    children: dict[str, list[NewUnit]] = defaultdict(list)
    placed: list[tuple[NewUnit, str]] = []
    for unit in valid.values():
        if unit.parent_id is None or unit.parent_id not in in_file:
            placed.append((unit, child_path(existing.get(unit.parent_id) if unit.parent_id else None, unit.id)))
        else:
            children[unit.parent_id].append(unit)
    for parent, parent_path in placed:  # grows while it is read: breadth first from the placed roots
        placed.extend((child, child_path(parent_path, child.id)) for child in children.pop(parent.id, []))
    errors.extend(_cycles(valid, {unit.id for unit, _ in placed}))
    return placed, sorted(errors, key=lambda e: e.row)


def _place_error(
    unit: NewUnit,
    existing: Mapping[str, str | None],
    taken_codes: Collection[str],
    may_add_roots: bool,
    in_file: Collection[str],
    first_of_id: Mapping[str, int],
    first_of_code: Mapping[str, int],
) -> tuple[str, str] | None:
    if unit.id in first_of_id:
        return "id", f"duplicate of row {first_of_id[unit.id]}"
    if unit.id in existing:
        return "id", f"unit {unit.id!r} already exists"
    if unit.external_code is not None and unit.external_code in first_of_code:
        return "external_code", f"duplicate of row {first_of_code[unit.external_code]}"
    if unit.external_code is not None and unit.external_code in taken_codes:
        return "external_code", f"another unit has the code {unit.external_code!r}"
    if unit.parent_id is None and not may_add_roots:
        return "parent_id", "only an organisation-wide token may add a root unit"
    if unit.parent_id is not None and unit.parent_id not in in_file and existing.get(unit.parent_id) is None:
        reason = "is deactivated or outside your scopes" if unit.parent_id in existing else "does not exist"
        return "parent_id", f"unit {unit.parent_id!r} {reason}"
    return None


def _cycles(valid: Mapping[str, NewUnit], placed: Collection[str]) -> list[RowError]:
    """An error for each row of a parent cycle among the rows that could not be placed."""
    errors: list[RowError] = []
    walked: set[str] = set()
    for start in valid:
        chain: list[str] = []
        current: str | None = start
        while current is not None and current in valid and current not in placed and current not in walked:
            walked.add(current)
            chain.append(current)
            current = valid[current].parent_id
        if current is not None and current in chain:
            cycle = chain[chain.index(current) :]
            shown = " → ".join([*cycle, cycle[0]])
            errors.extend(RowError(valid[i].row, "parent_id", f"is part of a cycle: {shown}") for i in cycle)
    return errors


def check_occurred_at(occurred_at: datetime | None, *, now: datetime, max_skew: timedelta) -> datetime:
    """When the feedback happened, in UTC; a time beyond the allowed clock skew is rejected."""
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise Rejected("occurred_at", "must carry a time zone, e.g. 2026-11-25T09:30:00+08:00")
    occurred_at = occurred_at.astimezone(UTC)
    if occurred_at > now + max_skew:
        raise Rejected("occurred_at", f"is in the future (more than {int(max_skew.total_seconds())} s ahead)")
    return occurred_at


def check_comment(comment: str | None, *, max_chars: int) -> str | None:
    """The comment stripped of surrounding blanks; an oversized one is rejected."""
    if comment is None:
        return None
    comment = comment.strip()
    if len(comment) > max_chars:
        raise Rejected("comment", f"has {len(comment)} characters, more than the {max_chars} allowed")
    return comment or None


def check_kind(
    kind: Kind | None,
    *,
    has_scores: bool,
    has_measures: bool,
    has_comment: bool,
    has_complaint: bool,
    has_audit: bool,
) -> Kind:
    """The feedback's kind, inferred when not given; a kind without the part it needs is rejected."""
    if kind is None:
        if has_complaint:
            kind = "complaint"
        elif has_audit:
            kind = "audit"
        elif has_scores:
            kind = "rating"
        elif has_measures:
            kind = "measure"
        else:
            kind = "comment"
    needs: dict[Kind, tuple[bool, str, str]] = {
        "rating": (has_scores, "ratings", "a rating needs at least one of csat, nps, ces, servqual, dimensions"),
        "measure": (has_measures, "ratings.measures", "a measure needs at least one operational measure"),
        "comment": (has_comment, "comment", "a comment needs a non-empty comment"),
        "complaint": (has_complaint, "complaint", "a complaint needs its category and severity"),
        "audit": (has_audit, "audit", "an audit needs its visit date and checklist"),
    }
    present, field, reason = needs[kind]
    if not present:
        raise Rejected(field, reason)
    if has_complaint and kind != "complaint":
        raise Rejected("complaint", f"only a complaint carries one, not a {kind}")
    if has_audit and kind != "audit":
        raise Rejected("audit", f"only an audit carries one, not a {kind}")
    return kind


def pseudonym(key: bytes, org: str, customer_ref: str) -> str:
    """A keyed hash of a customer reference, per organisation: stable, but not reversible without the key."""
    return hmac.new(key, f"{org}\x1f{customer_ref}".encode(), hashlib.sha256).hexdigest()
