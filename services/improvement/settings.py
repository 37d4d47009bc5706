"""The improvement service's settings (``QL_IMPROVEMENT_*``)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ImprovementSettings(ServiceSettings):
    """Where the improvement service listens and which database it owns."""

    model_config = SettingsConfigDict(env_prefix="QL_IMPROVEMENT_", extra="ignore")

    port: int = 8104
    database: str = "qualityloop_improvement"
