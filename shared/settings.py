"""Settings every service reads at start-up: where the broker and database are, auth and telemetry."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    """What every service needs; environment variables prefixed ``QL_``."""

    model_config = SettingsConfigDict(env_prefix="QL_", extra="ignore")

    # No defaults: a service that does not know where its broker and database are must not start.
    kafka_bootstrap: str = Field(description="Kafka bootstrap servers, host:port[,host:port]")
    mongo_uri: SecretStr = Field(description="MongoDB connection string")
    consumer_group_prefix: str = Field(default="qualityloop", description="Consumer groups are <prefix>-<service>")
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    # Apache Kafka: producers with idempotence (no duplicates from retries); the embedded broker lacks
    # InitProducerId, so it stays off there and the inboxes absorb what retries repeat.
    kafka_idempotent_producer: bool = Field(default=False, description="Idempotent producers (Apache Kafka only)")

    auth_public_key_file: Path | None = Field(
        default=None, description="PEM public key that verifies tokens (the embedded default)"
    )
    auth_jwks_url: str | None = Field(default=None, description="JWKS URL of the OIDC provider (production)")
    auth_issuer: str = "qualityloop-dev"
    auth_audience: str = "qualityloop"
    # Where the organisation, unit scopes and roles sit in a token: a claim name, or a dotted path into
    # nested claims (Keycloak: `realm_access.roles`; Entra: `roles`, `tid`). A claim whose own name holds
    # dots (`https://example.com/org`) is found by its name first.
    auth_org_claim: str = "org"
    auth_scopes_claim: str = "scopes"
    auth_roles_claim: str = "roles"
    # Provider role names to QualityLoop roles (JSON in QL_AUTH_ROLE_MAP), e.g. {"QualityLoop.Admin": "admin"};
    # names not mapped are taken as they are, and unknown ones ignored.
    auth_role_map: dict[str, str] = Field(default_factory=dict)
    # Clock skew tolerated on exp, nbf and iat (RFC 8725 wants it small and bounded).
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # JWKS keys are cached this long; an unknown key id refetches them, at most once per refresh interval.
    auth_jwks_cache_seconds: float = Field(default=3600, gt=0)
    auth_jwks_min_refresh_seconds: float = Field(default=30, ge=0)

    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    consumer_max_attempts: int = Field(default=3, ge=1)
    relay_batch_size: int = Field(default=1000, ge=1)
    # How often a relay looks for committed rows no handover brought (a crash between commit and publish).
    relay_sweep_seconds: float = Field(default=10, gt=0)
    # The in-memory broker forgets what it held when it restarts; sent records are kept this long so a
    # relay that notices a new broker incarnation can publish them again.
    outbox_retention_seconds: int = Field(default=24 * 3600, ge=0)
    startup_timeout_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _one_way_to_verify_tokens(self) -> PlatformSettings:
        if not (self.auth_public_key_file or self.auth_jwks_url):
            raise ValueError("set QL_AUTH_PUBLIC_KEY_FILE (embedded default) or QL_AUTH_JWKS_URL (production)")
        return self


class ServiceSettings(BaseSettings):
    """A service's own settings; subclasses set ``env_prefix`` to ``QL_<SERVICE>_``."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    database: str
