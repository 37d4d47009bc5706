"""WeCom, DingTalk, Feishu and Slack payloads accepted by receivers checking each vendor's format and signature."""

from __future__ import annotations

import json

from services.alerts.notify import DingTalkConfig, FeishuConfig, SlackConfig, WeComConfig, send
from tests.integration.alerts.notify.conftest import Receivers, firing


async def test_wecom__markdown_is_accepted(receivers: Receivers, http):
    config = WeComConfig(url=f"{receivers.base_url}/cgi-bin/webhook/send?key={receivers.wecom_key}")
    attempt = await send(config, firing(), http=http, message_id="dlv_w")
    assert attempt.ok, attempt.error
    content = json.loads(receivers.last("/cgi-bin").body)["markdown"]["content"]
    assert "红色预警" in content and "north/beijing/chaoyang" in content and "58.25" in content


async def test_wecom__a_wrong_key_fails_without_retry(receivers: Receivers, http):
    config = WeComConfig(url=f"{receivers.base_url}/cgi-bin/webhook/send?key=wrong")
    attempt = await send(config, firing(), http=http, message_id="dlv_w2")
    assert (attempt.ok, attempt.retryable) == (False, False)
    assert "93000" in (attempt.error or "")


async def test_dingtalk__signed_markdown_is_accepted(receivers: Receivers, http):
    config = DingTalkConfig(
        url=f"{receivers.base_url}/robot/send?access_token={receivers.dingtalk_token}",
        secret=receivers.dingtalk_secret,
        language="en",
    )
    attempt = await send(config, firing(), http=http, message_id="dlv_d")
    assert attempt.ok, attempt.error
    text = json.loads(receivers.last("/robot/send").body)["markdown"]["text"]
    assert "Red alert" in text and "Sample size" in text and "https://ql.example.com/alerts/alr_1" in text


async def test_dingtalk__a_wrong_secret_fails_the_signature_check(receivers: Receivers, http):
    config = DingTalkConfig(
        url=f"{receivers.base_url}/robot/send?access_token={receivers.dingtalk_token}", secret="SECnot-the-secret"
    )
    attempt = await send(config, firing(), http=http, message_id="dlv_d2")
    assert (attempt.ok, attempt.retryable) == (False, False)
    assert "310000" in (attempt.error or "")


async def test_feishu__signed_card_is_accepted(receivers: Receivers, http):
    config = FeishuConfig(
        url=f"{receivers.base_url}/open-apis/bot/v2/hook/{receivers.feishu_token}", secret=receivers.feishu_secret
    )
    attempt = await send(config, firing(), http=http, message_id="dlv_f")
    assert attempt.ok, attempt.error
    card = json.loads(receivers.last("/open-apis").body)["card"]
    assert card["header"]["template"] == "red" and "CSAT 下滑" in card["header"]["title"]["content"]


async def test_feishu__unsigned_message_to_a_signing_bot_is_refused(receivers: Receivers, http):
    config = FeishuConfig(url=f"{receivers.base_url}/open-apis/bot/v2/hook/{receivers.feishu_token}")
    attempt = await send(config, firing(), http=http, message_id="dlv_f2")
    assert (attempt.ok, attempt.retryable) == (False, False)
    assert "19021" in (attempt.error or "")


async def test_slack__blocks_are_accepted(receivers: Receivers, http):
    config = SlackConfig(url=f"{receivers.base_url}/services/T0001/B0001/{receivers.slack_token}", language="en")
    attempt = await send(config, firing(), http=http, message_id="dlv_s")
    assert attempt.ok, attempt.error
    message = json.loads(receivers.last("/services").body)
    assert message["text"].startswith("[Red alert") and message["blocks"][0]["type"] == "header"


async def test_slack__a_revoked_webhook_fails_without_retry(receivers: Receivers, http):
    config = SlackConfig(url=f"{receivers.base_url}/services/T0001/B0001/revokedrevokedrevoked")
    attempt = await send(config, firing(), http=http, message_id="dlv_s2")
    assert (attempt.ok, attempt.status_code, attempt.retryable) == (False, 403, False)
    assert "invalid_token" in (attempt.error or "")
