"""The alerts service's settings (``QL_ALERTS_*``)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AlertsSettings(ServiceSettings):
    """Where the alerts service listens and which database it owns."""

    model_config = SettingsConfigDict(env_prefix="QL_ALERTS_", extra="ignore")

    port: int = 8103
    database: str = "qualityloop_alerts"
