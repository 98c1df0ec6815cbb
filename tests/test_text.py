"""helpers.text：中文文本工具搬家后，特征键、分词与离线嵌入的向量一位都不变。

下面钉住的数值是在搬家之前的代码上算出来的（特征键与计数是整数，逐位比较；
嵌入向量的分量用 1e-6 的相对误差比较，免得不同 CPU 的 log 实现差一个 ulp 就报错）。
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from helpers import text
from helpers.offline import embeddings as emb

TEXTS = [
    "向量数据库 Chroma 默认使用 L2 距离，可以改成 cosine。",
    "GPT-4o 的 base_url 是 https://api.openai.com/v1，温度 0.7、90%",
    "",
    "ＡＢＣ全角ｘｙｚ 123.45 𠀀罕见字 兀",
    "混合检索：BM25 + 向量，RRF 融合。c++ 与 C# 都是语言",
]


def test_feature_counts_are_pinned():
    doc, keys, counts = text.feature_counts(TEXTS)
    digest = hashlib.sha256(doc.tobytes() + keys.tobytes() + counts.tobytes()).hexdigest()
    assert digest == "83465897fc443d8bd4e9efe059e469b4c6ff02e0be3314419e0b72a0cefbcb57"
    assert len(keys) == 76


def test_offline_embedding_values_are_pinned():
    m = emb.embed_texts(TEXTS)
    pinned = {
        0: [(133, -0.3236735165119171), (502, -0.276927649974823), (1010, 0.2414342761039734)],
        1: [(188, -0.3390147387981415), (264, -0.3390147387981415), (559, 0.3390147387981415)],
        3: [(301, 0.40461528301239014), (8, -0.39763036370277405), (125, -0.3194746971130371)],
        4: [(113, -0.4342247247695923), (35, 0.3110896944999695), (385, 0.25646013021469116)],
    }
    for row, values in pinned.items():
        for col, value in values:
            assert m[row][col] == pytest.approx(value, rel=1e-6)
    assert [int((m[i] != 0).sum()) for i in (0, 1, 3, 4)] == [29, 12, 12, 22]
    assert not m[2].any()  # 空文本是零向量
    assert emb.feature_weight("向量") == pytest.approx(11.817033767700195, rel=1e-6)
    assert emb.feature_weight("w:bm25") == 12.0


def test_tokens_are_pinned():
    assert text.char_tokens(TEXTS[3]) == [
        "全", "角", "全角", "罕", "见", "字", "罕见", "见字", "兀", "w:abc", "w:xyz", "w:123.45"]
    assert text.word_tokens(TEXTS[1]) == [
        "gpt", "4o", "的", "base", "url", "是", "https", "api", "openai", "com", "v1", "温度", "0.7", "90%"]
    assert text.tokenize(TEXTS[4]) == [
        "混合", "检索", "bm25", "向量", "rrf", "融合", "c++", "与", "c#", "都", "是", "语言"]
    assert [text.count_tokens(t) for t in TEXTS] == [23, 32, 0, 16, 25]


def test_one_definition_of_the_cjk_ranges():
    assert text.CJK_CLASS == r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    han = re.compile(rf"[{text.CJK_CLASS}]")
    codes = np.array([ord(c) for c in "汉a字，兀"], dtype=np.int64)
    assert text.is_cjk(codes).tolist() == [bool(han.match(c)) for c in "汉a字，兀"]
