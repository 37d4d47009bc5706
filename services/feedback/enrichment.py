"""Comment enrichment: language, sentiment and keywords of one feedback comment.

Models are loaded lazily, once per process (`warm_up()` does it at service start):
jieba for Chinese keywords, snownlp for Chinese sentiment, VADER for English sentiment.
All ship their dictionaries and models inside their packages, so nothing is downloaded. jieba's and
snownlp's are read from compact copies (`chinese_models`: the same results in a tenth of the memory).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.feedback import chinese_models

Polarity = Literal["negative", "neutral", "positive"]

LANGUAGE_CHINESE = "zh"
LANGUAGE_ENGLISH = "en"
LANGUAGE_UNDETERMINED = "und"

MAX_KEYWORDS = 8
# Only the head of a long comment is analysed: snownlp costs ~75 µs per character, and the
# head of a comment carries its gist. Detection still looks at the whole comment.
MAX_ANALYSED_CHARS = 1000

# One Han character carries about as much text as two Latin letters, so Han characters
# count double when deciding which script dominates a mixed comment.
_HAN_WEIGHT = 2

# Sentiment score bounds (inclusive) for the negative and positive labels, per language.
# English follows VADER's documented compound thresholds of ±0.05, mapped onto [0, 1];
# snownlp's scores are spread wide, so Chinese gets a wider neutral band.
_POLARITY_BOUNDS: dict[str, tuple[float, float]] = {
    LANGUAGE_CHINESE: (0.4, 0.6),
    LANGUAGE_ENGLISH: (0.475, 0.525),
}

# snownlp's naive Bayes saturates to 0 or 1 on long texts, so longer comments are scored
# sentence by sentence; commas stay inside a sentence because Chinese uses them to join clauses.
_ZH_SENTENCE_END = re.compile(r"[。！？!?；;…\n]+")
_EN_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)*")
_TRUNCATION_BOUNDARY = re.compile(r"[\s。！？!?；;，,.、…]")

# Frequent words that jieba's IDF table does not push down far enough to keep out of keywords.
# (Word lists read better as one string than as a list literal of a hundred items.)
_ZH_STOP_WORDS = frozenset(
    "非常 特别 十分 比较 真的 一个 一下 一次 一直 一些 今天 昨天 明天 现在 时候 没有 我们 你们 他们 "  # noqa: SIM905
    "自己 就是 还是 但是 而且 因为 所以 然后 可以 已经 还有 这个 那个 这么 那么 什么 怎么 感觉 觉得 "
    "所有 这样 那样 之后 之前 以后 以前 不过 可能".split()
)
_EN_STOP_WORDS = frozenset(
    "a about above after again against all also am an and any are around as at be because been before "  # noqa: SIM905
    "being below between both but by can could did do does doing done down during each even ever every "
    "few for from further get got had has have having he her here hers herself him himself his how i if "
    "in into is it its itself just let me more most much must my myself near no nobody nor not nothing "
    "now of off on once only or other our ours ourselves out over own really same she should so some still "
    "such than that the their theirs them themselves then there these they this those through to too "
    "under until up upon very was we were what when where which while who whom why will with would yet "
    "you your yours yourself yourselves".split()
)


class Enrichment(BaseModel):
    """Language, sentiment and keywords derived from one feedback comment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # ISO 639-1 code of the dominant script's language, or "und" when none is supported.
    language: str
    # Model score in [0, 1], 0 most negative; comparable within a language, not across.
    # None when there is no text in a supported language to score.
    sentiment: float | None = Field(default=None, ge=0.0, le=1.0)
    polarity: Polarity | None = None
    keywords: list[str] = Field(default_factory=list, max_length=MAX_KEYWORDS)

    @model_validator(mode="after")
    def _sentiment_and_polarity_together(self) -> Self:
        if (self.sentiment is None) != (self.polarity is None):
            raise ValueError("sentiment and polarity must both be set or both be None")
        return self


def enrich(comment: str | None) -> Enrichment:
    """Detect the language of a comment, score its sentiment and extract its keywords."""
    text = (comment or "").strip()
    language = detect_language(text)
    if language == LANGUAGE_UNDETERMINED:
        return Enrichment(language=language)
    analysed = _truncate(text, MAX_ANALYSED_CHARS)
    if language == LANGUAGE_CHINESE:
        sentiment = _chinese_sentiment(analysed)
        keywords = _chinese_keywords(analysed)
    else:
        sentiment = _english_sentiment(analysed)
        keywords = _english_keywords(analysed)
    return Enrichment(
        language=language,
        sentiment=sentiment,
        polarity=_polarity(sentiment, language),
        keywords=keywords,
    )


def detect_language(text: str) -> str:
    """Return "zh" or "en" for the dominant script of the text, "und" when neither dominates."""
    han = latin = other = 0
    for char in text:
        if _is_han(char):
            han += 1
        elif char.isalpha():
            if char < "\u0250" or "\uff21" <= char <= "\uff5a":
                latin += 1
            else:
                other += 1
    weighted_han = han * _HAN_WEIGHT
    if weighted_han == 0 and latin == 0:
        return LANGUAGE_UNDETERMINED
    if weighted_han >= latin and weighted_han > other:
        return LANGUAGE_CHINESE
    if latin > weighted_han and latin > other:
        return LANGUAGE_ENGLISH
    return LANGUAGE_UNDETERMINED


def warm_up() -> None:
    """Load every model now, so that the first comment is not slow."""
    _chinese_keyword_extractor()
    _chinese_sentiment_classifier()
    _english_sentiment_analyser()
    enrich("服务很好")
    enrich("Good service")


def _is_han(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF  # unified ideographs
        or 0x3400 <= code <= 0x4DBF  # extension A
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= code <= 0x3134F  # extensions B to G
    )


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    # Cut at the last word or clause boundary so no word is split, unless that loses too much.
    boundaries = [match.start() for match in _TRUNCATION_BOUNDARY.finditer(head)]
    if boundaries and boundaries[-1] >= limit // 2:
        return head[: boundaries[-1]]
    return head


def _polarity(sentiment: float, language: str) -> Polarity:
    negative_at_most, positive_at_least = _POLARITY_BOUNDS[language]
    if sentiment <= negative_at_most:
        return "negative"
    if sentiment >= positive_at_least:
        return "positive"
    return "neutral"


def _chinese_sentiment(text: str) -> float:
    classify = _chinese_sentiment_classifier()
    sentences = [s for s in _ZH_SENTENCE_END.split(text) if any(_is_han(c) for c in s)]
    if not sentences:
        sentences = [text]
    total_length = sum(len(s) for s in sentences)
    score = sum(classify(s) * len(s) for s in sentences) / total_length
    return min(1.0, max(0.0, score))


def _english_sentiment(text: str) -> float:
    compound = float(_english_sentiment_analyser()(text)["compound"])
    return min(1.0, max(0.0, (compound + 1.0) / 2.0))


def _chinese_keywords(text: str) -> list[str]:
    candidates = _chinese_keyword_extractor()(text)
    return _top_keywords(word for word in candidates if word not in _ZH_STOP_WORDS)


def _english_keywords(text: str) -> list[str]:
    counts: Counter[str] = Counter()
    for word in _EN_WORD.findall(text.lower()):
        word = word.replace("’", "'").removesuffix("'s")
        # What still has an apostrophe is a contraction (didn't, we're): a function word.
        if len(word) < 3 or "'" in word or word in _EN_STOP_WORDS:
            continue
        counts[word] += 1
    # most_common is a stable sort, so ties keep the order of first appearance.
    return _top_keywords(word for word, _ in counts.most_common())


def _top_keywords(words: Iterable[str]) -> list[str]:
    keywords: list[str] = []
    for word in words:
        if any(char.isalpha() for char in word) and word not in keywords:
            keywords.append(word)
            if len(keywords) == MAX_KEYWORDS:
                break
    return keywords


def _chinese_keyword_extractor() -> Callable[[str], list[str]]:
    return chinese_models.keywords().extract


def _chinese_sentiment_classifier() -> Callable[[str], float]:
    return chinese_models.sentiment().classify


@functools.cache
def _english_sentiment_analyser() -> Callable[[str], dict[str, float]]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()

    def polarity_scores(text: str) -> dict[str, float]:
        return {key: float(value) for key, value in analyser.polarity_scores(text).items()}

    return polarity_scores
