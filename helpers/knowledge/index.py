"""库的内存副本：全部块、按列存放的向量矩阵与 BM25 索引，库有写入就重读（第 4 章）。"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document

from helpers.knowledge import collection as coll
from helpers.knowledge.search import BM25Index

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

# 内存副本多久核对一次库里的块数（发现别的进程写过库）；本进程的写入立刻可见
RECHECK_SECONDS = 1.0
_READ_PAGE = 1000  # 读副本时每页多少块（带向量，页不宜太大）


@dataclass
class _Snapshot:
    """库的内存副本：全部块、BM25 索引与按列存放的向量矩阵（混合检索用，免得每次查询都读库）。"""

    version: tuple[int, int]  # (本进程写入次数, 块数)
    docs: list[Document]
    vectors: np.ndarray  # (块数, 维数)，按列存放、每行已归一化
    indexes: dict[str, BM25Index] = field(default_factory=dict)
    checked: float = 0.0  # 上次核对块数的时间
    rows: dict[str, int] = field(default_factory=dict)  # 块 id → 在 docs / vectors 里的行号
    neighbours: dict[tuple[str, Any], list[int]] | None = None  # (文件, 页) → 按块序号排好的行号（句子窗口用）
    index_text: Callable[[Document], str] | None = None  # 建 BM25 用的文字（默认正文；可加标题路径）
    char_features: dict[str, Any] = field(default_factory=dict)  # 字级 BM25 的特征开关（symbols/trigrams/equations）

    def bm25(self, analyzer: str = "word") -> BM25Index:
        """这份副本的 BM25 索引（词级/字级各一份，第一次用时建）（第 4 章）。"""
        if analyzer not in self.indexes:
            texts = [d.page_content if self.index_text is None else self.index_text(d) for d in self.docs]
            options = self.char_features if analyzer == "char" else {}
            self.indexes[analyzer] = BM25Index.build(texts, analyzer, **options)
        return self.indexes[analyzer]



def merge_passage(chunks: list[Document]) -> str:
    """把同一文件（同一页）里相邻的几块按 start 偏移接成一段，重叠的部分只留一份（第 8 章）。"""
    text, end = "", None
    for c in chunks:
        start = int(c.metadata.get("start", 0))
        body = c.page_content
        if end is not None and start <= end:  # 与上一块重叠或紧挨着：跳过重复的开头
            body = body[min(end - start, len(body)):]
        elif text:
            body = "\n" + body
        text += body
        end = max(end or 0, start + len(c.page_content))
    return text


def window_of(snap: _Snapshot, doc: Document, window: int) -> list[Document]:
    """一块与它前后各 window 块（同一文件、同一页，按块序号）（第 8 章）。"""
    key = (coll.source_of(doc.metadata), doc.metadata.get("page"))
    if snap.neighbours is None:  # 第一次用时按 (文件, 页) 分组排好
        groups: dict[tuple[str, Any], list[int]] = {}
        for r, d in enumerate(snap.docs):
            groups.setdefault((coll.source_of(d.metadata), d.metadata.get("page")), []).append(r)
        for rows in groups.values():
            rows.sort(key=lambda r: int(snap.docs[r].metadata.get("chunk", 0)))
        snap.neighbours = groups
    rows = snap.neighbours.get(key, [])
    if doc.id not in snap.rows or snap.rows[doc.id] not in rows:
        return [doc]
    i = rows.index(snap.rows[doc.id])
    return [snap.docs[r] for r in rows[max(0, i - window) : i + window + 1]]


def dense_scores(snap: _Snapshot, query_vector: list[float] | np.ndarray) -> np.ndarray:
    """问题向量与每一块的余弦相似度（精确计算，不经过 HNSW 近似）（第 4 章）。"""
    mat = snap.vectors
    if not len(mat):
        return np.zeros(0, dtype=np.float32)
    q = np.array(query_vector, dtype=np.float32)
    q /= np.linalg.norm(q) or 1.0
    nz = np.flatnonzero(q)
    if len(nz) < mat.shape[1] // 4:  # 离线嵌入的问题向量很稀疏：只算几十列
        return mat[:, nz] @ q[nz]
    return mat @ q


def _read(collection: Collection, version: tuple[int, int], now: float) -> _Snapshot:
    """分页读出全部块与向量，向量按列存放、逐行归一化。"""
    docs: list[Document] = []
    vectors = np.zeros((0, 1), np.float32)
    offset = 0
    while True:
        got = collection.get(include=["documents", "metadatas", "embeddings"],
                             limit=_READ_PAGE, offset=offset)
        docs.extend(Document(page_content=t or "", metadata=m or {}, id=i)
                    for i, t, m in zip(got["ids"], got["documents"], got["metadatas"]))
        block = np.asarray(got["embeddings"], dtype=np.float32)
        if len(block):
            if len(vectors) < len(docs):  # 按列存放的矩阵一次分配好（块数只会比 version 里记的多）
                grown = np.zeros((max(version[1], len(docs)), block.shape[1]), np.float32, order="F")
                grown[: offset] = vectors[: offset]
                vectors = grown
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            vectors[offset : offset + len(block)] = block / np.where(norms > 0, norms, 1.0)
        if len(got["ids"]) < _READ_PAGE:
            break
        offset += _READ_PAGE
    return _Snapshot(version, docs, vectors[: len(docs)], checked=now,
                     rows={d.id: r for r, d in enumerate(docs)})


class SnapshotCache:
    """一个集合的内存副本：本进程写过库就重读，别的进程写的最迟 RECHECK_SECONDS 秒后发现（第 4 章）。"""

    def __init__(self, collection: Collection, index_text: Callable[[Document], str] | None = None,
                 char_features: dict[str, Any] | None = None) -> None:
        self.collection = collection
        self.index_text = index_text
        self.char_features = dict(char_features or {})
        self._snapshot: _Snapshot | None = None

    def reset(self) -> None:
        """丢掉副本，下次用时重读（第 4 章）。"""
        self._snapshot = None

    def current(self) -> _Snapshot:
        """全部块（带 id 与元数据）的内存副本（第 4 章）。"""
        snap, now = self._snapshot, time.monotonic()
        writes = coll.generation(self.collection)
        if snap is not None and snap.version[0] == writes and now - snap.checked < RECHECK_SECONDS:
            return snap
        version = (writes, self.collection.count())
        if snap is not None and snap.version == version:
            snap.checked = now
            return snap
        self._snapshot = _read(self.collection, version, now)
        self._snapshot.index_text = self.index_text
        self._snapshot.char_features = self.char_features
        return self._snapshot
