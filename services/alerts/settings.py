"""The alerts service's settings (``QL_ALERTS_*``)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

# A fixed development key (Fernet: urlsafe base64 of 32 bytes) so the embedded default starts as is;
# production sets QL_ALERTS_SECRET_KEY (see services/alerts/notify).
DEVELOPMENT_SECRET_KEY = "cWxfYWxlcnRzX2RldmVsb3BtZW50X2tleV8wMDAwMDA="


class AlertsSettings(ServiceSettings):
    """Where the alerts service listens, which database it owns, and how it groups and notifies."""

    model_config = SettingsConfigDict(env_prefix="QL_ALERTS_", extra="ignore")

    port: int = 8103
    database: str = "qualityloop_alerts"
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET_KEY), description="Fernet key(s) sealing channel secrets"
    )
    group_wait_seconds: float = Field(
        default=30, ge=0, description="Wait for more of a group's alerts before notifying"
    )
    group_interval_seconds: float = Field(default=300, ge=0, description="Wait before telling of alerts that joined")
    group_window_seconds: float = Field(
        default=3600, ge=0, description="How long after it opens a group takes new alerts (then a new group opens)"
    )
    default_timezone: str = "Asia/Shanghai"
    default_patience_minutes: int = Field(default=240, ge=1)
    link_base: str = Field(default="http://127.0.0.1:8080", description="Where links in notifications point")
