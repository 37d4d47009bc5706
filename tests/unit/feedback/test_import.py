"""Bulk import rules without servers: reading the CSV and placing rows in the tree."""

from __future__ import annotations

import random

import pytest

from services.feedback.domain import NewUnit, Rejected, RowError, place_units, read_unit_csv


def test_read_unit_csv__keeps_non_blank_cells_and_flags_extra_ones() -> None:
    text = "\ufeffid,name,kind,parent_id,external_code\nnorth,华北区,region,,\nb-1, 北京一分行 ,,north,BJ1,surplus\n\n"
    assert read_unit_csv(text.removeprefix("\ufeff")) == [
        {"id": "north", "name": "华北区", "kind": "region"},
        {"id": "b-1", "name": "北京一分行", "parent_id": "north", "external_code": "BJ1", "extra_cells": "surplus"},
    ]


@pytest.mark.parametrize(
    ("header", "reason"),
    [("id,name,colour", "unknown colour"), ("id,kind", "missing name"), ("", "missing id, name")],
)
def test_read_unit_csv__rejects_a_bad_header(header: str, reason: str) -> None:
    with pytest.raises(Rejected) as raised:
        read_unit_csv(f"{header}\na,b,c\n")
    assert raised.value.field == "header"
    assert reason in raised.value.reason


def unit(row: int, unit_id: str, parent_id: str | None = None, code: str | None = None) -> NewUnit:
    return NewUnit(row, unit_id, parent_id, code)


def test_place_units__orders_parents_first_in_any_file_order() -> None:
    units = [unit(1, "c-1", "b-1"), unit(2, "b-1", "north"), unit(3, "north"), unit(4, "b-2", "east")]
    placed, errors = place_units(units, existing={"east": "east"}, taken_codes=(), may_add_roots=True)
    assert errors == []
    paths = [(u.id, path) for u, path in placed]
    assert sorted(paths) == sorted(
        [("north", "north"), ("b-2", "east/b-2"), ("b-1", "north/b-1"), ("c-1", "north/b-1/c-1")]
    )
    order = [u.id for u, _ in placed]
    assert order.index("north") < order.index("b-1") < order.index("c-1")


def test_place_units__places_a_few_thousand_shuffled_rows() -> None:
    units = [unit(0, "root")]
    units += [unit(0, f"r{r}", "root") for r in range(30)]
    units += [unit(0, f"r{r}-b{b}", f"r{r}") for r in range(30) for b in range(100)]
    random.Random(4).shuffle(units)
    units = [NewUnit(row, u.id, u.parent_id) for row, u in enumerate(units, 1)]
    placed, errors = place_units(units, existing={}, taken_codes=(), may_add_roots=True)
    assert errors == []
    assert dict((u.id, p) for u, p in placed)["r7-b42"] == "root/r7/r7-b42"
    assert len(placed) == 3031


def test_place_units__reports_each_bad_row_and_not_those_below_it() -> None:
    units = [
        unit(1, "a", "nowhere"),
        unit(2, "a-child", "a"),
        unit(3, "x", "y"),
        unit(4, "y", "x"),
        unit(5, "z", "z"),
        unit(6, "dup"),
        unit(7, "dup"),
        unit(8, "north"),
        unit(9, "c1", code="K1"),
        unit(10, "c2", code="K1"),
        unit(11, "c3", code="TAKEN"),
        unit(12, "under-x", "x"),
        unit(13, "inactive-child", "closed"),
        NewUnit(14, "bad id", None, ok=False),
        unit(15, "under-bad", "bad id"),
    ]
    placed, errors = place_units(
        units, existing={"north": "north", "closed": None}, taken_codes={"TAKEN"}, may_add_roots=True
    )
    assert [(e.row, e.field) for e in errors] == [
        (1, "parent_id"),
        (3, "parent_id"),
        (4, "parent_id"),
        (5, "parent_id"),
        (7, "id"),
        (8, "id"),
        (10, "external_code"),
        (11, "external_code"),
        (13, "parent_id"),
    ]
    by_row = {e.row: e.reason for e in errors}
    assert by_row[1] == "unit 'nowhere' does not exist"
    assert by_row[3] == "is part of a cycle: x → y → x"
    assert by_row[5] == "is part of a cycle: z → z"
    assert by_row[7] == "duplicate of row 6"
    assert by_row[8] == "unit 'north' already exists"
    assert by_row[10] == "duplicate of row 9"
    assert by_row[13] == "unit 'closed' is deactivated or outside your scopes"
    assert {u.id for u, _ in placed} == {"dup", "c1"}


def test_place_units__refuses_roots_to_a_scoped_caller() -> None:
    _, errors = place_units(
        [unit(1, "r"), unit(2, "b", "north")], existing={"north": "north"}, taken_codes=(), may_add_roots=False
    )
    assert errors == [RowError(1, "parent_id", "only an organisation-wide token may add a root unit")]
