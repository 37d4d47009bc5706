"""What every channel shares: its configuration's base, URL checks and masks, and the sender interface."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from services.alerts.notify.delivery import Attempt
from services.alerts.notify.notification import Language, Notification

MASK = "****"


class ChannelConfigBase(BaseModel):
    """A channel's settings; the fields in ``sealed_fields`` are encrypted at rest and never read back."""

    model_config = ConfigDict(extra="forbid")

    type: str
    language: Language = "zh"

    # Stored encrypted; a read shows ``<field>_set`` instead, or a masked copy for the ``masked_fields``.
    sealed_fields: ClassVar[tuple[str, ...]] = ()
    # Sealed URLs whose secret part a read shows masked, so a person can tell which robot it is.
    masked_fields: ClassVar[tuple[str, ...]] = ()

    def sealed_value(self, name: str) -> str | None:
        """The plain text of a sealed field, to encrypt."""
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return None if value is None else str(value)

    def masked_value(self, name: str) -> str:
        """A sealed URL with its secret part masked; each channel knows where its secret sits."""
        return mask_query(str(getattr(self, name)), ())


class Sender(Protocol):
    """Sends one notification to one channel and tells how it went, never raising for a network failure."""

    async def __call__(
        self, config: Any, notification: Notification, *, http: httpx.AsyncClient, message_id: str
    ) -> Attempt: ...


def mask_token(token: str) -> str:
    """A secret shown by its last four characters only, when it is long enough to spare them."""
    return MASK + token[-4:] if len(token) >= 16 else MASK


def mask_query(url: str, names: tuple[str, ...]) -> str:
    """The URL with the named query parameters masked and any password in it hidden."""
    parts = urlsplit(url)
    query = urlencode(
        [(name, mask_token(value) if name in names else value) for name, value in parse_qsl(parts.query)],
        safe="*",
    )
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_last_segment(url: str) -> str:
    """The URL with its last path segment (the robot's token) masked and its query dropped."""
    parts = urlsplit(url)
    head, _, token = parts.path.rstrip("/").rpartition("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{head}/{mask_token(token)}", "", ""))


def check_http_url(url: str) -> str:
    """An absolute http(s) URL with a host, or a ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    return url


def check_query_parameter(url: str, name: str) -> str:
    """A robot URL that carries its token in the ``name`` query parameter."""
    check_http_url(url)
    if not dict(parse_qsl(urlsplit(url).query)).get(name):
        raise ValueError(f"must carry the robot's {name} query parameter")
    return url


def check_path_token(url: str, marker: str) -> str:
    """A robot URL whose path holds ``marker`` followed by the robot's token."""
    check_http_url(url)
    path = urlsplit(url).path
    if marker not in path or not path.split(marker, 1)[1].strip("/"):
        raise ValueError(f"must have the form .../{marker.strip('/')}/<token>")
    return url
