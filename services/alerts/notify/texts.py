"""The words of a notification in Chinese and English, and the facts every channel shows."""

from __future__ import annotations

import html
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.alerts.notify.notification import Language, Level, Notification, NotificationKind

# A regional group can hold fifty branches; robots show the first few and a count, email shows all.
UNITS_SHOWN = 10

LEVEL_NAMES: dict[Language, dict[Level, str]] = {
    "zh": {"blue": "蓝色预警", "yellow": "黄色预警", "orange": "橙色预警", "red": "红色预警"},
    "en": {"blue": "Blue alert", "yellow": "Yellow alert", "orange": "Orange alert", "red": "Red alert"},
}
# Colours a channel can show the level in (Slack attachments, email headings).
LEVEL_COLOURS: dict[Level, str] = {"blue": "#1f6feb", "yellow": "#d4a72c", "orange": "#e8590c", "red": "#cf222e"}

KIND_NAMES: dict[Language, dict[NotificationKind, str]] = {
    "zh": {
        "firing": "触发",
        "resolved": "已恢复",
        "acknowledged": "已确认",
        "escalated": "已升级",
        "reminder": "仍在触发",
        "test": "测试",
    },
    "en": {
        "firing": "Firing",
        "resolved": "Resolved",
        "acknowledged": "Acknowledged",
        "escalated": "Escalated",
        "reminder": "Still firing",
        "test": "Test",
    },
}

LABELS: dict[Language, dict[str, str]] = {
    "zh": {
        "rule": "规则",
        "level": "预警级别",
        "units": "单位",
        "indicator": "指标",
        "value": "当前值",
        "bound": "阈值",
        "sample_size": "样本量",
        "period": "周期",
        "started_at": "开始时间",
        "escalation_step": "升级步骤",
        "actor": "处理人",
        "comment": "备注",
        "link": "查看预警",
        "test": "这是一条测试消息：此通知渠道配置正确。",
    },
    "en": {
        "rule": "Rule",
        "level": "Level",
        "units": "Units",
        "indicator": "Indicator",
        "value": "Value",
        "bound": "Bound",
        "sample_size": "Sample size",
        "period": "Period",
        "started_at": "Started",
        "escalation_step": "Escalation step",
        "actor": "By",
        "comment": "Comment",
        "link": "Open the alert",
        "test": "This is a test message: this notification channel is set up correctly.",
    },
}


def level_name(level: Level, language: Language) -> str:
    """The level as people say it: 红色预警, Red alert."""
    return LEVEL_NAMES[language][level]


def kind_name(notification: Notification, language: Language) -> str:
    """What happened, with the escalation step when there is one."""
    name = KIND_NAMES[language][notification.kind]
    if notification.kind == "escalated" and notification.escalation_step is not None:
        step = notification.escalation_step
        return f"{name}（第 {step} 步）" if language == "zh" else f"{name} (step {step})"
    return name


def number(value: float | None) -> str:
    """A figure as a reader wants it: two decimals at most, no trailing zeros."""
    if value is None:
        return "-"
    return f"{round(value, 2):g}"


def utc(at: datetime) -> datetime:
    """A time in UTC; a naive one is taken to be UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def moment(at: datetime, time_zone: str = "UTC") -> str:
    """A time in the organisation's time zone (UTC if it is unknown), to the minute, with the zone's name."""
    try:
        zone: tzinfo = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return utc(at).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def units_summary(notification: Notification, language: Language, *, shown: int = UNITS_SHOWN) -> str:
    """The units of the group, the first ``shown`` by path and how many more."""
    paths = notification.unit_paths
    listed = "、".join(paths[:shown]) if language == "zh" else ", ".join(paths[:shown])
    more = len(paths) - shown
    if more <= 0:
        return listed
    return f"{listed} 等共 {len(paths)} 个单位" if language == "zh" else f"{listed} and {more} more"


def units_short(notification: Notification, language: Language) -> str:
    """The first unit and how many others, for a title."""
    paths = notification.unit_paths
    if len(paths) <= 1:
        return paths[0] if paths else ""
    return f"{paths[0]} 等 {len(paths)} 个单位" if language == "zh" else f"{paths[0]} and {len(paths) - 1} more"


def title(notification: Notification, language: Language) -> str:
    """One line: level, what happened, rule and where."""
    if notification.kind == "test":
        return "【测试】QualityLoop 通知渠道" if language == "zh" else "[Test] QualityLoop notification channel"
    level, kind = level_name(notification.level, language), kind_name(notification, language)
    # One line whatever people typed: a line break in a mail header is refused, in a robot title it breaks it.
    rule, where = one_line(notification.rule_name), one_line(units_short(notification, language))
    if language == "zh":
        return f"【{level}·{kind}】{rule}：{where}"
    return f"[{level} · {kind}] {rule}: {where}"


def one_line(text: str) -> str:
    """The text with every run of whitespace, line breaks included, as one space."""
    return " ".join(text.split())


def facts(notification: Notification, language: Language, *, shown: int | None = UNITS_SHOWN) -> list[tuple[str, str]]:
    """The labelled facts of a notification, in reading order (no link: each format places it)."""
    label = LABELS[language]
    if notification.kind == "test":
        return [("", label["test"])]
    units = units_summary(notification, language, shown=shown if shown is not None else len(notification.unit_paths))
    rows = [
        (label["rule"], notification.rule_name),
        (label["level"], level_name(notification.level, language)),
        (label["units"], units),
        (label["indicator"], notification.indicator),
        (label["value"], number(notification.value)),
        (label["bound"], number(notification.bound)),
        (label["sample_size"], "-" if notification.sample_size is None else str(notification.sample_size)),
        (label["period"], notification.period),
        (label["started_at"], moment(notification.started_at, notification.time_zone)),
    ]
    if notification.escalation_step is not None:
        rows.append((label["escalation_step"], str(notification.escalation_step)))
    if notification.actor:
        rows.append((label["actor"], notification.actor))
    if notification.comment:
        rows.append((label["comment"], notification.comment))
    return rows


def markdown(notification: Notification, language: Language, *, bold: str = "**") -> str:
    """The facts as markdown lines and the link, for robots (``bold`` is ``*`` for Slack's mrkdwn)."""
    rows = facts(notification, language)
    if bold == "*":
        # Slack's mrkdwn reads &, < and > as markup: escaped as its documentation asks.
        rows = [(name, slack_escape(value)) for name, value in rows]
    lines = [f"{bold}{name}{bold}: {value}" if name else value for name, value in rows]
    link_label = LABELS[language]["link"]
    if bold == "*":
        lines.append(f"<{notification.link}|{link_label}>")
    else:
        lines.append(f"[{link_label}]({notification.link})")
    return "\n".join(lines)


def truncate_utf8(text: str, limit: int) -> str:
    """The text cut to at most ``limit`` bytes of UTF-8 without splitting a character."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def slack_escape(text: str) -> str:
    """Text shown as itself in Slack's mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_text(notification: Notification, language: Language) -> str:
    """The whole message as plain text, every unit listed."""
    lines = [title(notification, language), ""]
    lines += [f"{name}: {value}" if name else value for name, value in facts(notification, language, shown=None)]
    lines += ["", f"{LABELS[language]['link']}: {notification.link}"]
    return "\n".join(lines) + "\n"


def html_text(notification: Notification, language: Language) -> str:
    """The whole message as a small HTML document, every unit listed."""
    esc = html.escape
    colour = LEVEL_COLOURS[notification.level]
    rows = "".join(
        f"<tr><th align='left' style='padding:2px 12px 2px 0'>{esc(name)}</th><td>{esc(value)}</td></tr>"
        for name, value in facts(notification, language, shown=None)
    )
    link = LABELS[language]["link"]
    return (
        f"<!DOCTYPE html><html lang='{language}'><head><meta charset='utf-8'></head><body>"
        f"<h2 style='color:{colour}'>{esc(title(notification, language))}</h2>"
        f"<table>{rows}</table>"
        f"<p><a href='{esc(notification.link, quote=True)}'>{esc(link)}</a></p>"
        "</body></html>"
    )
