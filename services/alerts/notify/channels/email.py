"""Email over SMTP: one message with a plain-text and an HTML alternative."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import ClassVar, Literal

import aiosmtplib
import httpx
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from services.alerts.notify import texts
from services.alerts.notify.channels.base import ChannelConfigBase
from services.alerts.notify.delivery import Attempt, elapsed_ms, failed
from services.alerts.notify.notification import Language, Notification

# Bounded like the HTTP channels: a dead mail server holds a delivery job for seconds. The timeout is
# per SMTP command; the deadline bounds the whole conversation.
SMTP_TIMEOUT_SECONDS = 15.0
SMTP_DEADLINE_SECONDS = 30.0
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")


def check_address(address: str) -> str:
    """An address (with or without a display name), or a ValueError."""
    _, bare = parseaddr(address)
    if not ADDRESS.match(bare):
        raise ValueError(f"not an email address: {address!r}")
    return address


class EmailConfig(ChannelConfigBase):
    """An SMTP server to submit through and who the message is from and to."""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade a plain connection (port 587); ssl: TLS from the start (port 465); none: local relays.
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    sender: str = Field(min_length=3, max_length=320, description="From: address, e.g. 'QualityLoop <a@b.cn>'")
    recipients: list[str] = Field(min_length=1, max_length=100)

    sealed_fields: ClassVar[tuple[str, ...]] = ("password",)

    @field_validator("sender")
    @classmethod
    def _sender(cls, sender: str) -> str:
        return check_address(sender)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, recipients: list[str]) -> list[str]:
        return [check_address(address) for address in recipients]

    @model_validator(mode="after")
    def _login_pairs(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class EmailRead(BaseModel):
    """An email channel as the API shows it: the password only as set or not."""

    type: Literal["email"]
    language: Language
    host: str
    port: int
    security: Literal["starttls", "ssl", "none"]
    username: str | None
    password_set: bool
    sender: str
    recipients: list[str]


def message(config: EmailConfig, notification: Notification, *, message_id: str) -> EmailMessage:
    """The email: subject, text and HTML parts; its Message-ID is the delivery's, the same on retries."""
    language = config.language
    mail = EmailMessage()
    mail["Subject"] = texts.title(notification, language)
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.recipients)
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = f"<{message_id}@qualityloop>"
    mail["X-QualityLoop-Group"] = notification.group_id
    mail.set_content(texts.plain_text(notification, language))
    mail.add_alternative(texts.html_text(notification, language), subtype="html")
    return mail


async def send(config: EmailConfig, notification: Notification, *, http: httpx.AsyncClient, message_id: str) -> Attempt:
    """Submit the message to the SMTP server; a refusal or a dead server is a failed attempt."""
    del http  # the interface's; email does not go over HTTP
    at, started = datetime.now(UTC), time.perf_counter()
    mail = message(config, notification, message_id=message_id)
    try:
        async with asyncio.timeout(SMTP_DEADLINE_SECONDS):
            refused, _reply = await aiosmtplib.send(
                mail,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password.get_secret_value() if config.password else None,
                use_tls=config.security == "ssl",
                start_tls=config.security == "starttls",
                timeout=SMTP_TIMEOUT_SECONDS,
            )
    except aiosmtplib.SMTPResponseException as error:
        # 4xx replies are transient by the SMTP standard; 5xx (unknown user, bad login) will not pass.
        return failed(
            f"SMTP {error.code}: {error.message}",
            started=started,
            at=at,
            status_code=error.code,
            retryable=error.code < 500,
        )
    except TimeoutError:
        return failed(f"no answer within {SMTP_DEADLINE_SECONDS:g} s", started=started, at=at, retryable=True)
    except (aiosmtplib.SMTPException, OSError) as error:
        return failed(f"{type(error).__name__}: {error}", started=started, at=at, retryable=True)
    note = "; ".join(f"{address} refused: {code} {text}" for address, (code, text) in refused.items()) or None
    return Attempt(ok=True, status_code=250, error=note, duration_ms=elapsed_ms(started), at=at)
