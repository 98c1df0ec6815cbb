"""知识库：把文档切块、嵌入后存进 Chroma，支持增量入库、同步删除与多种检索（第 4 章）。"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from helpers.config import KNOWLEDGE_DIR, Settings, load_settings
from helpers.knowledge import collection as coll
from helpers.knowledge.collection import PIPELINE_VERSION, collection_name_for, embedding_id, make_client
from helpers.knowledge.index import SnapshotCache, dense_scores, merge_passage, window_of
from helpers.knowledge.ingest import DEFAULT_CHUNKER, Ingestor, IngestReport, make_chunker
from helpers.knowledge.load import DEFAULT_MAX_FILE_MB
from helpers.knowledge.rerank import RERANK_CANDIDATES, get_reranker
from helpers.knowledge.search import RRF_K, matches_filter, rrf_fuse, top_k, weighted_fuse
from helpers.knowledge.split import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, make_splitter, with_document_context
from helpers.llm import get_embeddings

# 混合检索三路的权重：向量、词级 BM25、字级 BM25（各自归一化到 [0,1] 后加权相加）。
# 在课程问题集和两套中文代理基准上测过：这组权重三处都不低于任一单路；等权 RRF 反而不如 BM25。
# 第 8 章在办公、百科、教材三套代理集的 dev 上试过把字级一路加到 1.4 倍（0.15/0.35/0.7）：办公 hit@1 只多对一题
# （0.743 → 0.757），课程问题集上默认的重排序却变成了略差（MRR −0.004，区间不含 0），所以没有换
HYBRID_WEIGHTS = {"dense": 0.3, "word": 0.7, "char": 0.7}
HYBRID_CANDIDATES = 50  # 混合检索时每路先取多少候选
RETRIEVER_KINDS = ("hybrid", "dense", "bm25", "mmr", "hybrid_rerank")
DEFAULT_RETRIEVER = "hybrid"  # 课程助手默认的检索方式
DEFAULT_HEADING_CONTEXT = False  # 建索引时是否在块前加标题路径（第 8 章的开关）
# hybrid 默认在融合之后再重排序（第 8 章）：先融合出 RERANK_CANDIDATES 块，重排序器排出前 k 块。
# 在两套代理基准（教材 PDF、百科段落）的 dev 与 test 上都不差于只融合，课程问题集持平（命令见 bench.py）；
# KnowledgeBase(rerank=False) 或 hybrid(..., rerank=False) 回到只融合（第 4 章讲的混合检索）
DEFAULT_RERANK = True
# 检索器返回的 Document 元数据里：问题与这一块的余弦相似度，以及算它用的查询（拒答阈值直接用，不再嵌入）
DENSE_SCORE, DENSE_QUERY = "dense_score", "dense_query"

Scored = list[tuple[Document, float, float]]  # (块, 本检索方式的分数, 与问题的余弦相似度)


class KnowledgeBase:
    """课程知识库：load → clean → split → embed → Chroma，再加 BM25 与混合检索（第 4 章）。"""

    def __init__(self, collection: str = "course", settings: Settings | None = None,
                 embeddings: Embeddings | None = None, persist_dir: str | Path | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
                 *, max_file_mb: float = DEFAULT_MAX_FILE_MB, batch_size: int = 256,
                 client: Any = None, chunker: str = DEFAULT_CHUNKER,
                 heading_context: bool = DEFAULT_HEADING_CONTEXT, rerank: bool = DEFAULT_RERANK,
                 reranker: Any = None, char_features: dict[str, Any] | None = None,
                 max_file_chars: int | None = None, max_file_seconds: float | None = None) -> None:
        make_splitter(chunk_size, chunk_overlap)  # 参数不合理就尽早报错
        self.settings = settings or load_settings()
        self.embeddings = embeddings or get_embeddings(settings=self.settings)
        chunk = make_chunker(chunker, chunk_size, chunk_overlap, self.embeddings)  # 不认识的切块方式在建库前报错
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.chunker, self.heading_context = chunker, heading_context
        self.rerank_default, self._reranker = rerank, reranker
        variant = "|".join(([] if chunker == "recursive" else [f"chunker={chunker}"])
                           + (["heading"] if heading_context else []))
        self.collection_name = collection_name_for(collection, self.embeddings, chunk_size, chunk_overlap,
                                                   variant)
        self.config = {
            "chunk_size": chunk_size, "chunk_overlap": chunk_overlap,
            "embedding": embedding_id(self.embeddings), "pipeline": PIPELINE_VERSION,
        }
        if variant:  # 默认配置的集合元数据与以前一样
            self.config.update(chunker=chunker, heading_context=heading_context)
        self.client = client or make_client(self.settings, persist_dir)
        self.store = coll.open_store(self.collection_name, self.embeddings, self.client, self.config)
        # 建索引的文字：办公/网页/字幕块前加文件标题与工作表名，heading_context 时再加标题路径（第 8 章）
        index_text = partial(with_document_context, heading=heading_context)
        self.writer = Ingestor(self.collection, self.embeddings, chunk_size=chunk_size,
                               chunk_overlap=chunk_overlap, max_file_mb=max_file_mb, batch_size=batch_size,
                               chunker=chunk, index_text=index_text,
                               max_file_chars=max_file_chars, max_file_seconds=max_file_seconds)
        # 字级 BM25 的特征开关，如 {"equations": False, "symbols": True}；不给就用 search 模块的默认值
        self.index = SnapshotCache(self.collection, index_text, char_features)

    # ---------- 基本信息 ----------
    @property
    def collection(self):
        """底层的 chromadb 集合（第 4 章）。"""
        return self.store._collection

    @property
    def last_report(self) -> IngestReport | None:
        """最近一次 ingest 的报告（第 4 章）。"""
        return self.writer.last_report

    def count(self) -> int:
        """库里有多少块（第 4 章）。"""
        return self.collection.count()

    def sources(self) -> list[str]:
        """库里有哪些文件（按 source 排序）；已有内存副本时从副本里数，不再读一遍全部元数据（第 4 章）。"""
        snap = self.index.peek()
        return snap.sources() if snap is not None else self.writer.sources()

    def has_source(self, source: str) -> bool:
        """库里有没有这个文件的块（只查一块，库再大也很快）（第 4 章）。"""
        return bool(self.collection.get(where={"file": source}, limit=1, include=[])["ids"])

    def source_counts(self) -> dict[str, int]:
        """每个文件在库里有多少块；已有内存副本时从副本里数（第 4 章）。"""
        snap = self.index.peek()
        if snap is not None:
            return dict(snap.source_counts())
        return coll.count_sources(coll.all_metadatas(self.collection))

    def overview(self) -> tuple[int, int]:
        """(块数, 文件数)：已有内存副本时直接从副本里数，不读库（助手的健康检查用）（第 4 章）。"""
        counts = self.source_counts()
        return sum(counts.values()), len(counts)

    def __repr__(self) -> str:
        return f"KnowledgeBase(collection={self.collection_name!r}, chunks={self.count()})"

    # ---------- 写入 ----------
    def ingest(self, paths: str | Path | list[str | Path], root: str | Path | None = None) -> IngestReport:
        """增量入库文件或目录：新增/更新/跳过/失败逐个报告；重复运行不会重复写入（第 4 章）。"""
        with self.index.writing():  # 写入期间检索用旧副本，写完把副本更新好再返回
            return self.writer.ingest(paths, root)

    def sync(self, *roots: str | Path, delete_missing: bool = True) -> IngestReport:
        """让库与一个或几个目录一致：新增/更新改过的文件，删除各目录里都已不存在的文件（第 4 章）。

        delete_missing=False：库里有、这些目录里都没有的文件留着（几台主机共用一个库时用）。
        """
        with self.index.writing():
            return self.writer.sync(*roots, delete_missing=delete_missing)

    def delete_source(self, source: str) -> int:
        """删除某个文件的全部块，返回删除的块数（第 4 章）。"""
        with self.index.writing():
            return self.writer.delete_source(source)

    def add_chunks(self, chunks: list[Document]) -> int:
        """写入已经切好的块（评估对比切分配置时用），返回写入的块数（第 4 章）。"""
        with self.index.writing():
            return self.writer.add_chunks(chunks)

    # ---------- 检索 ----------
    def dense(self, query: str, k: int = 4, filter: dict[str, Any] | None = None
              ) -> list[tuple[Document, float]]:
        """向量检索：返回 (块, 余弦相似度)，相似度越大越相关（第 4 章）。"""
        if k <= 0:
            return []
        pairs = self.store.similarity_search_with_score(query, k=k, filter=filter)
        return [(d, 1.0 - float(dist)) for d, dist in pairs]

    def mmr(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
            filter: dict[str, Any] | None = None) -> list[tuple[Document, float]]:
        """最大边际相关（MMR）：在相关的前提下挑彼此不重复的块；分数是与问题的余弦相似度（第 4 章）。"""
        if k <= 0 or self.count() == 0:
            return []
        qvec = np.array(self.embeddings.embed_query(query), dtype=np.float32)
        res = self.collection.query(
            query_embeddings=[qvec], n_results=max(fetch_k, k), where=filter,
            include=["documents", "metadatas", "embeddings"],
        )
        vecs = np.array(res["embeddings"][0], dtype=np.float32)
        if len(vecs) == 0:
            return []
        picked = maximal_marginal_relevance(qvec, vecs, k=k, lambda_mult=lambda_mult)
        sims = vecs @ qvec / (np.linalg.norm(vecs, axis=1) * (np.linalg.norm(qvec) or 1.0) + 1e-12)
        return [
            (Document(page_content=res["documents"][0][i], metadata=res["metadatas"][0][i] or {},
                      id=res["ids"][0][i]), float(sims[i]))
            for i in picked
        ]

    def chunks(self) -> list[Document]:
        """库里的全部块（带 id 与元数据），按写入顺序（第 4 章）。"""
        return list(self.index.current().docs)

    def warm(self, analyzers: tuple[str, ...] = ("word", "char"), rebuild: bool = False) -> None:
        """预先读入全部块与向量、建好 BM25 索引（第一次混合检索就不用等）；rebuild=True 时重建（第 4 章）。"""
        if rebuild:
            self.index.reset()
        snap = self.index.current()
        for analyzer in analyzers:
            snap.bm25(analyzer)

    def bm25(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
             analyzer: str = "word") -> list[tuple[Document, float]]:
        """BM25 关键词检索：返回 (块, BM25 分数)；analyzer 选 word（jieba 词）或 char（字+二字）（第 4 章）。"""
        snap = self.index.current()
        hits = snap.bm25(analyzer).top(query, k, _allowed(snap.docs, filter))
        return [(snap.docs[i], s) for i, s in hits]

    def hybrid(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
               fusion: str = "weighted", candidates: int = HYBRID_CANDIDATES, rerank: bool | None = None
               ) -> list[tuple[Document, float]]:
        """混合检索：向量 + 词级 BM25 + 字级 BM25 各取候选再融合；fusion 选 weighted 或 rrf（第 4 章）。

        rerank=True（或建库时 rerank=True）时先融合出 RERANK_CANDIDATES 块，再交给重排序器排出前 k 块（第 8 章）。
        """
        return [(d, s) for d, s, _ in self._hybrid(query, k, filter, fusion, candidates, rerank)]

    @property
    def reranker(self) -> Any:
        """重排序器：建库时传入的，否则按设置（RERANK_PROVIDER）第一次用时创建（第 8 章）。"""
        if self._reranker is None:
            self._reranker = get_reranker(self.settings)
        return self._reranker

    def _hybrid(self, query: str, k: int, filter: dict[str, Any] | None, fusion: str = "weighted",
                candidates: int = HYBRID_CANDIDATES, rerank: bool | None = None) -> Scored:
        if k <= 0:
            return []
        if self.rerank_default if rerank is None else rerank:
            first = self._hybrid(query, max(k, RERANK_CANDIDATES), filter, fusion, candidates, rerank=False)
            by_id = {d.id: (d, cos) for d, _, cos in first}
            # 重排序器读元数据里的第一阶段分数（score）；返回的仍是库里原来的块
            staged = [Document(page_content=d.page_content, id=d.id, metadata={**d.metadata, "score": s})
                      for d, s, _ in first]
            return [(by_id[d.id][0], s, by_id[d.id][1]) for d, s in self.reranker.rerank(query, staged, k)]
        n = max(k, candidates)
        snap = self.index.current()  # 三路都用同一份副本
        docs, allowed = snap.docs, _allowed(snap.docs, filter)
        cosine = dense_scores(snap, self.embeddings.embed_query(query)) if len(docs) else np.zeros(0)
        dense = top_k(cosine, n, allowed, positive=False)  # 余弦可以为负，也要
        runs = {"dense": {docs[i].id: s for i, s in dense},
                "word": {docs[i].id: s for i, s in snap.bm25("word").top(query, n, allowed)},
                "char": {docs[i].id: s for i, s in snap.bm25("char").top(query, n, allowed)}}
        weights = [HYBRID_WEIGHTS[name] for name in runs]
        if fusion == "rrf":
            fused = rrf_fuse([list(run) for run in runs.values()], k=RRF_K, weights=weights)
        elif fusion == "weighted":
            fused = weighted_fuse(list(runs.values()), weights)
        else:
            raise ValueError(f"fusion 只能是 weighted 或 rrf，收到 {fusion!r}")
        picked = [(i, s) for i, s in fused if i in snap.rows][:k]
        if len(picked) < k:  # 关键词一个都没对上时，用向量检索的顺序补足 k 条（分数记 0）
            seen = {i for i, _ in picked}
            picked += [(i, 0.0) for i in runs["dense"] if i not in seen and i in snap.rows][: k - len(picked)]
        return [(docs[snap.rows[i]], s, float(cosine[snap.rows[i]])) for i, s in picked]

    def scored(self, kind: str, query: str, k: int = 4, **options: Any) -> Scored:
        """按检索方式检索，每块再带上与问题的余弦相似度（拒答阈值用，问题只嵌入一次）（第 4 章）。"""
        if kind in ("hybrid", "hybrid_rerank"):
            return self._hybrid(query, k, **options, **({"rerank": True} if kind == "hybrid_rerank" else {}))
        if kind in ("dense", "mmr"):  # 这两种的分数本身就是余弦相似度
            pairs = self.dense(query, k, **options) if kind == "dense" else self.mmr(query, k, **options)
            return [(d, s, s) for d, s in pairs]
        pairs = self.bm25(query, k, **options)
        if not pairs:
            return []
        snap = self.index.current()
        cosine = dense_scores(snap, self.embeddings.embed_query(query))
        return [(d, s, float(cosine[snap.rows[d.id]])) for d, s in pairs]

    def expand(self, docs: list[Document], window: int = 1) -> list[Document]:
        """句子窗口：搜小块、返回大段——每块换成它与前后各 window 块接成的一段，元数据仍是命中的那块（第 8 章）。"""
        if window <= 0:
            return list(docs)
        snap = self.index.current()
        out = []
        for d in docs:
            group = window_of(snap, d, window)
            out.append(Document(page_content=merge_passage(group), id=d.id,
                                metadata={**d.metadata, "window": len(group)}))
        return out

    def as_retriever(self, kind: str = DEFAULT_RETRIEVER, k: int = 4, **kwargs: Any) -> KnowledgeRetriever:
        """LangChain 检索器：kind 取 hybrid/dense/bm25/mmr（第 4 章）。"""
        if kind not in RETRIEVER_KINDS:
            raise ValueError(f"不认识的检索方式 {kind!r}：可选 {', '.join(RETRIEVER_KINDS)}")
        return KnowledgeRetriever(kb=self, kind=kind, k=k, **kwargs)


def _allowed(docs: list[Document], filter: dict[str, Any] | None) -> np.ndarray | None:
    """元数据过滤在内存里做：满足 filter 的块为 True；没有 filter 时返回 None。"""
    if not filter:
        return None
    return np.array([matches_filter(d.metadata, filter) for d in docs], dtype=bool)


class KnowledgeRetriever(BaseRetriever):
    """知识库检索器：kind 选 hybrid/dense/bm25/mmr；返回的 Document 元数据带 score 与 dense_score（第 4 章）。"""

    kb: KnowledgeBase
    kind: str = DEFAULT_RETRIEVER
    k: int = 4
    fetch_k: int = 20
    lambda_mult: float = 0.5
    filter: dict[str, Any] | None = None
    window: int = 0  # >0：每块换成它与前后各 window 块接成的一段（句子窗口，第 8 章）

    model_config = {"arbitrary_types_allowed": True}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, **_ignored: Any) -> list[Document]:
        # invoke(问题, k=2) 只改这一次返回几块；其他调用参数（如 verbose）和以前一样不起作用
        k = self.k if k is None else k
        options: dict[str, Any] = {"filter": self.filter}
        if self.kind == "mmr":
            options.update(fetch_k=self.fetch_k, lambda_mult=self.lambda_mult)
        found = [
            Document(page_content=d.page_content, id=d.id,
                     metadata={**d.metadata, "score": round(s, 6), DENSE_SCORE: cos, DENSE_QUERY: query})
            for d, s, cos in self.kb.scored(self.kind, query, k, **options)
        ]
        return self.kb.expand(found, self.window) if self.window else found

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None, **_ignored: Any) -> list[Document]:
        # BaseRetriever 默认的异步版不转交调用参数，所以这里自己把 k 带过去
        return await run_in_executor(None, self._get_relevant_documents, query,
                                     run_manager=run_manager.get_sync(), k=k)


_COURSE_KB: dict[tuple[Any, ...], KnowledgeBase] = {}


def course_knowledge_base(settings: Settings | None = None, *, refresh: bool = False) -> KnowledgeBase:
    """课程知识库：data/knowledge_db 入库到 data/vector_db（首次使用时增量入库）（第 5 章）。"""
    settings = settings or load_settings()
    key = (settings.embedding_provider, settings.embedding_model, str(settings.vector_db_dir),
           settings.chroma_host, settings.chroma_port)
    kb = _COURSE_KB.get(key)
    if kb is None or refresh:
        kb = KnowledgeBase("course", settings=settings)
        kb.sync(KNOWLEDGE_DIR)
        _COURSE_KB[key] = kb
    return kb
