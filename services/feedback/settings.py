"""The feedback service's settings (``QL_FEEDBACK_*``)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    """Where the feedback service listens and which database it owns."""

    model_config = SettingsConfigDict(env_prefix="QL_FEEDBACK_", extra="ignore")

    port: int = 8101
    database: str = "qualityloop_feedback"
    pseudonym_key: SecretStr = Field(description="Key of the keyed hash that pseudonymises customer references")
    max_comment_chars: int = 4000
    max_future_skew_seconds: int = 300
