"""The scoring service's settings (``QL_SCORING_*``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    """Where the scoring service listens, which database it owns, and when a sample is too small."""

    model_config = SettingsConfigDict(env_prefix="QL_SCORING_", extra="ignore")

    port: int = 8102
    database: str = "qualityloop_scoring"
    min_samples: int = Field(
        default=5,
        ge=1,
        description="Below this, a figure is flagged and raises no alert; an organisation may set its own",
    )
