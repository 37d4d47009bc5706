"""Rules as the API takes them (a union by kind) and which units a rule watches."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from services.alerts.models import RuleCreate
from services.alerts.pipeline import UnitInfo, applies, fingerprint

RULES: TypeAdapter = TypeAdapter(RuleCreate)


def test_rule_create__a_rule_without_kind_is_a_threshold():
    rule = RULES.validate_python({"name": "CSAT floor", "threshold": 60, "min_samples": 5, "level": "orange"})
    assert (rule.kind, rule.threshold, rule.level, rule.period) == ("threshold", 60, "orange", "all")


def test_rule_create__errors_name_the_kind_and_field():
    with pytest.raises(ValidationError) as caught:
        RULES.validate_python({"name": "x", "kind": "spc", "lambda": 0, "period": "month"})
    fields = {".".join(map(str, e["loc"])) for e in caught.value.errors()}
    assert fields == {"spc.lambda", "spc.period"}


def test_rule_create__rolling_windows_are_not_periods_a_rule_can_watch():
    with pytest.raises(ValidationError, match="period"):
        RULES.validate_python({"name": "x", "threshold": 60, "period": "rolling_7d"})


def test_fingerprint__follows_the_unit_id_not_its_path():
    assert fingerprint("r1", "b-001") == fingerprint("r1", "b-001")
    assert fingerprint("r1", "b-001") != fingerprint("r1", "b-002")
    assert fingerprint("r1", "b-001") != fingerprint("r2", "b-001")


@pytest.mark.parametrize(
    ("rule", "unit", "watched"),
    [
        ({"scope": "*"}, UnitInfo("o", "b-1", "north/b-1", "branch"), True),
        ({"scope": "north"}, UnitInfo("o", "b-1", "south/b-1", "branch"), False),
        ({"scope": "*", "unit_kinds": ["branch"]}, UnitInfo("o", "north", "north", "region"), False),
        ({"scope": "*", "depths": [2]}, UnitInfo("o", "b-1", "north/b-1", "branch"), True),
        ({"scope": "*", "depths": [1]}, UnitInfo("o", "b-1", "north/b-1", "branch"), False),
    ],
)
def test_applies__scope_unit_kinds_and_depths(rule, unit, watched):
    assert applies(rule, unit) is watched
