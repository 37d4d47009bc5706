"""Every setting the services read is set by compose and by each overlay, nothing else is, and the values
parse into the settings classes: the same code runs everywhere, only settings differ."""

import pytest

from deploy.generate import SERVICES, service_definition, setting_names
from devstack.cli import service_environment
from shared.settings import PlatformSettings
from tests.deploy.deploy_files import OVERLAYS, compose_environment, container_environment

# Settings a deployment leaves unset on purpose, and why.
UNSET = {
    "compose": {
        "QL_AUTH_JWKS_URL": "compose verifies tokens with the public key in secrets/ (QL_AUTH_PUBLIC_KEY_FILE)"
    },
    "kubernetes": {"QL_AUTH_PUBLIC_KEY_FILE": "production verifies tokens with the identity provider's JWKS"},
}
# Variables a deployment sets that are read by a library rather than a settings class.
LIBRARY_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}


def environments() -> list[tuple[str, str, dict[str, str]]]:
    """(deployment kind, service, environment) of every service in every deployment."""
    found = [("compose", service, compose_environment(service)) for service in SERVICES]
    for overlay in OVERLAYS:
        found += [("kubernetes", service, container_environment(overlay, service)) for service in SERVICES]
    return found


@pytest.mark.parametrize(("kind", "service", "environment"), environments())
def test_every_setting_is_set_and_every_variable_is_a_setting(kind, service, environment):
    read = setting_names()[service]
    where = {
        "compose": "deploy/compose/compose.yaml",
        "kubernetes": "deploy/k8s/base/kustomization.yaml (secrets: the Deployment's env and the dev overlay)",
    }[kind]
    missing = read - environment.keys() - set(UNSET[kind])
    assert missing == set(), f"set these in {where} and run `python -m deploy.generate`"
    assert set(UNSET[kind]) <= read - environment.keys(), "a setting left unset on purpose is set now: update UNSET"
    assert environment.keys() - read - LIBRARY_VARIABLES == set(), f"{where} sets variables no settings class reads"


@pytest.mark.parametrize(("kind", "service", "environment"), environments())
def test_the_values_parse_into_the_settings_classes(kind, service, environment, monkeypatch):
    for name in setting_names()[service]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    platform = PlatformSettings()
    settings = service_definition(service).settings_type()
    assert settings.host == "0.0.0.0"
    assert platform.topic_replication >= 1
    assert platform.mongo_uri.get_secret_value()


def test_the_embedded_default_sets_only_settings_too(tmp_path):
    every_setting = set().union(*setting_names().values())
    assert service_environment(tmp_path).keys() <= every_setting


# Settings whose values belong to the deployment (addresses, identity provider, secrets, scale, links).
DEPLOYMENT_SPECIFIC = {
    "QL_KAFKA_BOOTSTRAP",
    "QL_MONGO_URI",
    "QL_AUTH_PUBLIC_KEY_FILE",
    "QL_AUTH_JWKS_URL",
    "QL_AUTH_ISSUER",
    "QL_FEEDBACK_PSEUDONYM_KEY",
    "QL_ALERTS_SECRET_KEY",
    "QL_ALERTS_LINK_BASE",
    "OTEL_TRACES_SAMPLER_ARG",
}


@pytest.mark.parametrize("service", SERVICES)
def test_compose_and_production_agree_on_everything_else(service):
    compose_env = compose_environment(service)
    production = container_environment("prod", service)
    shared = (compose_env.keys() & production.keys()) - DEPLOYMENT_SPECIFIC
    assert {name: compose_env[name] for name in shared} == {name: production[name] for name in shared}
