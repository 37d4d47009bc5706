"""The topic job creates every topic the code uses, and a dead-letter topic for each consumed one."""

import re

from deploy.generate import COMPOSE, SERVICES, consumed_topics, marker_topic, published_topics
from shared.events import EVENT_TYPES, TOPICS, dead_letter_topic

CREATE = re.compile(r"^create (?P<topic>\S+) (?P<partitions>\d+) (?P<replication>\d+) (?P<retention>-?\d+)$", re.M)


def created() -> dict[str, tuple[int, int, int]]:
    script = (COMPOSE / "kafka" / "create-topics.sh").read_text()
    return {
        m["topic"]: (int(m["partitions"]), int(m["replication"]), int(m["retention"])) for m in CREATE.finditer(script)
    }


def test_every_topic_of_the_contract_and_the_services_is_created():
    topics = set(TOPICS) | {cls.topic for cls in EVENT_TYPES.values()} | published_topics()
    assert topics - created().keys() == set()


def test_every_consumed_topic_has_a_dead_letter_topic():
    consumed = {topic for topics in consumed_topics().values() for topic in topics}
    assert consumed, "the services consume something"
    assert {dead_letter_topic(topic) for topic in consumed} - created().keys() == set()
    assert consumed <= created().keys()


def test_topics_replicate_three_ways_and_dead_letters_are_kept_longest():
    topics = created()
    assert {replication for _, replication, _ in topics.values()} == {3}
    dead = [retention for name, (_, _, retention) in topics.items() if name.endswith(".dlq")]
    live = [retention for name, (_, _, retention) in topics.items() if not name.endswith(".dlq") and retention > 0]
    assert min(dead) > max(live)


def test_every_relay_marker_topic_is_created_because_the_brokers_create_none_on_use():
    for service in SERVICES:
        assert created()[marker_topic(service)][0] == 1
