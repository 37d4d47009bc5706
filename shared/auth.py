"""Bearer JWT verification, the principal's scopes and roles, and development tokens."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.problems import Problem
from shared.settings import PlatformSettings
from shared.tree import WHOLE_ORGANISATION, in_subtree

ROLES = frozenset({"admin", "quality_manager", "unit_manager", "analyst", "integration"})
VERIFIED_TOKENS_KEPT = 10_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is calling: their organisation, the unit subtrees they may see, and their roles."""

    subject: str
    org: str
    scopes: tuple[str, ...]
    roles: frozenset[str]

    @property
    def sees_whole_organisation(self) -> bool:
        """Whether no subtree limits this principal."""
        return WHOLE_ORGANISATION in self.scopes

    def can_see(self, unit_path: str) -> bool:
        """Whether a unit path lies inside one of the principal's subtrees."""
        return any(in_subtree(unit_path, scope) for scope in self.scopes)

    def can_read(self, document: dict[str, Any]) -> bool:
        """``scope_filter`` in Python: whether a stored document (with ``org`` and ``unit_path``) is visible."""
        return document.get("org") == self.org and self.can_see(document["unit_path"])

    def scope_filter(self, lineage_field: str = "lineage") -> dict[str, Any]:
        """A MongoDB filter for documents of this organisation inside the principal's subtrees.

        Documents keep their unit's lineage (every ancestor's path and its own), so a subtree is
        an indexed equality match rather than a regular expression.
        """
        if self.sees_whole_organisation:
            return {"org": self.org}
        return {"org": self.org, lineage_field: {"$in": list(self.scopes)}}


class JwksKeys:
    """An OIDC provider's signing keys from its JWKS URL: cached, refetched for an unknown key id, bounded.

    Fetched with httpx's async client, so the event loop never waits on the network; one fetch at a
    time, and an unknown key id refetches at most once per ``min_refresh_seconds`` (a token with a made-up
    ``kid`` cannot make every request call the provider).
    """

    def __init__(self, url: str, *, cache_seconds: float, min_refresh_seconds: float, timeout: float = 5) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._timeout = timeout
        self._keys: dict[str, Any] = {}
        self._fetched_at = self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> Any:
        """The public key of ``kid`` (or the only key when the token names none); Problem 401 otherwise."""
        if time.monotonic() - self._fetched_at > self._cache_seconds:
            await self._refresh(stale_only=True)
        found = self._find(kid)
        if found is None:
            await self._refresh(stale_only=False)
            found = self._find(kid)
        if found is None:
            raise _invalid(f"no signing key {kid!r} at the provider")
        return found

    def _find(self, kid: str | None) -> Any:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, *, stale_only: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self._attempted_at < self._min_refresh_seconds:
                return
            if stale_only and now - self._fetched_at <= self._cache_seconds:
                return
            self._attempted_at = now
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(self._url)
                    response.raise_for_status()
                    key_set = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
                # Keep the keys we have; the next try waits for the refresh interval.
                log.warning("could not fetch the JWKS", extra={"url": self._url, "error": repr(error)})
                return
            self._keys = {
                jwk.key_id or "": jwk.key
                for jwk in key_set.keys
                if jwk.key_type == "RSA" and jwk.public_key_use in (None, "sig")
            }
            self._fetched_at = now


class ClaimsMapping:
    """Where a provider puts the organisation, scopes and roles (settings ``QL_AUTH_*_CLAIM``)."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.org, self.scopes, self.roles = (
            settings.auth_org_claim,
            settings.auth_scopes_claim,
            settings.auth_roles_claim,
        )
        self.role_map = dict(settings.auth_role_map)

    def principal(self, claims: dict[str, Any]) -> Principal:
        """The principal the verified claims describe; Problem 401 if the organisation or scopes are missing."""
        org = claim(claims, self.org)
        if not isinstance(org, str) or not org:
            raise _invalid(f"the token has no organisation claim {self.org!r}")
        scopes = tuple(_strings(claim(claims, self.scopes)))
        if not scopes:
            raise _invalid(f"the token names no unit scope (claim {self.scopes!r})")
        named = _strings(claim(claims, self.roles))
        roles = frozenset(self.role_map.get(role, role) for role in named) & ROLES
        return Principal(subject=str(claims["sub"]), org=org, scopes=scopes, roles=roles)


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by its name, or by a dotted path into nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    """A claim as a list of strings: a list stays one, a string is space-separated (OAuth ``scope`` style)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _invalid(detail: str) -> Problem:
    return Problem(401, "Invalid token", detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


# RFC 8725: the algorithm is pinned, never taken from the token (no `none`, no HS256 with the public key).
ALGORITHMS = ["RS256"]


class TokenVerifier:
    """Verifies RS256 bearer tokens with a local public key or an OIDC provider's JWKS."""

    def __init__(self, settings: PlatformSettings) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._leeway = settings.auth_leeway_seconds
        self._claims = ClaimsMapping(settings)
        self._jwks = (
            JwksKeys(
                settings.auth_jwks_url,
                cache_seconds=settings.auth_jwks_cache_seconds,
                min_refresh_seconds=settings.auth_jwks_min_refresh_seconds,
            )
            if settings.auth_jwks_url
            else None
        )
        self._public_key = (
            settings.auth_public_key_file.read_bytes() if settings.auth_public_key_file and not self._jwks else None
        )
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def principal(self, token: str) -> Principal:
        """The principal a valid token names (local key or JWKS); raises Problem 401 otherwise.

        A token seen before is not verified again until it expires: integrations send the same token
        with every request, and the RSA check was a tenth of an intake request's CPU.
        """
        known = self.remembered(token)
        if known is not None:
            return known
        if self._jwks is None:
            return self.verify(token)
        kid = self._header(token).get("kid")
        return self._remember(token, *self._decode(token, await self._jwks.key(kid)))

    def verify(self, token: str) -> Principal:
        """``principal`` for the local key, without awaiting (a JWKS verifier must use ``principal``)."""
        known = self.remembered(token)
        if known is not None:
            return known
        if self._public_key is None:
            raise RuntimeError("this verifier fetches keys from a JWKS URL: await principal(token)")
        self._header(token)
        return self._remember(token, *self._decode(token, self._public_key))

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before and not yet expired."""
        known = self._verified.get(token)
        if known is None or time.time() >= known[0]:
            return None
        self._verified.move_to_end(token)
        return known[1]

    def _remember(self, token: str, principal: Principal, expires_at: float) -> Principal:
        self._verified[token] = (expires_at, principal)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _invalid(str(error)) from error
        if header.get("alg") not in ALGORITHMS:
            raise _invalid(f"algorithm {header.get('alg')!r} is not accepted (only {', '.join(ALGORITHMS)})")
        return header

    def _decode(self, token: str, key: Any) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise _invalid(str(error)) from error
        return self._claims.principal(claims), float(claims["exp"])


# The record header an integration puts its token in when it produces onto an ingest topic (dead letters
# never keep it: shared/dead_letters.py SECRET_HEADERS).
TOKEN_HEADER = "authorization"


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization``-style value (``Bearer <token>``), or None."""
    scheme, _, token = (value or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="An RS256 token from the OIDC provider (`qualityloop token` on the embedded default).",
)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 (verified once per request)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    if credentials is None:
        raise Problem(
            401, "Missing token", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.principal(credentials.credentials)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def issue_token(
    private_key_pem: bytes,
    *,
    org: str,
    roles: Iterable[str],
    scopes: Iterable[str] = (WHOLE_ORGANISATION,),
    subject: str = "developer",
    issuer: str = "qualityloop-dev",
    audience: str = "qualityloop",
    ttl_seconds: int = 12 * 3600,
    not_before: int | None = None,
    key_id: str | None = None,
) -> str:
    """Sign a development token with the local key (the embedded default's stand-in for an OIDC provider)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "org": org,
        "roles": sorted(roles),
        "scopes": list(scopes),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    if not_before is not None:
        claims["nbf"] = not_before
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers={"kid": key_id} if key_id else None)


def ensure_signing_key(directory: Path) -> tuple[Path, Path]:
    """Create the local RSA key pair once; return the private and public key paths."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "signing-key.pem", directory / "signing-key.pub.pem"
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return private_path, public_path
