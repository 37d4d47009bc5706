"""Tokens, scopes and roles."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from shared.auth import Principal, TokenVerifier, ensure_signing_key, issue_token
from shared.problems import Problem
from shared.settings import PlatformSettings
from shared.tree import lineage


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ensure_signing_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def verifier(keys) -> TokenVerifier:
    settings = PlatformSettings(kafka_bootstrap="x:1", mongo_uri="mongodb://x", auth_public_key_file=keys[1])
    return TokenVerifier(settings)


def test_verify__reads_the_claims_of_a_valid_token(keys, verifier):
    token = issue_token(keys[0].read_bytes(), org="acme", roles=["analyst", "not-a-role"], scopes=["north"])
    principal = verifier.verify(token)
    assert principal.org == "acme"
    assert principal.roles == frozenset({"analyst"})
    assert principal.scopes == ("north",)


def test_verify__refuses_an_expired_token(keys, verifier):
    token = issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], ttl_seconds=-120)
    with pytest.raises(Problem) as refused:
        verifier.verify(token)
    assert refused.value.status == 401


def test_verify__refuses_a_token_signed_with_another_key(tmp_path, verifier):
    other_key, _ = ensure_signing_key(tmp_path)
    with pytest.raises(Problem):
        verifier.verify(issue_token(other_key.read_bytes(), org="acme", roles=["admin"]))


def test_verify__refuses_an_unsigned_token(verifier):
    claims = {"sub": "x", "org": "acme", "scopes": ["*"], "exp": int(time.time()) + 60}
    with pytest.raises(Problem):
        verifier.verify(jwt.encode(claims, key="", algorithm="none"))


def test_principal__sees_only_its_subtrees():
    principal = Principal(subject="s", org="acme", scopes=("north/beijing",), roles=frozenset())
    assert principal.can_see("north/beijing")
    assert principal.can_see("north/beijing/b-1")
    assert not principal.can_see("north")
    assert not principal.can_see("north/beijing2")
    assert principal.scope_filter() == {"org": "acme", "lineage": {"$in": ["north/beijing"]}}


def test_lineage__lists_every_ancestor_and_the_unit():
    assert lineage("a/b/c") == ["a", "a/b", "a/b/c"]


def test_verify__remembers_a_verified_token_until_it_expires(keys, verifier):
    token = issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], ttl_seconds=60)
    assert verifier.remembered(token) is None
    principal = verifier.verify(token)
    assert verifier.remembered(token) == principal


def test_verify__does_not_remember_a_refused_token(keys, verifier):
    token = issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], ttl_seconds=-120)
    with pytest.raises(Problem):
        verifier.verify(token)
    assert verifier.remembered(token) is None
