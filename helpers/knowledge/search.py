"""检索：BM25 关键词检索、倒数排名融合（RRF）与 LangChain 检索器封装（第 4 章）。

BM25 的打分公式与 rank-bm25 的 BM25Okapi 相同、只是 idf 取 Lucene 的 log(1 + (N-n+0.5)/(n+0.5))
（BM25Okapi 的 idf 在只有一两篇文档时为 0 或负数，小知识库会什么都搜不到；测试里逐项对照）。实现用 scipy 稀疏矩阵：
rank-bm25 每个查询词都要用 Python 循环扫一遍全部文档，1 万块时一次查询要几十毫秒；
把"词 × 文档"的 BM25 分量预先算进稀疏矩阵后，查询只需取出查询词那几列求和。
分词用字与相邻二字（与离线嵌入同一套特征）：不依赖词典，新词、术语、人名都切得动，且比 jieba 快两个数量级。
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from scipy import sparse

from helpers.offline.embeddings import feature_counts

if TYPE_CHECKING:
    from helpers.knowledge.store import KnowledgeBase

BM25_K1 = 1.5
BM25_B = 0.75
RRF_K = 60


def tokenize(text: str) -> list[str]:
    """BM25 用的分词：汉字单字 + 相邻二字 + 英文单词/数字（第 4 章）。"""
    from helpers.offline.embeddings import features

    return [f for f, n in features(text).items() for _ in range(n)]


@dataclass
class BM25Index:
    """BM25Okapi 打分的稀疏矩阵实现：build() 一次建好，score()/top() 毫秒级查询（第 4 章）。"""

    vocab: np.ndarray  # 排好序的特征键
    weights: sparse.csc_matrix  # 文档 × 特征 的 BM25 分量
    k1: float = BM25_K1
    b: float = BM25_B

    @classmethod
    def build(cls, texts: list[str], k1: float = BM25_K1, b: float = BM25_B) -> "BM25Index":
        """从文本列表建索引；idf 用 Lucene 的平滑公式，永远为正（第 4 章）。"""
        n = len(texts)
        doc, keys, tf = feature_counts(texts) if n else (np.zeros(0, np.int64),) * 3
        vocab, col = np.unique(keys, return_inverse=True)
        tf = tf.astype(np.float64)
        doc_len = np.bincount(doc, weights=tf, minlength=n)
        avgdl = doc_len.mean() if n else 1.0
        df = np.bincount(col, minlength=len(vocab)).astype(np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        denom = tf + k1 * (1 - b + b * doc_len[doc] / (avgdl or 1.0))
        values = idf[col] * tf * (k1 + 1) / denom
        weights = sparse.csc_matrix((values, (doc, col)), shape=(n, len(vocab)))
        return cls(vocab=vocab, weights=weights, k1=k1, b=b)

    @property
    def size(self) -> int:
        return self.weights.shape[0]

    def score(self, query: str) -> np.ndarray:
        """查询对每篇文档的 BM25 分数（第 4 章）。"""
        _, keys, counts = feature_counts([query])
        pos = np.searchsorted(self.vocab, keys)
        pos = np.minimum(pos, max(len(self.vocab) - 1, 0))
        hit = (self.vocab[pos] == keys) if len(self.vocab) else np.zeros(0, bool)
        if not hit.any():
            return np.zeros(self.size)
        cols, qtf = pos[hit], counts[hit].astype(np.float64)
        return np.asarray(self.weights[:, cols] @ qtf).ravel()

    def top(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """分数最高的 k 篇 (文档序号, 分数)，分数为 0 的不返回（第 4 章）。"""
        scores = self.score(query)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, len(scores))
        if k <= 0:
            return []
        idx = np.argpartition(-scores, k - 1)[:k]
        idx = idx[np.lexsort((idx, -scores[idx]))]
        return [(int(i), float(scores[i])) for i in idx if scores[i] > 0]


def rrf_fuse(rankings: list[list[str]], k: int = RRF_K,
             weights: list[float] | None = None) -> list[tuple[str, float]]:
    """倒数排名融合（RRF）：每个排名表里排第 r 名得 w/(k+r) 分，相加后排序（第 4 章）。"""
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for r, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + w / (k + r)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _cond(meta: dict[str, Any], key: str, cond: Any) -> bool:
    value = meta.get(key)
    if not isinstance(cond, dict):
        return value == cond
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "$eq": lambda v, c: v == c, "$ne": lambda v, c: v != c,
        "$in": lambda v, c: v in c, "$nin": lambda v, c: v not in c,
        "$gt": lambda v, c: v is not None and v > c, "$gte": lambda v, c: v is not None and v >= c,
        "$lt": lambda v, c: v is not None and v < c, "$lte": lambda v, c: v is not None and v <= c,
    }
    return all(ops[op](value, c) for op, c in cond.items())


def matches_filter(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """用 Chroma 的 where 语法（$and/$or/$eq/$in…）在内存里过滤元数据（第 4 章）。"""
    if not where:
        return True
    for key, cond in where.items():
        if key == "$and":
            if not all(matches_filter(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches_filter(meta, c) for c in cond):
                return False
        elif not _cond(meta, key, cond):
            return False
    return True


RETRIEVER_KINDS = ("hybrid", "dense", "bm25", "mmr")


class KnowledgeRetriever(BaseRetriever):
    """知识库检索器：kind 选 hybrid/dense/bm25/mmr；返回的 Document 元数据带 score（第 4 章）。"""

    kb: Any
    kind: str = "hybrid"
    k: int = 4
    fetch_k: int = 20
    lambda_mult: float = 0.5
    filter: dict[str, Any] | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        kb: KnowledgeBase = self.kb
        if self.kind == "mmr":
            pairs = kb.mmr(query, k=self.k, fetch_k=self.fetch_k, lambda_mult=self.lambda_mult,
                           filter=self.filter)
        elif self.kind == "dense":
            pairs = kb.search(query, k=self.k, filter=self.filter)
        elif self.kind == "bm25":
            pairs = kb.bm25(query, k=self.k, filter=self.filter)
        else:
            pairs = kb.hybrid(query, k=self.k, filter=self.filter)
        return [
            Document(page_content=d.page_content, metadata={**d.metadata, "score": round(s, 6)}, id=d.id)
            for d, s in pairs
        ]
