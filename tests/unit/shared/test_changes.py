"""Every PATCH body refuses a null for a field its object cannot go without, and takes it where it can."""

import pytest
from pydantic import ValidationError

from services.alerts.notify.models import ChannelUpdate
from services.feedback.models import UnitUpdate
from services.improvement.models import ActionUpdate, OrgSettingsUpdate, PlanUpdate, ResponsibilityUpdate, RiskUpdate
from shared.contract import Changes

UPDATES: list[type[Changes]] = [
    UnitUpdate,
    ChannelUpdate,
    ResponsibilityUpdate,
    OrgSettingsUpdate,
    ActionUpdate,
    PlanUpdate,
    RiskUpdate,
]
FIELDS = [(model, name) for model in UPDATES for name in model.model_fields]


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=[f"{m.__name__}.{n}" for m, n in FIELDS])
def test_a_null__is_refused_unless_the_field_may_be_removed(model: type[Changes], name: str):
    if name in model.removable:
        assert getattr(model.model_validate({name: None}), name) is None
    else:
        with pytest.raises(ValidationError, match=f"{name}\n  Value error, may be changed but not removed"):
            model.model_validate({name: None})


@pytest.mark.parametrize("model", UPDATES)
def test_removable_names_only_fields_of_the_model(model: type[Changes]):
    assert model.removable <= set(model.model_fields)


def test_fields_left_out__are_not_changes_and_unknown_ones_are_refused():
    assert RiskUpdate.model_validate({}).model_dump(exclude_unset=True) == {}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        RiskUpdate.model_validate({"titel": "typo"})
