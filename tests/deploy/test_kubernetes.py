"""Every manifest of each overlay, rendered by kustomize, is valid Kubernetes (or KEDA / Prometheus-operator)
and has the shape production needs: probes, resources, disruption budgets, network policies, TLS."""

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from deploy.generate import SERVICES, topic_plan
from tests.deploy.deploy_files import OVERLAYS, crd_schema, manifests, rendered

CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_validates_against_its_schema(overlay):
    problems = []
    for manifest in rendered(overlay):
        crd = CRDS.get((manifest["apiVersion"], manifest["kind"]))
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            if crd:
                jsonschema.validate(manifest, crd_schema(crd))
            else:
                kubernetes_validate.validate(manifest, latest_version(), strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as error:
            problems.append(f"{name}: {error.message}")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_are_checked_too(overlay):
    kinds = {m["kind"] for m in rendered(overlay)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    assert ("ScaledObject" in kinds) == (overlay == "prod")


def test_a_misspelt_field_in_a_custom_resource_is_refused():
    scaled = dict(next(iter(manifests("prod", "ScaledObject").values())))
    scaled["spec"] = {**scaled["spec"], "maxReplicas": 3}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, crd_schema(CRDS[("keda.sh/v1alpha1", "ScaledObject")]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_have_probes_resources_and_two_instances(overlay):
    deployments = manifests(overlay, "Deployment")
    images = set()
    for service in SERVICES:
        spec = deployments[service]["spec"]
        assert spec["replicas"] >= 2
        container = spec["template"]["spec"]["containers"][0]
        images.add(container["image"])
        assert container["command"] == ["qualityloop", "serve", service]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert len(images) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_and_statefulset_has_a_disruption_budget(overlay):
    budgets = manifests(overlay, "PodDisruptionBudget").values()
    selected = [budget["spec"]["selector"]["matchLabels"] for budget in budgets]
    workloads = {**manifests(overlay, "Deployment"), **manifests(overlay, "StatefulSet")}
    for name, workload in workloads.items():
        if workload["spec"].get("replicas", 1) < 2:
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in selected), name


def _allowed_sources(overlay: str, role: str) -> list[dict]:
    peers = []
    for policy in manifests(overlay, "NetworkPolicy").values():
        if policy["spec"]["podSelector"].get("matchLabels") == {"qualityloop.io/role": role}:
            for rule in policy["spec"].get("ingress", []):
                peers += rule["from"]
    return peers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_reaches_the_apis_and_only_services_reach_the_data(overlay):
    policies = manifests(overlay, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    api_peers = _allowed_sources(overlay, "service")
    pod_peers = [peer["podSelector"]["matchLabels"] for peer in api_peers if "podSelector" in peer]
    assert pod_peers == [{"qualityloop.io/role": "gateway"}]
    other = [peer for peer in api_peers if "podSelector" not in peer]
    assert other == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    data_peers = [
        peer["podSelector"]["matchLabels"]["qualityloop.io/role"] for peer in _allowed_sources(overlay, "data")
    ]
    assert sorted(data_peers) == ["data", "job", "service"]
    for name, statefulset in manifests(overlay, "StatefulSet").items():
        assert statefulset["spec"]["template"]["metadata"]["labels"]["qualityloop.io/role"] == "data", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_is_exposed_by_an_ingress_with_tls(overlay):
    ingress = manifests(overlay, "Ingress")["gateway"]["spec"]
    assert ingress["tls"][0]["secretName"] == "qualityloop-tls"
    assert ingress["rules"][0]["host"] in ingress["tls"][0]["hosts"]
    assert ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "gateway"


def test_autoscaling_follows_consumer_lag_and_never_exceeds_the_partitions():
    partitions = {topic.name: topic.partitions for topic in topic_plan()}
    scaled = manifests("prod", "ScaledObject")
    assert set(scaled) == set(SERVICES)
    for service, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        assert spec["scaleTargetRef"]["name"] == service
        assert spec["minReplicaCount"] >= 2
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["consumerGroup"] == f"qualityloop-{service}"
            assert spec["maxReplicaCount"] <= partitions[trigger["metadata"]["topic"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_committed_for_production(overlay):
    secrets = manifests(overlay, "Secret")
    if overlay == "prod":
        assert secrets == {}
    for secret in secrets.values():
        assert secret["metadata"]["name"].startswith(("qualityloop-secrets", "mongo-credentials"))


# The Kafka scaler's trigger metadata (keda pkg/scalers/kafka_scaler.go at the commit in schemas/SOURCES.md);
# the CRD leaves trigger metadata free-form, so a misspelt parameter would be silently ignored.
KAFKA_SCALER_PARAMETERS = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "partitionLimitation",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "excludePersistentLag",
    "scaleToZeroOnInvalidOffset",
    "limitToPartitionsWithLag",
    "ensureEvenDistributionOfPartitions",
    "fullMetadata",
    "version",
    "tls",
    "unsafeSsl",
    "sasl",
    "saslTokenProvider",
}


def test_kafka_triggers_name_only_parameters_the_scaler_knows():
    for scaled_object in manifests("prod", "ScaledObject").values():
        for trigger in scaled_object["spec"]["triggers"]:
            names = {name.removesuffix("FromEnv") for name in trigger["metadata"]}
            assert names - KAFKA_SCALER_PARAMETERS == set()


def _pods(overlay: str, selector: dict) -> list[dict]:
    workloads = [*manifests(overlay, "Deployment").values(), *manifests(overlay, "StatefulSet").values()]
    templates = [w["spec"]["template"] for w in workloads]
    return [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]


def _port_names(pod: dict) -> set[str]:
    return {port.get("name") for container in pod["spec"]["containers"] for port in container.get("ports", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_named_ports_of_policies_and_services_exist_on_their_pods(overlay):
    for name, policy in manifests(overlay, "NetworkPolicy").items():
        pods = _pods(overlay, policy["spec"]["podSelector"].get("matchLabels", {}))
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                if isinstance(port["port"], str):
                    assert pods and all(port["port"] in _port_names(pod) for pod in pods), (name, port)
    for name, service in manifests(overlay, "Service").items():
        pods = _pods(overlay, service["spec"]["selector"])
        assert pods, f"Service {name} selects no pod"
        for port in service["spec"]["ports"]:
            if isinstance(port.get("targetPort"), str):
                assert all(port["targetPort"] in _port_names(pod) for pod in pods), (name, port)
