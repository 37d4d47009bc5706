"""Standard Webhooks signing: the specification's test vector, replays refused, the reference library agrees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from services.alerts.notify import WebhookConfig, WebhookRejected, new_webhook_secret, verify_webhook
from services.alerts.notify.channels.webhook import sign, signed_headers

# The test vector the Standard Webhooks reference libraries all check.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SIGNED_AT = datetime.fromtimestamp(TIMESTAMP, UTC)
HEADERS = {"webhook-id": MESSAGE_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}


def test_sign__reproduces_the_specification_test_vector():
    assert sign(SECRET, MESSAGE_ID, TIMESTAMP, BODY) == SIGNATURE


def test_signed_headers__carry_id_timestamp_and_signature():
    assert signed_headers(SECRET, MESSAGE_ID, BODY, now=SIGNED_AT) == HEADERS


def test_verify_webhook__accepts_the_test_vector_and_returns_the_body():
    assert verify_webhook(SECRET, BODY, HEADERS, now=SIGNED_AT + timedelta(seconds=30)) == {"test": 2432232314}


def test_verify_webhook__accepts_one_matching_signature_among_several():
    headers = HEADERS | {"webhook-signature": f"v1,bm9wZQ== {SIGNATURE}"}
    assert verify_webhook(SECRET, BODY, headers, now=SIGNED_AT) == {"test": 2432232314}


def test_verify_webhook__refuses_a_replay_older_than_the_tolerance():
    with pytest.raises(WebhookRejected, match="tolerance"):
        verify_webhook(SECRET, BODY, HEADERS, now=SIGNED_AT + timedelta(minutes=5, seconds=1))


def test_verify_webhook__refuses_a_timestamp_from_the_future():
    with pytest.raises(WebhookRejected, match="tolerance"):
        verify_webhook(SECRET, BODY, HEADERS, now=SIGNED_AT - timedelta(minutes=6))


def test_verify_webhook__refuses_a_changed_body():
    with pytest.raises(WebhookRejected, match="no signature"):
        verify_webhook(SECRET, b'{"test": 2432232315}', HEADERS, now=SIGNED_AT)


def test_verify_webhook__refuses_a_moved_timestamp_even_inside_the_tolerance():
    headers = HEADERS | {"webhook-timestamp": str(TIMESTAMP + 1)}
    with pytest.raises(WebhookRejected, match="no signature"):
        verify_webhook(SECRET, BODY, headers, now=SIGNED_AT)


def test_verify_webhook__refuses_another_secret():
    with pytest.raises(WebhookRejected, match="no signature"):
        verify_webhook(new_webhook_secret(), BODY, HEADERS, now=SIGNED_AT)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_webhook__refuses_a_missing_header(missing):
    headers = {name: value for name, value in HEADERS.items() if name != missing}
    with pytest.raises(WebhookRejected, match="missing"):
        verify_webhook(SECRET, BODY, headers, now=SIGNED_AT)


def test_verify_webhook__reads_headers_in_any_case():
    headers = {name.title(): value for name, value in HEADERS.items()}
    assert verify_webhook(SECRET, BODY, headers, now=SIGNED_AT) == {"test": 2432232314}


def test_the_reference_library__verifies_what_we_sign_now():
    secret, body = new_webhook_secret(), '{"type":"alert.firing","data":{"unit":"华北/北京"}}'.encode()
    headers = signed_headers(secret, "dlv_1", body)
    assert Webhook(secret).verify(body, headers) == {"type": "alert.firing", "data": {"unit": "华北/北京"}}


def test_new_webhook_secret__is_whsec_and_32_bytes_of_base64():
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert WebhookConfig(url="https://example.com/hook", secret=secret).secret.get_secret_value() == secret


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("whsec_not base64!", "base64"),
        ("whsec_c2hvcnQ=", "24 to 64 bytes"),
    ],
)
def test_webhook_config__refuses_a_malformed_secret(secret, reason):
    with pytest.raises(ValidationError, match=reason) as caught:
        WebhookConfig(url="https://example.com/hook", secret=secret)
    assert caught.value.errors()[0]["loc"] == ("secret",)
