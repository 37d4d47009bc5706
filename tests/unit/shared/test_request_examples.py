"""The request examples the OpenAPI documents show are real: each validates as the service will read it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from services.alerts.models import EventRuleCreate, SilenceCreate, ThresholdRuleCreate
from services.alerts.notify.models import ChannelCreate
from services.feedback.models import BatchCreate, FeedbackCreate, UnitCreate
from services.improvement.models import ActionCreate, PlanCreate, ResponsibilityCreate, RiskCreate
from tests.unit.shared.test_openapi_contract import _document

MAIN_REQUESTS: dict[str, list[type[BaseModel]]] = {
    "feedback": [UnitCreate, FeedbackCreate, BatchCreate],
    "alerts": [ThresholdRuleCreate, EventRuleCreate, SilenceCreate, ChannelCreate],
    "improvement": [ResponsibilityCreate, ActionCreate, PlanCreate, RiskCreate],
}
EXAMPLES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (model, example)
    for models in MAIN_REQUESTS.values()
    for model in models
    for example in model.model_json_schema().get("examples", [])
]


def test_every_main_request__has_an_example():
    assert {model for model, _ in EXAMPLES} == {model for models in MAIN_REQUESTS.values() for model in models}


@pytest.mark.parametrize(("model", "example"), EXAMPLES, ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(EXAMPLES)])
def test_each_example__validates_as_the_service_reads_it(model: type[BaseModel], example: dict[str, Any]):
    model.model_validate(example)


@pytest.mark.parametrize("service", MAIN_REQUESTS)
def test_the_openapi_documents__show_the_examples(service: str, public_key):
    schemas = _document(service, public_key)["components"]["schemas"]
    # FastAPI names a schema after its model (with an -Input suffix where reading and writing differ).
    shown = {name.removesuffix("-Input") for name, schema in schemas.items() if schema.get("examples")}
    assert {model.__name__ for model in MAIN_REQUESTS[service]} <= shown
