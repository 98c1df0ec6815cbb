"""离线嵌入：字与字二元组的哈希向量，按词频先验加权；确定、免下载（第 4 章）。

为什么手写：没有可离线使用、又适合中文的现成嵌入库（Chroma 默认模型需要下载）。
权重先验来自 jieba 自带词典的词频（约 35 万词），与任何语料无关，因此嵌入是无状态的。
"""

from __future__ import annotations

import math
import os
import pickle
import re
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from helpers.config import CACHE_DIR
from helpers.offline.text import normalize

DIM = 1024
MODEL_NAME = "offline-hash-zh"
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z][a-z0-9_\-\.]*[a-z0-9]|[a-z]|\d+(?:\.\d+)?")
_TABLE_VERSION = 1


def _jieba_dict() -> Path:
    import jieba

    return Path(jieba.__file__).resolve().parent / "dict.txt"


def _build_prior() -> tuple[dict[str, float], dict[str, float]]:
    """从 jieba 词典统计字、字二元组的频次，换算成 IDF 式的权重。"""
    char_f: Counter[str] = Counter()
    bi_f: Counter[str] = Counter()
    with open(_jieba_dict(), encoding="utf-8") as fh:
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
    char_w = {c: math.log(1 + total / (1 + f)) for c, f in char_f.items()}
    bi_total = sum(bi_f.values())
    bi_w = {b: math.log(1 + bi_total / (1 + f)) for b, f in bi_f.items()}
    return char_w, bi_w


@lru_cache(maxsize=1)
def _prior() -> tuple[dict[str, float], dict[str, float]]:
    """读取（或首次构建并缓存）权重先验表。"""
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


def features(text: str) -> Counter[str]:
    """抽取特征：汉字单字、相邻二字、英文单词与数字（第 4 章）。"""
    text = normalize(text)
    feats: Counter[str] = Counter()
    for run in _CJK_RUN.findall(text):
        feats.update(run)
        feats.update(run[i : i + 2] for i in range(len(run) - 1))
    feats.update("w:" + w for w in _WORD.findall(text))
    return feats


@lru_cache(maxsize=200_000)
def feature_weight(feat: str) -> float:
    """特征的先验权重：越常见的字/词权重越低（第 4 章）。"""
    char_w, bi_w = _prior()
    if feat.startswith("w:"):
        weight = 12.0
    elif len(feat) == 1:
        weight = char_w.get(feat, 12.0) * 0.5
    else:
        if feat in bi_w:
            weight = bi_w[feat]
        else:  # 词典里没有的二元组多半跨词，取两字权重的均值
            weight = 0.5 * (char_w.get(feat[0], 12.0) + char_w.get(feat[1], 12.0))
    return weight


@lru_cache(maxsize=200_000)
def _slot(feat: str) -> tuple[int, float]:
    """特征 → (哈希桶, 符号×权重)；crc32 保证跨进程一致。"""
    h = zlib.crc32(feat.encode("utf-8"))
    sign = 1.0 if (h >> 31) & 1 else -1.0
    return h % DIM, sign * feature_weight(feat)


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


def embed_text(text: str) -> np.ndarray:
    """把一段文本变成 L2 归一化的 DIM 维向量（第 4 章）。"""
    vec = np.zeros(DIM, dtype=np.float32)
    for feat, tf in features(text).items():
        idx, w = _slot(feat)
        vec[idx] += w * (1.0 + math.log(tf))
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def embed_texts(texts: list[str]) -> np.ndarray:
    """批量嵌入，返回形状 (n, DIM) 的矩阵（第 4 章）。"""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.stack([embed_text(t) for t in texts])
