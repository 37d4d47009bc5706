"""Bearer JWT verification, the principal's scopes and roles, and development tokens."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

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


class TokenVerifier:
    """Verifies RS256 bearer tokens with a local public key or an OIDC provider's JWKS."""

    def __init__(self, settings: PlatformSettings) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None
        self._public_key = (
            settings.auth_public_key_file.read_bytes() if settings.auth_public_key_file and not self._jwks else None
        )
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; raises Problem 401 otherwise.

        A token seen before is not verified again until it expires: integrations send the same token
        with every request, and the RSA check was a tenth of an intake request's CPU.
        """
        known = self.remembered(token)
        if known is not None:
            return known
        principal, expires_at = self._verify_signature(token)
        self._verified[token] = (expires_at, principal)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    @property
    def fetches_keys(self) -> bool:
        """Whether verifying may fetch the provider's keys over the network (a JWKS URL is set)."""
        return self._jwks is not None

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before and not yet expired."""
        known = self._verified.get(token)
        if known is None or time.time() >= known[0]:
            return None
        self._verified.move_to_end(token)
        return known[1]

    def _verify_signature(self, token: str) -> tuple[Principal, float]:
        try:
            key: Any = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._public_key
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "sub", "org"]},
            )
        except jwt.PyJWTError as error:
            raise Problem(401, "Invalid token", str(error), headers={"WWW-Authenticate": "Bearer"}) from error
        roles = frozenset(claims.get("roles", [])) & ROLES
        scopes = tuple(claims.get("scopes") or ())
        if not scopes:
            raise Problem(401, "Invalid token", "the token names no unit scope")
        return Principal(subject=claims["sub"], org=claims["org"], scopes=scopes, roles=roles), float(claims["exp"])


_bearer = HTTPBearer(auto_error=False)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the caller's principal, or 401."""
    if credentials is None:
        raise Problem(
            401, "Missing token", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    token = credentials.credentials
    if (known := verifier.remembered(token)) is not None:
        return known
    if verifier.fetches_keys:
        # PyJWKClient fetches keys with blocking I/O: keep it off the event loop.
        return await asyncio.to_thread(verifier.verify, token)
    return verifier.verify(token)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """FastAPI dependency factory: the principal, if it holds one of ``roles``; 403 otherwise."""
    allowed = frozenset(roles) | {"admin"}

    # Async, like authenticate: FastAPI runs plain functions in a thread pool, a hop per request.
    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.roles & allowed:
            raise Problem(403, "Forbidden", f"this needs one of the roles: {', '.join(sorted(allowed))}")
        return principal

    return check


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
) -> str:
    """Sign a development token with the local key (the embedded default's stand-in for an OIDC provider)."""
    now = int(time.time())
    claims = {
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
    return jwt.encode(claims, private_key_pem, algorithm="RS256")


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
