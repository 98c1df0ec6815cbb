"""离线嵌入：字与字二元组的哈希向量，按词频先验加权；确定、免下载、批量向量化（第 4 章）。

特征（features / feature_counts）定义在 helpers.text，字级 BM25 也用同一套；这里只做加权与哈希。

为什么手写：没有可离线使用、又适合中文的现成嵌入库（Chroma 默认模型需要下载）。
权重先验来自 jieba 自带词典的词频（约 35 万词），与任何语料无关，因此嵌入是无状态的。
批量计算全部用 numpy 完成（把文本看成码位数组），单核每秒可嵌入上万个文本块。
"""

from __future__ import annotations

import math
import os
import pickle
import zlib
from collections import Counter
from functools import lru_cache

import numpy as np

from helpers.config import CACHE_DIR
from helpers.text import (
    FEATURE_KEY_MASK,
    FEATURE_TAG_SHIFT,
    TAG_BIGRAM,
    TAG_CHAR,
    TAG_SYMBOL,
    TAG_TRIGRAM,
    TAG_WORD,
    feature_counts,
    features,
    jieba_dict,
)

DIM = 1024
MODEL_NAME = "offline-hash-zh"
VERSION = 2  # 特征或权重一改就加 1：知识库据此换用新的集合，旧向量不会混进来
_TABLE_VERSION = 2
UNKNOWN_WEIGHT = 12.0  # 词典里没有的字/英文单词：当作罕见特征
UNIGRAM_SCALE = 1.0  # 单字与二元组同等看待（0.5 时在中文检索基准上更差）
SYMBOL_WEIGHT = 6.0  # 希腊字母、数学符号的权重（开了 symbols 才有这类特征）
TRIGRAM_WEIGHT = 6.0  # 相邻三字的权重（开了 trigrams 才有这类特征）



def _build_prior() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """从 jieba 词典统计字、字二元组的频次，换算成 IDF 式的权重表。"""
    char_f: Counter[str] = Counter()
    bi_f: Counter[str] = Counter()
    with open(jieba_dict(), encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(" ")
            if len(parts) < 2:
                continue
            word, freq = parts[0], int(parts[1])
            for ch in word:
                char_f[ch] += freq
            for i in range(len(word) - 1):
                bi_f[word[i : i + 2]] += freq
    total = sum(char_f.values())
    char_w = np.full(0x10000, UNKNOWN_WEIGHT, dtype=np.float32)
    for c, f in char_f.items():
        if ord(c) < 0x10000:
            char_w[ord(c)] = math.log(1 + total / (1 + f))
    bi_total = sum(bi_f.values())
    keys, weights = [], []
    for b, f in bi_f.items():
        if len(b) == 2 and ord(b[0]) < 0x10000 and ord(b[1]) < 0x10000:
            keys.append((ord(b[0]) << 21) | ord(b[1]))
            weights.append(math.log(1 + bi_total / (1 + f)))
    order = np.argsort(np.array(keys, dtype=np.int64))
    return char_w, np.array(keys, dtype=np.int64)[order], np.array(weights, dtype=np.float32)[order]


@lru_cache(maxsize=1)
def _prior() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """读取（或首次构建并缓存）权重先验表：(单字权重, 二元组键, 二元组权重)。"""
    path = CACHE_DIR / f"offline_prior_v{_TABLE_VERSION}.pkl"
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # 缓存损坏就重建
            pass
    table = _build_prior()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(table, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:  # 只读目录也能用，只是每次重建
        pass
    return table


def _key_weights(keys: np.ndarray) -> np.ndarray:
    """特征键 → 先验权重（向量化）：常见的字/二元组权重低。"""
    char_w, bi_keys, bi_w = _prior()
    tag = keys >> FEATURE_TAG_SHIFT
    low = keys & FEATURE_KEY_MASK
    out = np.full(len(keys), UNKNOWN_WEIGHT, dtype=np.float64)
    out[tag == TAG_SYMBOL] = SYMBOL_WEIGHT
    out[tag == TAG_TRIGRAM] = TRIGRAM_WEIGHT
    uni = tag == TAG_CHAR
    out[uni] = char_w[np.minimum(low[uni], 0xFFFF)] * UNIGRAM_SCALE
    bi = tag == TAG_BIGRAM
    if bi.any():
        bk = low[bi]
        pos = np.minimum(np.searchsorted(bi_keys, bk), len(bi_keys) - 1)
        found = bi_keys[pos] == bk
        c1 = np.minimum(bk >> 21, 0xFFFF)
        c2 = np.minimum(bk & 0x1FFFFF, 0xFFFF)
        # 词典里没有的二元组多半跨词，取两字权重的均值
        out[bi] = np.where(found, bi_w[pos], 0.5 * (char_w[c1] + char_w[c2]))
    return out


def _key_of(feat: str) -> int:
    """字符串特征 → 整数键（与批量计算一致）。"""
    if feat.startswith("w:"):
        return (TAG_WORD << FEATURE_TAG_SHIFT) | zlib.crc32(feat.encode("utf-8"))
    if len(feat) == 1:
        return (TAG_CHAR << FEATURE_TAG_SHIFT) | ord(feat)
    return (TAG_BIGRAM << FEATURE_TAG_SHIFT) | (ord(feat[0]) << 21) | ord(feat[1])


@lru_cache(maxsize=200_000)
def feature_weight(feat: str) -> float:
    """特征的先验权重：越常见的字/词权重越低（第 4 章）。"""
    return float(_key_weights(np.array([_key_of(feat)], dtype=np.int64))[0])


def _buckets(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """特征键 → (哈希桶, 符号)：splitmix64 混合，跨平台、跨进程一致。"""
    x = keys.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    bucket = (x % np.uint64(DIM)).astype(np.int64)
    sign = np.where((x >> np.uint64(63)) == 1, 1.0, -1.0)
    return bucket, sign


def sparse_vector(text: str) -> dict[str, float]:
    """不做哈希的稀疏向量 {特征: 权重}，用来精确比较两段短文本（第 4 章）。"""
    return {f: feature_weight(f) * (1.0 + math.log(tf)) for f, tf in features(text).items()}


def sparse_cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """两个稀疏向量的余弦相似度（第 4 章）。"""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b[f] for f, w in a.items() if f in b)
    na = math.sqrt(sum(w * w for w in a.values()))
    nb = math.sqrt(sum(w * w for w in b.values()))
    return dot / (na * nb) if na and nb else 0.0


SYMBOLS = False  # 特征是否加上希腊字母、数学符号（第 8 章）
TRIGRAMS = False  # 特征是否加上相邻三字（第 8 章）


def embed_texts(texts: list[str], batch_size: int = 4096, *, symbols: bool | None = None,
                trigrams: bool | None = None) -> np.ndarray:
    """批量嵌入，返回形状 (n, DIM)、每行 L2 归一化的矩阵；两个特征开关默认取 SYMBOLS、TRIGRAMS（第 4 章）。"""
    options = {"symbols": SYMBOLS if symbols is None else symbols,
               "trigrams": TRIGRAMS if trigrams is None else trigrams}
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        doc, keys, tf = feature_counts(batch, **options)
        bucket, sign = _buckets(keys)
        values = sign * _key_weights(keys) * (1.0 + np.log(tf))
        flat = np.bincount(doc * DIM + bucket, weights=values, minlength=len(batch) * DIM)
        mat = flat.reshape(len(batch), DIM)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        out[start : start + len(batch)] = mat / np.where(norms > 0, norms, 1.0)
    return out


def embed_text(text: str) -> np.ndarray:
    """把一段文本变成 L2 归一化的 DIM 维向量（第 4 章）。"""
    return embed_texts([text])[0]
