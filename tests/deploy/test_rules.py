"""The alerting rules and the dashboard parse as PromQL and name only metrics that exist: exported by the
services (shared/telemetry.py), derived by the collectors from their configs, or Prometheus' own `up`."""

from typing import Any

import prometheus_client
import promql_parser
import pytest
import yaml

import shared.telemetry  # noqa: F401  (registers the services' metrics)
from deploy.generate import OBSERVABILITY
from tests.deploy.deploy_files import json_file

PROMETHEUS_OWN = {"up"}
# kube-state-metrics (part of every kube-prometheus installation): readiness as Kubernetes sees it, which the
# services cannot export themselves (a service whose /readyz fails still answers /metrics).
KUBE_STATE_METRICS = {"kube_deployment_status_replicas_ready", "kube_deployment_spec_replicas"}
ALERTS = {
    "QualityLoopConsumerLagGrowing",
    "QualityLoopOutboxBacklogGrowing",
    "QualityLoopDeadLetters",
    "QualityLoopServiceNotReady",
    "QualityLoopGatewayErrorRatio",
}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def exported_by_services() -> set[str]:
    """The series names of every metric registered, whether or not it has a sample yet."""
    names = set()
    for metric in prometheus_client.REGISTRY.collect():
        names |= {metric.name + suffix for suffix in SUFFIXES.get(metric.type, ("",))}
    return names


def derived_by_collectors() -> set[str]:
    names = set()
    gateway = yaml.safe_load((OBSERVABILITY / "gateway-collector.yaml").read_text())
    names |= {f"{name.replace('.', '_')}_total" for name in gateway["connectors"]["count"]["logs"]}
    spans = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())["connectors"]["spanmetrics"]
    prefix = spans["namespace"].replace(".", "_")
    names |= {f"{prefix}_calls_total"}
    names |= {f"{prefix}_duration_milliseconds_{suffix}" for suffix in ("bucket", "sum", "count")}
    return names


def metric_names(expression: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(str(node.name))
        for attribute in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, str | int | float):
                visit(child)
        for argument in getattr(node, "args", None) or []:
            visit(argument)

    visit(promql_parser.parse(expression))
    return names


def rules() -> list[dict]:
    groups = yaml.safe_load((OBSERVABILITY / "rules.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json_file(OBSERVABILITY / "grafana" / "qualityloop.json")
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_services_export_the_metrics_the_rules_are_about():
    assert {"qualityloop_consumer_lag", "qualityloop_outbox_backlog", "qualityloop_dead_letters_total"} <= (
        exported_by_services()
    )


def test_the_sre_alerts_are_all_there():
    assert {rule["alert"] for rule in rules()} == ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["runbook"].startswith("docs/operations.md#")


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_rule_names_only_metrics_that_exist(rule):
    known = exported_by_services() | derived_by_collectors() | PROMETHEUS_OWN | KUBE_STATE_METRICS
    named = metric_names(rule["expr"])
    assert named
    assert named - known == set()


@pytest.mark.parametrize("expression", dashboard_expressions())
def test_every_dashboard_panel_names_only_metrics_that_exist(expression):
    known = exported_by_services() | derived_by_collectors() | PROMETHEUS_OWN
    assert metric_names(expression) - known == set()


def test_an_unknown_metric_is_noticed():
    assert metric_names("sum(rate(qualityloop_no_such_metric_total[5m])) > 0") == {"qualityloop_no_such_metric_total"}


def test_runbook_anchors_exist():
    from deploy.generate import OPERATIONS_DOC

    headings = {
        line.lstrip("#").strip().lower().replace(" ", "-")
        for line in OPERATIONS_DOC.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        assert rule["annotations"]["runbook"].split("#", 1)[1] in headings


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_rule_waits_a_valid_duration(rule):
    if "for" in rule:
        assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0
