import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.feedback.enrichment import (
    MAX_ANALYSED_CHARS,
    MAX_KEYWORDS,
    Enrichment,
    detect_language,
    enrich,
)

REPO_ROOT = Path(__file__).resolve().parents[3]

ZH_PRAISE = "服务态度非常好，办理速度很快，非常满意"
ZH_COMPLAINT = "排队等了一个小时，工作人员态度恶劣，太失望了"
EN_PRAISE = "The staff were friendly and helpful, great service"
EN_COMPLAINT = "Terrible service, waited an hour and nobody helped"


def test_enrich__detects_chinese_praise_as_positive() -> None:
    result = enrich(ZH_PRAISE)

    assert result.language == "zh"
    assert result.polarity == "positive"
    assert result.sentiment is not None and result.sentiment > 0.6
    assert {"服务态度", "满意"} <= set(result.keywords)


def test_enrich__detects_chinese_complaint_as_negative() -> None:
    result = enrich(ZH_COMPLAINT)

    assert result.language == "zh"
    assert result.polarity == "negative"
    assert result.sentiment is not None and result.sentiment < 0.4
    assert "排队" in result.keywords
    assert any("态度" in keyword for keyword in result.keywords)


def test_enrich__detects_english_praise_as_positive() -> None:
    result = enrich(EN_PRAISE)

    assert result.language == "en"
    assert result.polarity == "positive"
    assert result.sentiment is not None and result.sentiment > 0.525
    assert {"staff", "service"} <= set(result.keywords)


def test_enrich__detects_english_complaint_as_negative() -> None:
    result = enrich(EN_COMPLAINT)

    assert result.language == "en"
    assert result.polarity == "negative"
    assert result.sentiment is not None and result.sentiment < 0.475
    assert {"service", "waited"} <= set(result.keywords)


def test_enrich__scores_factual_english_comment_as_neutral() -> None:
    result = enrich("I opened an account at the branch today.")

    assert result.language == "en"
    assert result.polarity == "neutral"
    assert result.sentiment == pytest.approx(0.5)


def test_enrich__leaves_function_words_out_of_keywords() -> None:
    english = enrich("We were there and they didn't help us with the loan, it's the teller's fault")
    chinese = enrich("我们今天非常生气，柜员一直不理我们")

    assert set(english.keywords) == {"help", "loan", "teller", "fault"}
    assert not {"我们", "今天", "非常", "一直"} & set(chinese.keywords)
    assert "柜员" in chinese.keywords


def test_enrich__ranks_english_keywords_by_frequency() -> None:
    result = enrich("Parking was full. The queue was long, the queue never moved, queue everywhere.")

    assert result.keywords[0] == "queue"
    assert result.keywords.count("queue") == 1


def test_enrich__scores_mixed_chinese_review_between_its_parts() -> None:
    praise = enrich(ZH_PRAISE).sentiment
    complaint = enrich(ZH_COMPLAINT).sentiment
    mixed = enrich(f"{ZH_PRAISE}。{ZH_COMPLAINT}。")

    assert praise is not None and complaint is not None and mixed.sentiment is not None
    assert complaint < mixed.sentiment < praise
    assert mixed.polarity == "neutral"


@pytest.mark.parametrize("comment", [None, "", "   \n\t "])
def test_enrich__returns_undetermined_without_sentiment_for_missing_comment(comment: str | None) -> None:
    result = enrich(comment)

    assert result == Enrichment(language="und", sentiment=None, polarity=None, keywords=[])


@pytest.mark.parametrize("comment", ["👍👍👍", "😡", "!!!???", "……。。。", "123 456", "😀 :) 100%"])
def test_enrich__returns_undetermined_for_emoji_and_punctuation_only(comment: str) -> None:
    result = enrich(comment)

    assert result.language == "und"
    assert result.sentiment is None
    assert result.polarity is None
    assert result.keywords == []


def test_enrich__returns_undetermined_for_unsupported_script() -> None:
    result = enrich("Обслуживание ужасное, очень долго ждали")

    assert result.language == "und"
    assert result.sentiment is None
    assert result.keywords == []


def test_enrich__treats_chinese_with_latin_acronyms_as_chinese() -> None:
    result = enrich("ATM机坏了，服务很差，等了半天没人管")

    assert result.language == "zh"
    assert result.polarity == "negative"
    assert "ATM" in result.keywords


def test_enrich__treats_english_with_chinese_place_name_as_english() -> None:
    result = enrich("The branch near 北京路 was clean and the staff were great")

    assert result.language == "en"
    assert result.polarity == "positive"
    assert "branch" in result.keywords
    assert all(keyword.isascii() for keyword in result.keywords)


def test_enrich__returns_at_most_the_keyword_limit() -> None:
    many_words = " ".join(f"topic{chr(ord('a') + i)} reason{chr(ord('a') + i)}" for i in range(20))

    result = enrich(many_words)

    assert len(result.keywords) == MAX_KEYWORDS


def test_enrich__analyses_only_the_head_of_a_long_comment() -> None:
    sentence = "The counter staff were slow and the waiting room was crowded. "
    head = sentence * (MAX_ANALYSED_CHARS // len(sentence) + 1)
    tail = "parking " * 200

    result = enrich(head + tail)

    assert result.language == "en"
    assert "parking" not in result.keywords
    assert "staff" in result.keywords


def test_enrich__handles_a_long_chinese_comment() -> None:
    comment = (ZH_COMPLAINT + "。") * 150

    result = enrich(comment)

    assert result.language == "zh"
    assert result.polarity == "negative"
    assert "排队" in result.keywords


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("你好", "zh"),
        ("hello", "en"),
        ("ＡＴＭ ｉｓ ｂｒｏｋｅｎ", "en"),
        ("我在APP上预约的", "zh"),
        ("WiFi连不上", "zh"),
        ("Service at 北京分行 was terrible", "en"),
        ("サービスが悪い", "und"),
        ("Привет", "und"),
        ("", "und"),
        ("2024-01-01 !!!", "und"),
    ],
)
def test_detect_language__picks_the_dominant_script(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_enrichment__is_frozen() -> None:
    result = enrich(EN_PRAISE)

    with pytest.raises(ValidationError):
        result.language = "zh"  # type: ignore[misc]


def test_enrichment__rejects_sentiment_without_polarity() -> None:
    with pytest.raises(ValidationError):
        Enrichment(language="en", sentiment=0.5, polarity=None)


def test_enrichment__rejects_sentiment_outside_unit_interval() -> None:
    with pytest.raises(ValidationError):
        Enrichment(language="en", sentiment=1.5, polarity="positive")


def test_warm_up__loads_models_without_writing_to_stderr() -> None:
    # A fresh interpreter, because the models of this one are already loaded by earlier tests.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    code = "from services.feedback.enrichment import enrich, warm_up\nwarm_up()\nprint(enrich('很满意').language)\n"

    completed = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.strip() == "zh"
