"""Tokens, scopes and roles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest

from shared.auth import Principal, TokenVerifier, bearer_token, ensure_signing_key, issue_token
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


def _settings(public_key: Path, **overrides) -> PlatformSettings:
    return PlatformSettings(
        kafka_bootstrap="x:1", mongo_uri="mongodb://x", auth_public_key_file=public_key, **overrides
    )


def _signed(private_key: Path, claims: dict, *, algorithm: str = "RS256") -> str:
    now = int(time.time())
    base = {"sub": "u-1", "iss": "qualityloop-dev", "aud": "qualityloop", "iat": now, "exp": now + 600}
    return jwt.encode({**base, **claims}, private_key.read_bytes(), algorithm=algorithm)


def _refused(verifier: TokenVerifier, token: str) -> Problem:
    with pytest.raises(Problem) as refused:
        verifier.verify(token)
    assert refused.value.status == 401
    assert refused.value.headers and refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    return refused.value


def test_verify__refuses_a_token_not_yet_valid(keys, verifier):
    token = issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], not_before=int(time.time()) + 600)
    assert "not yet valid" in (_refused(verifier, token).detail or "")


def test_verify__tolerates_a_small_clock_skew_only(keys, verifier):
    skewed = issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], not_before=int(time.time()) + 5)
    assert verifier.verify(skewed).org == "acme"
    expired_a_little = issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], ttl_seconds=-5)
    assert verifier.verify(expired_a_little).org == "acme"
    _refused(verifier, issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], ttl_seconds=-31))


def test_verify__refuses_another_audience_or_issuer(keys, verifier):
    _refused(verifier, issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], audience="someone-else"))
    _refused(verifier, issue_token(keys[0].read_bytes(), org="acme", roles=["admin"], issuer="https://evil"))
    _refused(verifier, _signed(keys[0], {"org": "acme", "scopes": ["*"], "aud": None}))


def test_verify__refuses_alg_none_and_hs256_signed_with_the_public_key(keys, verifier):
    claims: dict[str, object] = {"sub": "x", "org": "acme", "scopes": ["*"], "roles": ["admin"]}
    claims |= {"iss": "qualityloop-dev", "aud": "qualityloop", "exp": int(time.time()) + 60}
    assert "not accepted" in (_refused(verifier, jwt.encode(claims, key="", algorithm="none")).detail or "")
    # The classic confusion attack: the public key used as an HMAC secret.
    forged = _hs256(claims, keys[1].read_bytes())
    assert "not accepted" in (_refused(verifier, forged).detail or "")


def _hs256(claims: dict, secret: bytes) -> str:
    """An HS256 token signed by hand (PyJWT refuses PEM keys as HMAC secrets, rightly)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_verify__refuses_a_garbled_token(verifier):
    _refused(verifier, "not-a-jwt")


def test_claims__keycloak_shaped_token(keys):
    verifier = TokenVerifier(
        _settings(
            keys[1],
            auth_org_claim="org",
            auth_scopes_claim="qualityloop_scopes",
            auth_roles_claim="realm_access.roles",
            auth_role_map={"ql-admin": "admin"},
        )
    )
    token = _signed(
        keys[0],
        {
            "org": "acme",
            "qualityloop_scopes": ["north", "south/shanghai"],
            "realm_access": {"roles": ["ql-admin", "analyst", "offline_access", "uma_authorization"]},
            "resource_access": {"account": {"roles": ["manage-account"]}},
        },
    )
    principal = verifier.verify(token)
    assert (principal.org, principal.scopes) == ("acme", ("north", "south/shanghai"))
    assert principal.roles == frozenset({"admin", "analyst"})


def test_claims__entra_shaped_token_with_app_roles_and_the_tenant_as_organisation(keys):
    verifier = TokenVerifier(
        _settings(
            keys[1],
            auth_org_claim="tid",
            auth_scopes_claim="extension_qualityloopScopes",
            auth_roles_claim="roles",
            auth_role_map={"QualityLoop.QualityManager": "quality_manager", "QualityLoop.Analyst": "analyst"},
        )
    )
    token = _signed(
        keys[0],
        {
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "oid": "00000000-0000-0000-0000-000000000001",
            "extension_qualityloopScopes": "north/beijing north/tianjin",
            "roles": ["QualityLoop.QualityManager"],
            "scp": "User.Read",
        },
    )
    principal = verifier.verify(token)
    assert principal.org == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert principal.scopes == ("north/beijing", "north/tianjin")
    assert principal.roles == frozenset({"quality_manager"})


def test_claims__authing_shaped_token_with_namespaced_custom_claims(keys):
    verifier = TokenVerifier(
        _settings(
            keys[1],
            auth_org_claim="https://qualityloop/org",
            auth_scopes_claim="https://qualityloop/scopes",
            auth_roles_claim="roles",
        )
    )
    token = _signed(
        keys[0],
        {
            "https://qualityloop/org": "acme",
            "https://qualityloop/scopes": ["*"],
            "roles": ["unit_manager"],
            "phone_number": "+8613800000000",
        },
    )
    principal = verifier.verify(token)
    assert (principal.org, principal.scopes, principal.roles) == ("acme", ("*",), frozenset({"unit_manager"}))


def test_claims__a_token_without_organisation_or_scope_is_refused(keys):
    verifier = TokenVerifier(_settings(keys[1], auth_roles_claim="realm_access.roles"))
    assert "organisation" in (_refused(verifier, _signed(keys[0], {"scopes": ["*"]})).detail or "")
    assert "scope" in (_refused(verifier, _signed(keys[0], {"org": "acme"})).detail or "")


@pytest.mark.parametrize(
    ("value", "token"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  x ", "x"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_token__reads_the_token_of_a_record_header(value, token):
    assert bearer_token(value) == token
