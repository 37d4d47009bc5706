"""The files derived from the code (gateway config, topic job, rules and dashboard copies, settings
reference) are what the code gives today; `python -m deploy.generate` rewrites them."""

import os
import re
import subprocess

import pytest

from deploy import generate
from devstack.processes import ROUTES, nginx_binary


def test_generated_files_are_up_to_date():
    stale = [str(path.relative_to(generate.ROOT)) for path in generate.stale()]
    assert stale == [], "run `python -m deploy.generate` (make deploy-files) and commit the result"


def test_gateway_has_the_embedded_defaults_routes():
    config = generate.gateway_config()
    for service, prefixes in ROUTES.items():
        for prefix in prefixes:
            assert f"location /api/v1/{prefix} {{ proxy_pass http://{service}; }}" in config
        assert f"location /api/v1/dead-letters/{service} {{ proxy_pass http://{service}; }}" in config
        assert f"server {service}:{generate.SERVICE_PORTS[service]};" in config
    assert "127.0.0.1:81" not in config
    assert "listen 8080;" in config


def test_settings_reference_names_every_setting():
    reference = generate.settings_reference()
    for names in generate.setting_names().values():
        for name in names:
            assert f"`{name}`" in reference


@pytest.mark.parametrize("behind_ingress", [False, True])
def test_nginx_accepts_the_gateway_config(tmp_path, behind_ingress):
    # Upstream names resolve only inside the deployment; everything else is checked as nginx reads it.
    config = generate.gateway_config(behind_ingress=behind_ingress)
    config = re.sub(r"server (\w+):(\d+);", r"server 127.0.0.1:\2;", config)
    path = tmp_path / "nginx.conf"
    path.write_text(config)
    result = subprocess.run(
        [nginx_binary(), "-t", "-c", str(path), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_topic_job_issues_one_create_per_planned_topic(tmp_path):
    calls = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    stub.chmod(0o755)
    script = generate.COMPOSE / "kafka" / "create-topics.sh"
    environment = {"PATH": os.environ["PATH"], "KAFKA_BOOTSTRAP": "kafka1:9092", "KAFKA_TOPICS": str(stub)}
    result = subprocess.run(["sh", str(script)], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    plan = generate.topic_plan()
    assert len(lines) == len(plan)
    for line, topic in zip(lines, plan, strict=True):
        assert line.startswith("--bootstrap-server kafka1:9092 --create --if-not-exists")
        assert f"--topic {topic.name} --partitions {topic.partitions} --replication-factor 3" in line
        assert line.endswith(f"--config retention.ms={topic.retention_ms}")


def test_the_topic_job_takes_a_lower_replication_on_a_single_broker(tmp_path):
    calls = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    stub.chmod(0o755)
    environment = {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP": "k:9092",
        "KAFKA_TOPICS": str(stub),
        "KAFKA_REPLICATION": "1",
    }
    script = generate.COMPOSE / "kafka" / "create-topics.sh"
    subprocess.run(["sh", str(script)], env=environment, check=True, capture_output=True)
    assert all("--replication-factor 1 " in line for line in calls.read_text().splitlines())
