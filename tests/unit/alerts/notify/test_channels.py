"""Channel schemas: each type validated by field, secrets sealed at rest and never read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.alerts.notify import (
    ChannelCreate,
    ChannelUpdate,
    SecretBox,
    SecretUnreadable,
    channel_changes,
    channel_config,
    channel_document,
    channel_read,
    new_key,
    new_webhook_secret,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
WEBHOOK_SECRET = new_webhook_secret()
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DINGTALK_TOKEN = "1c53e149d8b3f5b3e1e1f5a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0"
FEISHU_TOKEN = "2a7c3b1e-5d4f-4e6a-9b8c-0d1e2f3a4b5c"
SLACK_TOKEN = "XXXXXXXXXXXXXXXXXXXXXXXX"
SECRETS = [
    WEBHOOK_SECRET,
    WECOM_KEY,
    DINGTALK_TOKEN,
    FEISHU_TOKEN,
    SLACK_TOKEN,
    "SECdingsecret",
    "feishu-secret",
    "pa55",
]

CONFIGS: dict[str, dict[str, Any]] = {
    "webhook": {"type": "webhook", "url": "https://hooks.example.com/ql", "secret": WEBHOOK_SECRET},
    "email": {
        "type": "email",
        "host": "smtp.example.com",
        "port": 465,
        "security": "ssl",
        "username": "alerts",
        "password": "pa55",
        "sender": "QualityLoop <alerts@example.com>",
        "recipients": ["qm@example.com", "ops@example.com"],
    },
    "wecom": {"type": "wecom", "url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"},
    "dingtalk": {
        "type": "dingtalk",
        "url": f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}",
        "secret": "SECdingsecret",
    },
    "feishu": {
        "type": "feishu",
        "url": f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_TOKEN}",
        "secret": "feishu-secret",
        "language": "en",
    },
    "slack": {"type": "slack", "url": f"https://hooks.slack.com/services/T0001/B0001/{SLACK_TOKEN}"},
}


@pytest.fixture(scope="module")
def box() -> SecretBox:
    """A box with a fresh key."""
    return SecretBox(new_key())


def stored(config: dict, box: SecretBox) -> dict:
    """The stored document of a channel with this config."""
    channel_in = ChannelCreate(name="Quality managers", scope="north", config=config)
    return channel_document(channel_in, box=box, id="chn_1", org="acme", now=NOW)


@pytest.mark.parametrize("kind", CONFIGS)
def test_stored_document__holds_no_secret_in_the_clear(kind, box):
    assert not any(secret in repr(stored(CONFIGS[kind], box)) for secret in SECRETS)


@pytest.mark.parametrize("kind", CONFIGS)
def test_channel_read__shows_no_secret(kind, box):
    read = channel_read(stored(CONFIGS[kind], box))
    dumped = read.model_dump_json()
    assert read.config.type == kind and read.org == "acme" and read.scope == "north"
    assert not any(secret in dumped for secret in SECRETS)


@pytest.mark.parametrize("kind", CONFIGS)
def test_channel_config__round_trips_through_encryption(kind, box):
    config = channel_config(stored(CONFIGS[kind], box), box)
    original = ChannelCreate(name="x", config=CONFIGS[kind]).config
    assert config == original


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("webhook", {"url": "https://hooks.example.com/ql", "secret_set": True}),
        ("email", {"password_set": True, "username": "alerts", "security": "ssl"}),
        ("wecom", {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=****5aaa"}),
        ("dingtalk", {"url": "https://oapi.dingtalk.com/robot/send?access_token=****b9c0", "secret_set": True}),
        ("feishu", {"url": "https://open.feishu.cn/open-apis/bot/v2/hook/****4b5c", "secret_set": True}),
        ("slack", {"url": "https://hooks.slack.com/services/T0001/B0001/****XXXX"}),
    ],
)
def test_channel_read__masks_robot_urls_and_says_secrets_are_set(kind, expected, box):
    shown = channel_read(stored(CONFIGS[kind], box)).config.model_dump()
    assert shown | expected == shown


def test_channel_read__says_an_unsigned_robot_has_no_secret(box):
    config = CONFIGS["dingtalk"] | {"secret": None}
    assert channel_read(stored(config, box)).config.model_dump()["secret_set"] is False


def test_secret_box__decrypts_with_an_old_key_after_rotation():
    old, new = new_key(), new_key()
    token = SecretBox(old).encrypt("机密")
    assert SecretBox(f"{new},{old}").decrypt(token) == "机密"


def test_secret_box__refuses_a_token_of_another_key():
    with pytest.raises(SecretUnreadable):
        SecretBox(new_key()).decrypt(SecretBox(new_key()).encrypt("x"))


@pytest.mark.parametrize("key", ["", "not-a-fernet-key"])
def test_secret_box__refuses_a_malformed_key_at_once(key):
    with pytest.raises(ValueError):
        SecretBox(key)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"type": "webhook", "url": "ftp://x", "secret": WEBHOOK_SECRET}, "url"),
        ({"type": "webhook", "url": "https://x.example.com"}, "secret"),
        ({"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "url"),
        ({"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?token=x"}, "url"),
        ({"type": "dingtalk", "url": CONFIGS["dingtalk"]["url"], "secret": " "}, "secret"),
        ({"type": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/"}, "url"),
        ({"type": "slack", "url": "https://hooks.slack.com/"}, "url"),
        ({"type": "slack", "url": CONFIGS["slack"]["url"], "language": "fr"}, "language"),
        (CONFIGS["email"] | {"port": 70000}, "port"),
        (CONFIGS["email"] | {"security": "tls"}, "security"),
        (CONFIGS["email"] | {"sender": "alerts"}, "sender"),
        (CONFIGS["email"] | {"recipients": []}, "recipients"),
        (CONFIGS["email"] | {"recipients": ["qm@example.com", "nobody"]}, "recipients"),
        (CONFIGS["webhook"] | {"colour": "red"}, "colour"),
    ],
)
def test_channel_create__names_the_invalid_field(config, field):
    with pytest.raises(ValidationError) as caught:
        ChannelCreate(name="x", config=config)
    locs = [error["loc"] for error in caught.value.errors()]
    assert any(loc[:2] == ("config", config["type"]) and field in loc for loc in locs), locs


def test_channel_create__refuses_a_password_without_username():
    with pytest.raises(ValidationError, match="username and password go together"):
        ChannelCreate(name="x", config=CONFIGS["email"] | {"username": None})


def test_channel_create__refuses_an_unknown_type():
    with pytest.raises(ValidationError) as caught:
        ChannelCreate(name="x", config={"type": "pager", "url": "https://x"})
    assert caught.value.errors()[0]["loc"] == ("config",)


def test_channel_create__defaults_to_every_level_and_chinese():
    channel = ChannelCreate(name="x", config=CONFIGS["slack"])
    assert channel.levels == ["blue", "yellow", "orange", "red"] and channel.config.language == "zh"


def test_channel_changes__set_only_what_was_given_and_reseal_a_new_config(box):
    changes = channel_changes(ChannelUpdate(enabled=False, config=CONFIGS["wecom"]), box=box, now=NOW)
    assert set(changes) == {"enabled", "config", "updated_at"}
    assert changes["enabled"] is False and WECOM_KEY not in repr(changes)
    assert channel_config({"config": changes["config"]}, box).url.endswith(WECOM_KEY)
