"""Email reaches a real SMTP server with a text and an HTML part."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from services.alerts.notify import EmailConfig, send
from tests.integration.alerts.notify.conftest import SMTP_PASSWORD, SMTP_USER, MailServer, firing


def config(smtp: MailServer, **changes) -> EmailConfig:
    """An email channel through the test's SMTP server."""
    fields = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": "none",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "sender": "QualityLoop <alerts@example.com>",
        "recipients": ["qm@example.com", "ops@example.com"],
    }
    return EmailConfig.model_validate(fields | changes)


async def test_email__arrives_with_text_and_html_alternatives(smtp: MailServer, http):
    attempt = await send(config(smtp), firing(), http=http, message_id="dlv_mail")
    assert (attempt.ok, attempt.status_code, attempt.error) == (True, 250, None)

    envelope = smtp.handler.envelopes[-1]
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == ["qm@example.com", "ops@example.com"]
    assert isinstance(envelope.original_content, bytes)
    mail = message_from_bytes(envelope.original_content, policy=default)
    assert mail["Subject"].startswith("【红色预警·触发】CSAT 下滑")
    assert mail["Message-ID"] == "<dlv_mail@qualityloop>"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "当前值: 58.25" in text and "样本量: 42" in text and "https://ql.example.com/alerts/alr_1" in text
    assert "north/beijing/chaoyang" in html and "href='https://ql.example.com/alerts/alr_1'" in html


async def test_email__a_wrong_password_fails_without_retry(smtp: MailServer, http):
    received = len(smtp.handler.envelopes)
    attempt = await send(config(smtp, password="wrong"), firing(), http=http, message_id="dlv_mail2")
    assert (attempt.ok, attempt.status_code, attempt.retryable) == (False, 535, False)
    assert len(smtp.handler.envelopes) == received
