"""Channel schemas (ChannelCreate/ChannelUpdate/ChannelRead) and the stored form, secrets sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from services.alerts.notify.channels import CONFIG_TYPES, ChannelConfig, ChannelConfigRead
from services.alerts.notify.channels.base import ChannelConfigBase
from services.alerts.notify.notification import LEVELS, Level
from services.alerts.notify.secretbox import SecretBox
from shared.contract import Changes

CONFIG = TypeAdapter[ChannelConfig](ChannelConfig)
CONFIG_READ = TypeAdapter[ChannelConfigRead](ChannelConfigRead)
# Keys of a stored config that hold no field of the config itself.
SEALED, MASKED = "sealed", "masked"


class ChannelCreate(BaseModel):
    """A channel: where notifications about alerts in a unit subtree, at some levels, go."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "North region duty webhook",
                    "scope": "north",
                    "levels": ["orange", "red"],
                    "config": {
                        "type": "webhook",
                        "url": "https://hooks.example.com/qualityloop",
                        "secret": "whsec_ZXhhbXBsZS1vbmx5LWRvLW5vdC11c2Uh",
                    },
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    scope: str = Field(default="*", min_length=1, description="Unit path whose subtree's alerts it receives; *: all")
    levels: list[Level] = Field(default_factory=lambda: list(LEVELS), min_length=1)
    enabled: bool = True
    config: ChannelConfig


class ChannelUpdate(Changes):
    """A change to a channel; a ``config`` replaces the whole config, secrets included (they are write-only)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    scope: str | None = Field(default=None, min_length=1)
    levels: list[Level] | None = Field(default=None, min_length=1)
    enabled: bool | None = None
    config: ChannelConfig | None = None


class ChannelRead(BaseModel):
    """A stored channel as the API shows it: no secret, no password, robot URLs masked."""

    id: str
    org: str
    name: str
    scope: str
    levels: list[Level]
    enabled: bool
    config: ChannelConfigRead
    created_at: datetime
    updated_at: datetime


def stored_config(config: ChannelConfigBase, box: SecretBox) -> dict[str, Any]:
    """A config as stored: plain fields as they are, sealed ones encrypted, robot URLs also kept masked."""
    document = config.model_dump(mode="json", exclude=set(config.sealed_fields))
    sealed = {name: value for name in config.sealed_fields if (value := config.sealed_value(name)) is not None}
    document[SEALED] = {name: box.encrypt(value) for name, value in sealed.items()}
    document[MASKED] = {name: config.masked_value(name) for name in config.masked_fields}
    return document


def config_from_stored(document: dict[str, Any], box: SecretBox) -> ChannelConfig:
    """The config to send with, its secrets decrypted (raises SecretUnreadable if no key opens them)."""
    fields = {name: value for name, value in document.items() if name not in (SEALED, MASKED)}
    fields |= {name: box.decrypt(token) for name, token in document.get(SEALED, {}).items()}
    return CONFIG.validate_python(fields)


def read_config(document: dict[str, Any]) -> ChannelConfigRead:
    """The config as the API shows it, built without decrypting anything."""
    fields = {name: value for name, value in document.items() if name not in (SEALED, MASKED)}
    sealed, masked = document.get(SEALED, {}), document.get(MASKED, {})
    for name in CONFIG_TYPES[document["type"]].sealed_fields:
        if name in masked:
            fields[name] = masked[name]
        else:
            fields[f"{name}_set"] = name in sealed
    return CONFIG_READ.validate_python(fields)


def channel_document(channel_in: ChannelCreate, *, box: SecretBox, id: str, org: str, now: datetime) -> dict[str, Any]:
    """The document to store for a new channel (``_id`` is its id)."""
    return {
        "_id": id,
        "org": org,
        "name": channel_in.name,
        "scope": channel_in.scope,
        "levels": list(channel_in.levels),
        "enabled": channel_in.enabled,
        "config": stored_config(channel_in.config, box),
        "created_at": now,
        "updated_at": now,
    }


def channel_changes(channel_in: ChannelUpdate, *, box: SecretBox, now: datetime) -> dict[str, Any]:
    """The fields to ``$set`` on a stored channel for an update (only those given)."""
    changes: dict[str, Any] = {
        name: value
        for name, value in channel_in.model_dump(exclude_unset=True, exclude={"config"}).items()
        if value is not None
    }
    if channel_in.config is not None:
        changes["config"] = stored_config(channel_in.config, box)
    return changes | {"updated_at": now}


def channel_read(document: dict[str, Any]) -> ChannelRead:
    """A stored channel as the API shows it."""
    return ChannelRead(
        id=document["_id"],
        org=document["org"],
        name=document["name"],
        scope=document["scope"],
        levels=document["levels"],
        enabled=document["enabled"],
        config=read_config(document["config"]),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
    )


def channel_config(document: dict[str, Any], box: SecretBox) -> ChannelConfig:
    """The config of a stored channel, ready to send with."""
    return config_from_stored(document["config"], box)
