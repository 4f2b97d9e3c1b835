"""The tabular encoder's hashed words: pyarrow's split gives what Python's loop per row gave."""

import re
import zlib

import numpy as np
import pyarrow as pa
import pytest

from dataplat_dagster.embeddings.tabular import _WEIGHT, TEXT_BUCKETS, _hashed_words

TEXTS = [
    "Hello, World! hello", None, "", "   ", "a_b--C9 x2 _", "snake_case CamelCase 42", "tabs\tand\nnewlines",
    "Café crème BRÛLÉE", "ΟΔΟΣ Σοφίας", "İstanbul ŞEHİR", "straße STRASSE", "日本語 テキスト", "emoji 🙂 ok",
    "ﬁne ligature", "e\u0301 combining", "x²+y₂=z", "Ⅻ roman", "--- ...", "repeat repeat", "Hello, World! hello",
    "Café crème BRÛLÉE", None, "UPPER lower MiXeD",
]


def _loop(texts: list) -> np.ndarray:
    """The per-row loop the encoder used before pyarrow's split: the reference."""
    word = re.compile(r"\w+", re.UNICODE)
    out = np.zeros((len(texts), TEXT_BUCKETS))
    for row, text in enumerate(texts):
        if not text:
            continue
        for found in word.findall(str(text).lower()):
            code = zlib.crc32(found.encode())
            out[row, code % TEXT_BUCKETS] += 1.0 if code & 0x80000000 else -1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0) * _WEIGHT


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())])
def test_hashed_words_are_the_loops(kind):
    array = pa.array(TEXTS, pa.string()).cast(kind) if pa.types.is_dictionary(kind) else pa.array(TEXTS, kind)
    assert np.array_equal(_hashed_words(array), _loop(TEXTS))


def test_hashed_words_of_only_ascii_only_unicode_and_nothing():
    for texts in (["plain words", "more, words"], ["ÉTÉ été", "Ωμέγα"], [None, ""], []):
        assert np.array_equal(_hashed_words(pa.array(texts, pa.string())), _loop(texts))
