"""Routing a breach through the responsibility matrix: most specific wins, inheritance, default owner."""

from __future__ import annotations

from services.improvement.domain.routing import Breach, Entry, parent_path, route, route_up

MATRIX = [
    Entry(id="e1-org", scope="*", responsible="quality.head"),
    Entry(id="e2-north", scope="north", responsible="north.manager", accountable="north.director"),
    Entry(id="e3-b1", scope="north/b-1", responsible="b1.manager", accountable="north.manager"),
    Entry(id="e4-b1-nps", scope="north/b-1", responsible="b1.cx", indicators=frozenset({"nps"})),
    Entry(id="e5-b1-red", scope="north/b-1", responsible="b1.head", levels=frozenset({"red"})),
    Entry(
        id="e6-b1-nps-red",
        scope="north/b-1",
        responsible="b1.nps.red",
        indicators=frozenset({"nps"}),
        levels=frozenset({"red"}),
    ),
    Entry(id="e7-north-spc", scope="north", responsible="north.analyst", rule_kinds=frozenset({"spc"})),
    Entry(id="e8-b1-wide", scope="north/b-1", responsible="b1.wide", indicators=frozenset({"csat", "ces", "nps"})),
]


def owner(unit_path: str, indicator: str = "csat", level: str = "yellow", rule_kind: str = "threshold") -> str | None:
    return route(MATRIX, Breach(unit_path, indicator, level, rule_kind)).responsible


def test_route__the_deepest_covering_scope_wins():
    assert owner("north/b-1", indicator="sentiment") == "b1.manager"
    assert owner("north/b-2") == "north.manager"
    assert owner("south/b-9") == "quality.head"


def test_route__a_unit_without_an_entry_inherits_its_nearest_ancestors():
    match = route(MATRIX, Breach("north/b-1/counter-3", "sentiment", "yellow", "threshold"))
    assert match.responsible == "b1.manager"
    assert match.entry is not None and match.entry.id == "e3-b1"
    assert "inherits entry e3-b1 of north/b-1 (1 level(s) up)" in match.reason


def test_route__a_narrowed_entry_beats_a_broad_one_at_the_same_depth():
    assert owner("north/b-1", indicator="nps") == "b1.cx"
    assert owner("north/b-1", level="red", indicator="sentiment") == "b1.head"


def test_route__more_narrowed_dimensions_win():
    assert owner("north/b-1", indicator="nps", level="red") == "b1.nps.red"


def test_route__an_entry_admitting_fewer_values_wins():
    # e8 admits three indicators, e4 only nps: both narrow one dimension.
    assert owner("north/b-1", indicator="ces") == "b1.wide"
    assert owner("north/b-1", indicator="nps") == "b1.cx"


def test_route__a_narrowing_that_does_not_admit_the_breach_is_skipped():
    assert owner("north/b-2", rule_kind="spc") == "north.analyst"
    assert owner("north/b-2", rule_kind="threshold") == "north.manager"


def test_route__depth_beats_narrowing():
    # e7 (north, narrowed to spc) is less deep than e3 (north/b-1, unnarrowed).
    assert owner("north/b-1", indicator="sentiment", rule_kind="spc") == "b1.manager"


def test_route__does_not_mistake_a_name_prefix_for_a_subtree():
    assert route(MATRIX[1:], Breach("northeast/b-1", "csat")).responsible is None


def test_route__falls_back_to_the_default_owner():
    match = route(MATRIX[1:], Breach("south/b-9", "csat"), default_owner="ops.duty")
    assert match.responsible == "ops.duty"
    assert match.entry is None
    assert "default owner" in match.reason


def test_route__without_entry_nor_default_nobody_owns_it():
    match = route([], Breach("south/b-9", "csat"))
    assert not match.routed
    assert "no default owner" in match.reason


def test_route__an_entry_beats_the_default_owner():
    assert route(MATRIX, Breach("south/b-9", "csat"), default_owner="ops.duty").responsible == "quality.head"


def test_route__equal_entries_go_to_the_oldest_whatever_the_order():
    twins = [Entry(id="b", scope="north", responsible="second"), Entry(id="a", scope="north", responsible="first")]
    assert route(twins, Breach("north/b-1")).responsible == "first"
    assert route(list(reversed(twins)), Breach("north/b-1")).responsible == "first"


def test_route__explains_the_match_and_lists_the_candidates():
    match = route(MATRIX, Breach("north/b-1", "nps", "yellow", "threshold"))
    assert (
        match.reason
        == "entry e4-b1-nps is set on north/b-1 itself, indicator nps; the most specific of 5 covering entries"
    )
    assert set(match.candidates) == {"e1-org", "e2-north", "e3-b1", "e4-b1-nps", "e8-b1-wide"}


def test_route__carries_accountable_consulted_and_informed():
    entry = Entry(id="x", scope="a", responsible="r", accountable="acc", consulted=("c",), informed=("i1", "i2"))
    match = route([entry], Breach("a/b"))
    assert (match.accountable, match.consulted, match.informed) == ("acc", ("c",), ("i1", "i2"))


def test_parent_path():
    assert parent_path("north/b-1/c") == "north/b-1"
    assert parent_path("north") is None


def test_route_up__climbs_to_the_first_new_owner_above_the_unit():
    breach = Breach("north/b-1", "csat")
    # The parent north is owned by north.manager, who is the accountable already passed.
    match = route_up(MATRIX, breach, default_owner="ops.duty", passed={"b1.manager", "north.manager"})
    assert match.responsible == "quality.head"
    assert route_up(MATRIX, breach, default_owner=None, passed={"b1.manager"}).responsible == "north.manager"


def test_route_up__ends_at_the_default_owner_then_nobody():
    breach = Breach("north/b-1", "csat")
    assert route_up([], breach, default_owner="ops.duty", passed={"x"}).responsible == "ops.duty"
    assert route_up([], breach, default_owner="ops.duty", passed={"ops.duty"}).responsible is None
