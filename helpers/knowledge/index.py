"""库的内存副本：全部块、按列存放的向量矩阵与 BM25 索引；本进程的写入增量更新，别的进程写过就重读（第 4 章）。

并发时的规矩（第 7 章的助手同时有很多人提问、有人上传）：
- 同一时刻只有一个线程在建新副本；其余读者照用旧副本，不会每人各重建一份；
- 写入期间读者用写入前的副本；写完时由写入方把副本更新好，写入返回之后的检索一定看得到新文档；
- 本进程的写入只把改动（新增、删除、改元数据的块）并进副本，不必把全部块和向量从 Chroma 重读一遍。
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    building: threading.Lock = field(default_factory=threading.Lock, repr=False)  # 同一份索引只建一次
    _counts: dict[str, int] | None = field(default=None, repr=False)

    def text(self, doc: Document) -> str:
        """建 BM25 用的文字：正文，或 index_text 给的（如加上标题路径）。"""
        return doc.page_content if self.index_text is None else self.index_text(doc)

    def source_counts(self) -> dict[str, int]:
        """副本里每个文件有多少块（按文件名排序，第一次用时数）（第 7 章）。"""
        if self._counts is None:
            self._counts = coll.count_sources(d.metadata for d in self.docs)
        return self._counts

    def sources(self) -> list[str]:
        """副本里有哪些文件（按名字排序）（第 7 章）。"""
        return list(self.source_counts())

    def bm25(self, analyzer: str = "word") -> BM25Index:
        """这份副本的 BM25 索引（词级/字级各一份，第一次用时建；几个线程同时要时只建一次）（第 4 章）。"""
        if analyzer not in self.indexes:
            with self.building:
                if analyzer not in self.indexes:
                    texts = [self.text(d) for d in self.docs]
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


def _normalized(block: np.ndarray) -> np.ndarray:
    """每行除以自己的长度（零向量不变）。"""
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.where(norms > 0, norms, 1.0)


def _read(collection: Collection, version: tuple[int, int], now: float) -> _Snapshot:
    """分页读出全部块与向量（读的途中本进程不删改块），向量按列存放、逐行归一化。"""
    with coll.io_lock(collection):
        return _read_pages(collection, version, now)


def _read_pages(collection: Collection, version: tuple[int, int], now: float) -> _Snapshot:
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
            vectors[offset : offset + len(block)] = _normalized(block)
        if len(got["ids"]) < _READ_PAGE:
            break
        offset += _READ_PAGE
    return _Snapshot(version, docs, vectors[: len(docs)], checked=now,
                     rows={d.id: r for r, d in enumerate(docs)})


def _apply(snap: _Snapshot, changes: list[coll.Change], version: tuple[int, int], now: float) -> _Snapshot:
    """把本进程的几次写入并进旧副本，得到新副本（旧副本不动：正在用它的读者不受影响）；旧副本有的 BM25 索引
    也增量更新：留下的行照旧，只给新块分词。"""
    gone: set[str] = set()
    updated: dict[str, dict[str, Any]] = {}
    added: dict[str, tuple[str, dict[str, Any], np.ndarray]] = {}
    for ch in changes:  # 按写入顺序：先删后加的同一 id 以最后一次为准
        gone.update(ch.deleted)
        for i in ch.deleted:
            added.pop(i, None)
            updated.pop(i, None)
        for i, meta in ch.updated.items():
            if i in added:
                text, _, vec = added[i]
                added[i] = (text, meta, vec)
            else:
                updated[i] = meta
        if ch.added_ids:
            vecs = np.asarray(ch.added_vectors, dtype=np.float32)
            for n, i in enumerate(ch.added_ids):
                added[i] = (ch.added_texts[n], ch.added_metas[n], vecs[n])
                gone.discard(i)
    keep = [r for r, d in enumerate(snap.docs) if d.id not in gone and d.id not in added]
    docs = [snap.docs[r] if snap.docs[r].id not in updated else
            Document(page_content=snap.docs[r].page_content, metadata=updated[snap.docs[r].id] or {},
                     id=snap.docs[r].id) for r in keep]
    docs += [Document(page_content=t or "", metadata=m or {}, id=i) for i, (t, m, _) in added.items()]
    dim = snap.vectors.shape[1] if snap.vectors.ndim == 2 and snap.vectors.shape[0] else None
    if added:
        dim = len(next(iter(added.values()))[2])
    vectors = np.zeros((len(docs), dim or 1), np.float32, order="F")
    if keep:
        vectors[: len(keep)] = snap.vectors[keep]
    if added:
        vectors[len(keep) :] = _normalized(np.stack([v for _, _, v in added.values()]))
    new = _Snapshot(version, docs, vectors, checked=now, rows={d.id: r for r, d in enumerate(docs)},
                    index_text=snap.index_text, char_features=snap.char_features)
    if updated and snap.index_text is not None and any(  # 建索引的文字随元数据变了（如标题路径）：新副本里重建
            new.text(d) != snap.text(snap.docs[r]) for r, d in zip(keep, docs) if d.id in updated):
        return new
    fresh = [new.text(d) for d in docs[len(keep) :]]
    for analyzer, index in tuple(snap.indexes.items()):  # 复制一份：别的读者可能正给旧副本建另一种索引
        new.indexes[analyzer] = index.updated(np.asarray(keep, dtype=np.int64), fresh)
    return new


# 攒下的改动超过这么多块就不再记，下次重读整个库（没人检索的大批量入库不必在内存里留一份向量）
MAX_PENDING_CHUNKS = 50_000


class SnapshotCache:
    """一个集合的内存副本：本进程的写入增量并进来，别的进程写的最迟 RECHECK_SECONDS 秒后发现并重读（第 4 章）。"""

    def __init__(self, collection: Collection, index_text: Callable[[Document], str] | None = None,
                 char_features: dict[str, Any] | None = None) -> None:
        self.collection = collection
        self.index_text = index_text
        self.char_features = dict(char_features or {})
        self._snapshot: _Snapshot | None = None
        self._building = threading.Lock()  # 同一时刻只有一个线程建新副本
        self._pending_lock = threading.Lock()
        self._pending: list[tuple[int, coll.Change]] = []  # 副本之后本进程的写入（写入序号, 改动）
        self._overflow = False  # 攒的改动太多、丢掉了：下次整个重读
        self._writers = 0  # 正在进行的写入（writing() 里）
        self.rebuilds = 0  # 建过几次副本（整个重读 + 增量），测试与基准用
        coll.subscribe(collection, self)

    def record(self, generation: int, change: coll.Change) -> None:
        """集合的监听者：记下本进程的一次写入，下次建副本时增量并进来（第 7 章）。"""
        with self._pending_lock:
            if self._snapshot is None or self._overflow:
                return  # 还没有副本：下次整个读，不必记
            if change.size + sum(c.size for _, c in self._pending) > MAX_PENDING_CHUNKS:
                self._pending.clear()
                self._overflow = True
                return
            self._pending.append((generation, change))

    def reset(self) -> None:
        """丢掉副本，下次用时重读（第 4 章）。"""
        with self._pending_lock:
            self._snapshot = None
            self._pending.clear()
            self._overflow = False

    def peek(self) -> _Snapshot | None:
        """已有副本就给出（必要时更新，但从不排队等）；还没有副本时返回 None，不为此读整个库（第 7 章）。"""
        return None if self._snapshot is None else self.current()

    def _fresh(self, snap: _Snapshot, now: float) -> bool:
        return snap.version[0] == coll.generation(self.collection) and now - snap.checked < RECHECK_SECONDS

    def current(self) -> _Snapshot:
        """全部块（带 id 与元数据）的内存副本；别的线程正在建新副本或有写入进行中时，先用旧副本（第 4 章）。"""
        snap, now = self._snapshot, time.monotonic()
        if snap is not None and self._fresh(snap, now):
            return snap
        if snap is not None and (self._writers or not self._building.acquire(blocking=False)):
            return snap  # 不排队等：写入方写完会把副本更新好
        if snap is None:
            self._building.acquire()
        try:
            return self._refresh()
        finally:
            self._building.release()

    def _refresh(self) -> _Snapshot:
        """（持有 _building 时）把副本更新到库的当前状态：能增量就增量，否则整个重读。"""
        snap, now = self._snapshot, time.monotonic()
        writes = coll.generation(self.collection)
        if snap is not None and self._fresh(snap, now):
            return snap
        with self._pending_lock:
            changes = [(g, c) for g, c in self._pending if snap is None or g > snap.version[0]]
            overflow = self._overflow
        count = self.collection.count()
        complete = (snap is not None and not overflow
                    and [g for g, _ in changes] == list(range(snap.version[0] + 1, writes + 1)))
        new = None
        if complete and changes:
            new = _apply(snap, [c for _, c in changes], (writes, count), now)
            if len(new.docs) != count:  # 还有别的写入者（别的进程）：增量对不上，整个重读
                new = None
        elif complete and snap.version[1] == count:  # 没有新写入，块数也没变：照旧可用
            snap.checked = now
            return snap
        if new is None:
            new = _read(self.collection, (writes, count), now)
            new.index_text, new.char_features = self.index_text, self.char_features
        for analyzer in (tuple(snap.indexes) if snap is not None else ()):  # 同上，复制一份再遍历
            new.bm25(analyzer)  # 旧副本有的索引，新副本建好了再换上：读者换过来就能直接查
        with self._pending_lock:
            self._pending = [(g, c) for g, c in self._pending if g > writes]
            self._overflow = False
            self._snapshot = new
        self.rebuilds += 1
        return new

    @contextmanager
    def writing(self) -> Iterator[None]:
        """写入期间读者继续用旧副本；写完（成功或失败）时把副本更新好再返回（第 7 章）。"""
        with self._pending_lock:
            self._writers += 1
        try:
            yield
        finally:
            with self._pending_lock:
                self._writers -= 1
                had = self._snapshot is not None
            if had:  # 还没有副本（没人检索过）就不必建：第一次检索时再读
                with self._building:
                    try:
                        self._refresh()
                    except Exception:  # 更新不成（如库坏了）：丢掉副本，下次检索重读并报告真正的错误
                        self.reset()
