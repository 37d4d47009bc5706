"""deploy/compose/compose.yaml: valid per the Compose specification, and the topology the issue asks for."""

import jsonschema
import yaml

from deploy.generate import COMPOSE, OBSERVABILITY, SERVICE_PORTS, SERVICES
from tests.deploy.deploy_files import SCHEMAS, compose, compose_environment, json_file


def test_compose_file_validates_against_the_compose_specification():
    schema = json_file(SCHEMAS / "compose-spec.json")
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=str)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_every_service_runs_the_same_image_twice_with_its_serve_command():
    services = compose()["services"]
    images = {services[name]["image"] for name in SERVICES}
    assert len(images) == 1
    for name in SERVICES:
        assert services[name]["command"] == ["qualityloop", "serve", name]
        assert services[name]["deploy"]["replicas"] == 2
        assert services[name]["read_only"] is True


def test_kafka_is_three_kraft_brokers_replicating_three_ways():
    brokers = {name: compose_environment(name) for name in ("kafka1", "kafka2", "kafka3")}
    assert {env["KAFKA_NODE_ID"] for env in brokers.values()} == {"1", "2", "3"}
    for env in brokers.values():
        assert "controller" in env["KAFKA_PROCESS_ROLES"]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka1:9093,2@kafka2:9093,3@kafka3:9093"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert compose_environment("feedback")["QL_TOPIC_REPLICATION"] == "3"


def test_mongodb_is_a_three_member_replica_set_with_majority_concerns():
    services = compose()["services"]
    for member in ("mongo1", "mongo2", "mongo3"):
        assert "--replSet rs0" in " ".join(services[member]["entrypoint"])
    assert compose_environment("mongo-init")["MONGO_MEMBERS"] == "mongo1:27017,mongo2:27017,mongo3:27017"
    uri = compose_environment("feedback")["QL_MONGO_URI"]
    for option in ("replicaSet=rs0", "w=majority", "readConcernLevel=majority"):
        assert option in uri
    assert "mongo1:27017,mongo2:27017,mongo3:27017" in uri


def test_only_services_and_jobs_reach_the_data_network():
    services = compose()["services"]
    assert compose()["networks"]["data"]["internal"] is True
    on_data = {name for name, service in services.items() if "data" in service.get("networks", [])}
    data_stores = {"kafka1", "kafka2", "kafka3", "mongo1", "mongo2", "mongo3"}
    assert on_data == data_stores | set(SERVICES) | {"kafka-topics", "mongo-init"}


def test_services_start_after_topics_and_replica_set_exist():
    services = compose()["services"]
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["kafka-topics"]["condition"] == "service_completed_successfully"
        assert depends["mongo-init"]["condition"] == "service_completed_successfully"


def test_mounted_files_exist():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).resolve().exists(), f"{name} mounts a missing {source}"


def test_the_gateway_collector_shares_the_gateways_network_for_its_syslog():
    services = compose()["services"]
    assert services["gateway-collector"]["network_mode"] == "service:gateway"
    assert "syslog:server=127.0.0.1:5140" in (COMPOSE / "gateway" / "nginx.conf").read_text()


def test_prometheus_scrapes_every_instance_of_every_service_and_loads_the_rules():
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in SERVICES:
        dns = jobs[service]["dns_sd_configs"][0]
        assert dns == {"names": [service], "type": "A", "port": SERVICE_PORTS[service]}
    mounts = dict(volume.split(":")[1::-1] for volume in compose()["services"]["prometheus"]["volumes"][:2])
    assert mounts[config["rule_files"][0]] == "../observability/rules.yaml"
