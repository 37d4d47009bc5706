"""The unit cache that spares intake a database read per feedback."""

from __future__ import annotations

import time

from services.feedback.unit_cache import UnitCache


def test_unit_cache__returns_what_was_put_while_fresh():
    cache = UnitCache(ttl_seconds=60)
    cache.put_many("db", "acme", {"b-1": {"id": "b-1", "path": "n/b-1"}})
    assert cache.get_many("db", "acme", ["b-1", "b-2"]) == {"b-1": {"id": "b-1", "path": "n/b-1"}}


def test_unit_cache__keeps_databases_and_organisations_apart():
    cache = UnitCache(ttl_seconds=60)
    cache.put_many("db", "acme", {"b-1": {"id": "b-1"}})
    assert cache.get_many("db", "other", ["b-1"]) == {}
    assert cache.get_many("other-db", "acme", ["b-1"]) == {}


def test_unit_cache__forgets_stale_entries():
    cache = UnitCache(ttl_seconds=0.01)
    cache.put_many("db", "acme", {"b-1": {"id": "b-1"}})
    time.sleep(0.02)
    assert cache.get_many("db", "acme", ["b-1"]) == {}


def test_unit_cache__drops_the_oldest_beyond_its_size():
    cache = UnitCache(ttl_seconds=60, max_entries=2)
    for unit_id in ("a", "b", "c"):
        cache.put_many("db", "acme", {unit_id: {"id": unit_id}})
    assert set(cache.get_many("db", "acme", ["a", "b", "c"])) == {"b", "c"}


def test_unit_cache__forget_drops_one_organisation():
    cache = UnitCache(ttl_seconds=60)
    cache.put_many("db", "acme", {"a": {"id": "a"}})
    cache.put_many("db", "other", {"a": {"id": "a"}})
    cache.forget("db", "acme")
    assert cache.get_many("db", "acme", ["a"]) == {}
    assert cache.get_many("db", "other", ["a"]) == {"a": {"id": "a"}}
