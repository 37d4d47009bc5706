"""DingTalk's and Feishu's robot signatures, computed as their documentation's sample code does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

from services.alerts.notify.channels import dingtalk, feishu

SECRET = "SEC3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"


def dingtalk_documented_sign(timestamp: str, secret: str) -> str:
    """The DingTalk custom-robot documentation's Python sample (加签), line for line."""
    secret_enc = secret.encode("utf-8")
    string_to_sign = f"{timestamp}\n{secret}"
    string_to_sign_enc = string_to_sign.encode("utf-8")
    hmac_code = hmac.new(secret_enc, string_to_sign_enc, digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(hmac_code))


def feishu_documented_sign(timestamp: int, secret: str) -> str:
    """The Feishu custom-bot documentation's Python sample (gen_sign), line for line."""
    string_to_sign = f"{timestamp}\n{secret}"
    hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    return base64.b64encode(hmac_code).decode("utf-8")


def test_dingtalk_sign__matches_the_documented_sample_code():
    assert dingtalk.sign(SECRET, 1577262236757) == dingtalk_documented_sign("1577262236757", SECRET)


def test_dingtalk_sign__is_urlencoded_base64_of_32_bytes():
    signature = dingtalk.sign(SECRET, 1577262236757)
    assert "+" not in signature and "/" not in signature and "=" not in signature
    assert len(base64.b64decode(urllib.parse.unquote_plus(signature))) == 32


def test_dingtalk_signed_url__appends_timestamp_and_sign_to_the_access_token():
    url = dingtalk.signed_url(
        "https://oapi.dingtalk.com/robot/send?access_token=abc", SECRET, timestamp_ms=1577262236757
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["access_token"] == ["abc"]
    assert query["timestamp"] == ["1577262236757"]
    # parse_qs decodes the sign once, as DingTalk does: what remains is the plain base64 HMAC.
    assert query["sign"] == [urllib.parse.unquote_plus(dingtalk_documented_sign("1577262236757", SECRET))]


def test_dingtalk_signed_url__is_the_url_itself_without_a_secret():
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    assert dingtalk.signed_url(url, None) == url


def test_feishu_sign__matches_the_documented_sample_code():
    assert feishu.sign("demo-secret", 1599360473) == feishu_documented_sign(1599360473, "demo-secret")


def test_feishu_sign__keys_the_hmac_with_timestamp_and_secret_over_an_empty_message():
    expected = hmac.new(b"1599360473\ndemo-secret", b"", hashlib.sha256).digest()
    assert base64.b64decode(feishu.sign("demo-secret", 1599360473)) == expected


def test_feishu_sign__differs_from_dingtalks_construction():
    # The two vendors swap key and message; using one's code for the other fails their check.
    assert feishu.sign(SECRET, 1599360473) != urllib.parse.unquote_plus(dingtalk.sign(SECRET, 1599360473))
