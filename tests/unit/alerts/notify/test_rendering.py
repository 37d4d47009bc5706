"""Every channel's message in Chinese and English names the units, indicator, figures, level and link."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default

import pytest

from services.alerts.notify import EmailConfig, texts
from services.alerts.notify.channels import dingtalk, email, feishu, slack, webhook, wecom
from tests.unit.alerts.notify.conftest import STARTED, firing

BRANCHES = tuple(f"north/hebei/branch-{i:02d}" for i in range(12))


@pytest.mark.parametrize(
    ("level", "name"), [("blue", "蓝色预警"), ("yellow", "黄色预警"), ("orange", "橙色预警"), ("red", "红色预警")]
)
def test_title__names_the_four_warning_levels_in_chinese(level, name):
    title = texts.title(firing(level=level), "zh")
    assert name in title and "CSAT 下滑" in title and "north/beijing/chaoyang" in title


def test_title__in_english_says_level_kind_rule_and_unit(notification):
    assert texts.title(notification, "en") == "[Red alert · Firing] CSAT 下滑: north/beijing/chaoyang"


def test_title__of_a_group_names_the_first_unit_and_counts_the_rest():
    assert "north/hebei/branch-00 等 12 个单位" in texts.title(firing(unit_paths=BRANCHES), "zh")
    assert "north/hebei/branch-00 and 11 more" in texts.title(firing(unit_paths=BRANCHES), "en")


@pytest.mark.parametrize(
    ("kind", "zh", "en"),
    [
        ("resolved", "已恢复", "Resolved"),
        ("acknowledged", "已确认", "Acknowledged"),
        ("reminder", "仍在触发", "Still firing"),
    ],
)
def test_title__says_what_happened(kind, zh, en):
    assert zh in texts.title(firing(kind=kind), "zh")
    assert en in texts.title(firing(kind=kind), "en")


def test_title__of_an_escalation_gives_the_step():
    assert "已升级（第 2 步）" in texts.title(firing(kind="escalated", escalation_step=2), "zh")
    assert "Escalated (step 2)" in texts.title(firing(kind="escalated", escalation_step=2), "en")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh",
            [
                "指标: csat",
                "当前值: 58.25",
                "阈值: 70",
                "样本量: 42",
                "预警级别: 红色预警",
                "单位: north/beijing/chaoyang",
            ],
        ),
        ("en", ["Indicator: csat", "Value: 58.25", "Bound: 70", "Sample size: 42", "Level: Red alert"]),
    ],
)
def test_plain_text__names_indicator_value_bound_sample_size_level_and_link(notification, language, expected):
    text = texts.plain_text(notification, language)
    for fact in expected:
        assert fact in text
    assert "https://ql.example.com/alerts/alr_1" in text
    assert "2026-12-03 08:30 UTC" in text


def test_plain_text__lists_every_unit_of_a_group():
    text = texts.plain_text(firing(unit_paths=BRANCHES), "en")
    assert all(branch in text for branch in BRANCHES)


def test_markdown__shows_the_first_ten_units_and_counts_the_rest():
    zh = texts.markdown(firing(unit_paths=BRANCHES), "zh")
    assert "branch-09" in zh and "branch-10" not in zh and "等共 12 个单位" in zh
    assert "and 2 more" in texts.markdown(firing(unit_paths=BRANCHES), "en")


def test_facts__carry_the_acknowledgers_comment(notification):
    facts = dict(texts.facts(firing(kind="acknowledged", actor="li.lei", comment="已安排店长复盘"), "zh"))
    assert facts["处理人"] == "li.lei" and facts["备注"] == "已安排店长复盘"


def test_html_text__escapes_what_people_typed():
    html = texts.html_text(firing(comment="<script>alert(1)</script>", actor="x"), "en")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_webhook_payload__has_the_stable_schema(notification):
    body = webhook.payload(notification, message_id="dlv_1", language="en")
    assert set(body) == {"type", "id", "timestamp", "data"}
    assert body["type"] == "alert.firing" and body["id"] == "dlv_1" and body["timestamp"] == "2026-12-03T08:30:00Z"
    data = body["data"]
    assert data["unit_paths"] == ["north/beijing/chaoyang"] and data["level"] == "red"
    assert (data["value"], data["bound"], data["sample_size"]) == (58.25, 70.0, 42)
    assert data["link"] == "https://ql.example.com/alerts/alr_1" and data["title"].startswith("[Red alert")
    json.dumps(body)  # serialisable as it is


def test_wecom_payload__is_documented_markdown_in_the_size_limit():
    body = wecom.payload(firing(unit_paths=tuple(f"华北/河北/网点-{i:03d}" for i in range(400))), "zh")
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith('## <font color="warning">【红色预警·触发】')
    assert len(content.encode()) <= wecom.CONTENT_LIMIT_BYTES


def test_wecom_payload__of_a_recovery_is_green(notification):
    assert wecom.payload(firing(kind="resolved"), "zh")["markdown"]["content"].startswith('## <font color="info">')


def test_dingtalk_payload__is_documented_markdown_with_title_and_link(notification):
    body = dingtalk.payload(notification, "zh")
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("【红色预警")
    assert "[查看预警](https://ql.example.com/alerts/alr_1)" in body["markdown"]["text"]


def test_feishu_payload__is_an_interactive_card_coloured_by_level_and_signed():
    body = feishu.payload(firing(level="orange"), "en", secret="s", timestamp=1599360473)
    assert body["msg_type"] == "interactive"
    assert body["timestamp"] == "1599360473" and body["sign"] == feishu.sign("s", 1599360473)
    card = body["card"]
    assert card["header"]["template"] == "orange"
    assert card["header"]["title"]["content"].startswith("[Orange alert")
    assert card["elements"][1]["actions"][0]["url"] == "https://ql.example.com/alerts/alr_1"


def test_feishu_payload__without_a_secret_carries_no_signature(notification):
    assert "sign" not in feishu.payload(notification, "zh", secret=None)


def test_slack_payload__has_text_header_and_mrkdwn_link(notification):
    body = slack.payload(notification, "en")
    assert body["text"].startswith("[Red alert")
    assert body["blocks"][0]["type"] == "header"
    section = body["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "<https://ql.example.com/alerts/alr_1|Open the alert>" in section["text"]
    assert "*Value*: 58.25" in section["text"]


def test_email_message__has_text_and_html_alternatives_and_the_delivery_id(notification):
    config = EmailConfig(
        host="smtp.example.com", sender="QualityLoop <alerts@example.com>", recipients=["qm@example.com"]
    )
    mail = email.message(config, notification, message_id="dlv_9")
    parsed = message_from_bytes(bytes(mail), policy=default)
    assert parsed["Subject"].startswith("【红色预警·触发】")
    assert parsed["Message-ID"] == "<dlv_9@qualityloop>"
    assert parsed.get_content_type() == "multipart/alternative"
    assert "当前值: 58.25" in parsed.get_body(("plain",)).get_content()
    assert "<table>" in parsed.get_body(("html",)).get_content()


def test_sample_notification__reads_as_a_test(notification):
    from services.alerts.notify import sample_notification

    sample = sample_notification(org="acme", link="https://ql.example.com/channels/ch_1", at=STARTED)
    assert texts.title(sample, "zh").startswith("【测试】")
    assert "set up correctly" in texts.plain_text(sample, "en")


def test_facts__show_times_in_the_organisations_time_zone():
    assert "2026-12-03 16:30 CST" in texts.plain_text(firing(time_zone="Asia/Shanghai"), "zh")


def test_facts__show_utc_for_an_unknown_time_zone():
    assert "2026-12-03 08:30 UTC" in texts.plain_text(firing(time_zone="Mars/Olympus"), "en")


def test_title__keeps_a_rule_name_with_line_breaks_on_one_line():
    title = texts.title(firing(rule_name="CSAT\r\n下滑"), "zh")
    assert "\n" not in title and "CSAT 下滑" in title


def test_email_message__survives_a_rule_name_with_line_breaks():
    config = EmailConfig(host="smtp.example.com", sender="alerts@example.com", recipients=["qm@example.com"])
    mail = email.message(config, firing(rule_name="x\nBcc: victim@example.com"), message_id="dlv_1")
    assert mail["Bcc"] is None and "x Bcc: victim@example.com" in mail["Subject"]


def test_slack_payload__escapes_markup_people_typed():
    text = slack.payload(firing(comment="<!channel> & more", actor="x"), "en")["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; &amp; more" in text


def test_webhook_payload__reads_naive_times_as_utc():
    naive = STARTED.replace(tzinfo=None)
    body = webhook.payload(firing(started_at=naive, occurred_at=naive), message_id="dlv_1", language="zh")
    assert body["timestamp"] == body["data"]["started_at"] == "2026-12-03T08:30:00Z"


def test_robot_payloads__stay_inside_the_vendors_size_limits_with_a_long_comment():
    long = firing(kind="acknowledged", actor="x", comment="复盘" * 20000)
    assert len(dingtalk.payload(long, "zh")["markdown"]["text"].encode()) <= dingtalk.TEXT_LIMIT_BYTES
    assert len(json.dumps(feishu.payload(long, "zh", secret="s"), ensure_ascii=False).encode()) < 20 * 1024
    assert len(slack.payload(long, "zh")["blocks"][1]["text"]["text"]) <= slack.SECTION_LIMIT
