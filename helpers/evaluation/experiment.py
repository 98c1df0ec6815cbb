"""对比实验：查询改写、实验配置、逐题打分、坏例归类、在评估集上跑配置并保存结果（第 6 章）。"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from langchain_core.caches import InMemoryCache
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel

from helpers.config import KNOWLEDGE_DIR, PROJECT_ROOT
from helpers.evaluation.dataset import QAItem, load_qa, qa_fingerprint
from helpers.evaluation.metrics import (
    answer_metrics,
    citation_scores,
    distinct_sources,
    hit_at_k,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    refusal_metrics,
)
from helpers.knowledge import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    KnowledgeBase,
    collection_name_for,
    embedding_id,
    load_directory,
    make_splitter,
    split_documents,
)
from helpers.llm import get_chat_model, get_embeddings
from helpers.prompts import REWRITE_PROMPT, get_prompt
from helpers.rag import DEFAULT_SCORE_THRESHOLD, RagAnswer, RagChain, is_offline, source_label

RESULTS_DIR = PROJECT_ROOT / "artifacts" / "eval"

# ---------------------------------------------------------------------------
# 查询改写
# ---------------------------------------------------------------------------

# 离线规则只删掉疑问与客套成分：它们出现在几乎每个问题里，对检索只是噪声
_FILLER = re.compile(
    r"请问|请|一下|是什么|什么是|是多少|是哪个|是哪些|有哪些|有什么|为什么|怎么样|怎么|怎样|如何|"
    r"多少|哪个|哪些|哪种|什么|吗|呢|吧|一般|通常|常常|[？?！!。，,；;：:“”\"']"
)


def rule_rewrite(question: str) -> str:
    """离线的"改写"：只按规则删去疑问词与标点；它不理解问题，这一点要说清楚（第 6 章）。"""
    rewritten = re.sub(r"\s+", " ", _FILLER.sub(" ", question)).strip()
    return rewritten or question


def rewrite_query(question: str, llm: BaseChatModel) -> str:
    """检索前改写问题：真实模型按 REWRITE_PROMPT 改写；离线模型不会改写，改用 rule_rewrite（第 6 章）。"""
    if is_offline(llm):
        return rule_rewrite(question)
    reply = (REWRITE_PROMPT | llm).invoke({"question": question})
    return str(reply.content).strip() or question


# ---------------------------------------------------------------------------
# 配置、逐题结果与坏例
# ---------------------------------------------------------------------------

RETRIEVERS = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class ExperimentConfig:
    """一次实验的全部可调项：切分、检索方式、k、MMR、查询改写与提示版本（第 6 章）。"""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    retriever: str = "hybrid"
    k: int = 4
    mmr: bool = False
    rewrite: bool = False
    prompt: str = "guarded_v3"
    score_threshold: float = DEFAULT_SCORE_THRESHOLD

    def __post_init__(self) -> None:
        make_splitter(self.chunk_size, self.chunk_overlap)  # 不合理的切分参数尽早报错
        get_prompt(self.prompt)
        if self.retriever not in RETRIEVERS:
            raise ValueError(f"retriever={self.retriever!r} 不认识：可选 {'、'.join(RETRIEVERS)}")
        if self.mmr and self.retriever != "dense":
            raise ValueError("MMR 是对向量检索结果的重排：mmr=True 时请用 retriever='dense'")
        if self.k < 1:
            raise ValueError(f"k 应当 ≥ 1，现为 {self.k}")
        if not -1.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold 是余弦相似度的下限，应在 -1 到 1 之间，现为 {self.score_threshold}")

    @property
    def kind(self) -> str:
        """交给 KnowledgeBase.as_retriever 的检索方式（第 6 章）。"""
        return "mmr" if self.mmr else self.retriever

    def key(self, salt: str = "") -> str:
        """配置的短哈希（不含时间戳）：同一配置永远得到同一个值（第 6 章）。"""
        blob = json.dumps(asdict(self), sort_keys=True) + "|" + salt
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def label(self) -> str:
        """一行中文标签，画图与打印用（第 6 章）。"""
        parts = [f"块{self.chunk_size}/重叠{self.chunk_overlap}", self.kind, f"k={self.k}"]
        if self.rewrite:
            parts.append("改写")
        if self.score_threshold != DEFAULT_SCORE_THRESHOLD:
            parts.append(f"阈值{self.score_threshold:g}")
        return " · ".join(parts + [self.prompt])


@dataclass
class QuestionResult:
    """一道题在某个配置下的明细：检索到什么、答了什么、各项得分（找坏例用）（第 6 章）。"""

    id: str
    type: str
    question: str
    query: str
    gold: tuple[Mapping[str, Any], ...]
    retrieved: list[Document]
    reference: str
    answer: RagAnswer | None = None
    scores: dict[str, float | None] = field(default_factory=dict)

    def sources(self) -> list[str]:
        """检索结果的出处（PDF 带页码，从 1 数）（第 6 章）。"""
        out = []
        for d in self.retrieved:
            page = d.metadata.get("page")
            out.append(source_label(d.metadata.get("source", "?"), page))
        return out


class FailureKind(StrEnum):
    """坏例的种类：值就是表格里显示的中文（第 6 章）。"""

    MISSED = "检索未命中"
    OVER_REFUSED = "过度拒答"
    NOT_REFUSED = "该拒未拒"
    OFF_REFERENCE = "回答偏离参考"

    def __repr__(self) -> str:  # 放进列表、字典打印时仍显示 '检索未命中'
        return repr(self.value)


FAILURE_KINDS = tuple(FailureKind)


def classify_failure(result: QuestionResult, f1_floor: float = 0.1) -> FailureKind | None:
    """粗分坏例：先看检索有没有找到，再看生成环节；不算坏例返回 None（第 6 章）。"""
    answer = result.answer
    if not result.gold:
        return FailureKind.NOT_REFUSED if answer is not None and not answer.refused else None
    if result.scores.get("hit") == 0:
        return FailureKind.MISSED
    if answer is None:
        return None
    if answer.refused:
        return FailureKind.OVER_REFUSED
    if (result.scores.get("f1") or 0.0) < f1_floor:
        return FailureKind.OFF_REFERENCE
    return None


# ---------------------------------------------------------------------------
# 逐题打分与汇总（纯函数）
# ---------------------------------------------------------------------------


def score_question(item: QAItem, retrieved: Sequence[Document], answer: RagAnswer | None,
                   k: int) -> dict[str, float | None]:
    """一道题的各项得分：检索指标（只算可回答题）、出处数；有回答时再加拒答、回答与引用指标（第 6 章）。"""
    scores: dict[str, float | None] = {}
    if item.answerable:
        scores.update({
            "hit": hit_at_k(retrieved, item.gold, k),
            "recall": recall_at_k(retrieved, item.gold, k),
            "ndcg": ndcg_at_k(retrieved, item.gold, k),
            "rr": reciprocal_rank(retrieved, item.gold, k),
        })
    scores["distinct_sources"] = float(distinct_sources(retrieved))
    if answer is not None:
        scores["refused"] = float(answer.refused)
        if item.answerable:
            scores.update(answer_metrics(answer.answer, item.answer))
            if not answer.refused:
                scores.update(citation_scores(answer, item.gold))
    return scores


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def summarize(results: Sequence[QuestionResult], answers: bool = True) -> dict[str, float | None]:
    """把逐题得分汇总成平均分：检索与回答指标只算可回答题，拒答指标算全部题（第 6 章）。"""
    answerable = [r for r in results if r.gold]
    row: dict[str, float | None] = {}
    for name, col in (("hit", "hit@k"), ("recall", "recall@k"), ("ndcg", "ndcg@k"), ("rr", "mrr@k")):
        row[col] = _mean(r.scores.get(name) for r in answerable)
    row["distinct_sources"] = _mean(r.scores["distinct_sources"] for r in results)
    if not answers:
        return row
    for name in ("em", "f1", "rouge_l", "bleu"):
        row[name] = _mean(r.scores.get(name) for r in answerable)
    answered = [r for r in answerable if not r.answer.refused]
    for name in ("citation_accuracy", "citation_recall"):
        row[name] = _mean(r.scores.get(name) for r in answered)
    row["citation_rate"] = _mean(r.scores.get("cited") for r in answered)
    row.update(refusal_metrics([r.answer.refused for r in results], [bool(r.gold) for r in results]))
    return row


# ---------------------------------------------------------------------------
# 实验运行器
# ---------------------------------------------------------------------------


class _QueryRecorder:
    """包住检索器：需要时先改写查询，记下这次检索返回的全部片段；同一索引上的相同检索只做一次。"""

    def __init__(self, retriever: Any, rewrite: Callable[[str], str] | None,
                 cache: dict[str, list[Document]]) -> None:
        self.retriever, self.rewrite, self.cache = retriever, rewrite, cache
        self.last: list[Document] = []
        self.last_query = ""

    def invoke(self, input: str, config: Any = None, **kwargs: Any) -> list[Document]:
        self.last_query = self.rewrite(input) if self.rewrite else input
        if self.last_query not in self.cache:
            self.cache[self.last_query] = list(self.retriever.invoke(self.last_query, config, **kwargs))
        self.last = list(self.cache[self.last_query])
        return self.last


def _ephemeral_client():
    """进程内的 Chroma（不落盘）；集合名带配置哈希，不同配置互不干扰。"""
    import chromadb  # 用到时才导入：chromadb 约 2 s，helpers.knowledge 也是用到时才导入
    from chromadb.config import Settings as ChromaSettings

    return chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))


def _write_chunks(kb: KnowledgeBase, chunks: list[Document]) -> None:
    """把切好的块写进知识库（KnowledgeBase.add_chunks：与入库同一条写入路径）。"""
    # HNSW 是近似检索：候选列表（ef_search）不小于块数时结果与精确检索一致，
    # 配置之间的差异才只来自配置本身（块数超过知识库默认的 1000 时才需要调大）
    kb.collection.modify(configuration={"hnsw": {"ef_search": max(1000, len(chunks))}})
    kb.add_chunks(chunks)


class ExperimentRunner:
    """在评估集上端到端跑实验：每种切分一个独立的 Chroma 集合，入库按 (块大小, 重叠) 缓存（第 6 章）。"""

    def __init__(self, qa: Sequence[QAItem] | None = None, *, corpus: Path | str | None = None,
                 llm: BaseChatModel | None = None, embeddings: Any = None, client: Any = None) -> None:
        self.qa = list(qa) if qa is not None else load_qa()
        self.corpus = Path(corpus) if corpus is not None else KNOWLEDGE_DIR
        if llm is None:
            llm = get_chat_model()
            llm.cache = InMemoryCache()  # 完全相同的提示只调用一次模型（不同配置常有相同的提示）
        self.llm = llm
        self.embeddings = embeddings or get_embeddings()
        self.client = client or _ephemeral_client()
        self.docs = load_directory(self.corpus)
        digest = hashlib.sha256()
        for d in self.docs:
            digest.update(json.dumps([d.page_content, d.metadata], ensure_ascii=False,
                                     sort_keys=True, default=str).encode())
        self.corpus_digest = digest.hexdigest()[:12]
        self._rewrite = functools.cache(lambda question: rewrite_query(question, self.llm))
        self._kbs: dict[str, KnowledgeBase] = {}  # 索引键 → 知识库（每种切分入库一次）
        self._retrieved: dict[tuple[str, str, int], dict[str, list[Document]]] = {}  # 查询 → 检索结果
        self._details: dict[tuple[ExperimentConfig, bool], list[QuestionResult]] = {}
        self._rows: dict[tuple[ExperimentConfig, bool], dict[str, Any]] = {}

    # ---------- 索引 ----------
    def index_key(self, config: ExperimentConfig) -> str:
        """决定索引内容的那部分配置（块大小、重叠、语料指纹）的哈希（第 6 章）。"""
        blob = json.dumps([config.chunk_size, config.chunk_overlap, self.corpus_digest])
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def collection_name(self, config: ExperimentConfig) -> str:
        """配置对应的集合名：切分或嵌入不同的配置绝不共用一个集合（第 6 章）。"""
        return collection_name_for(f"eval-{self.index_key(config)}", self.embeddings,
                                   config.chunk_size, config.chunk_overlap)

    def knowledge_base(self, config: ExperimentConfig) -> KnowledgeBase:
        """取出配置的知识库：同一 (块大小, 重叠) 只切分、嵌入、入库一次，之后只读（第 6 章）。"""
        key = self.index_key(config)
        if key not in self._kbs:
            name = self.collection_name(config)
            if name in {c.name for c in self.client.list_collections()}:
                self.client.delete_collection(name)  # 上次运行留下的同名集合：删掉重建，保证干净
            kb = KnowledgeBase(f"eval-{key}", embeddings=self.embeddings, chunk_size=config.chunk_size,
                               chunk_overlap=config.chunk_overlap, client=self.client)
            _write_chunks(kb, split_documents(self.docs, config.chunk_size, config.chunk_overlap))
            self._kbs[key] = kb
        return self._kbs[key]

    # ---------- 运行 ----------
    def _recorder(self, config: ExperimentConfig) -> _QueryRecorder:
        kb = self.knowledge_base(config)
        cache = self._retrieved.setdefault((self.index_key(config), config.kind, config.k), {})
        return _QueryRecorder(kb.as_retriever(config.kind, k=config.k),
                              self._rewrite if config.rewrite else None, cache)

    def _answer_all(self, config: ExperimentConfig, answers: bool) -> list[QuestionResult]:
        recorder = self._recorder(config)
        chain = (RagChain(recorder, self.llm, prompt=config.prompt, embeddings=self.embeddings,
                          score_threshold=config.score_threshold) if answers else None)
        out = []
        for item in self.qa:
            if chain is None:
                answer = None
                recorder.invoke(item.question)
            else:
                answer = chain.invoke(item.question)
            out.append(QuestionResult(item.id, item.type, item.question, recorder.last_query, item.gold,
                                      recorder.last, item.answer, answer,
                                      score_question(item, recorder.last, answer, config.k)))
        return out

    def details(self, config: ExperimentConfig, answers: bool = True) -> list[QuestionResult]:
        """逐题运行并打分；结果按配置缓存，同一配置不会重跑（第 6 章）。"""
        if not answers and (config, True) in self._details:
            return self._details[(config, True)]  # 带回答的结果里已有检索明细
        key = (config, answers)
        if key not in self._details:
            self._details[key] = self._answer_all(config, answers)
        return self._details[key]

    def run(self, config: ExperimentConfig, answers: bool = True) -> dict[str, Any]:
        """跑一个配置，返回一行指标（配置、提供方、模型、评估集指纹与各项平均分）（第 6 章）。"""
        key = (config, answers)
        if key not in self._rows:
            results = self.details(config, answers)
            kb = self.knowledge_base(config)
            self._rows[key] = {
                **asdict(config), "kind": config.kind, "config_id": config.key(),
                "provider": (getattr(self.llm, "metadata", None) or {}).get("provider", "?") if answers else "",
                "model": str(getattr(self.llm, "model_name", "") or "") if answers else "",
                "embedding": embedding_id(self.embeddings), "qa": qa_fingerprint(self.qa),
                "questions": len(results), "answerable": sum(1 for r in results if r.gold),
                "chunks": kb.count(), "collection": kb.collection_name,
                **summarize(results, answers),
            }
        return self._rows[key]

    def run_many(self, configs: Iterable[ExperimentConfig], answers: bool = True):
        """依次跑多个配置，返回一张表（pandas.DataFrame，一行一个配置）（第 6 章）。"""
        import pandas as pd  # 只在出表时才用：导入 pandas 约 0.4 s，命令行基准用不到

        return pd.DataFrame([self.run(c, answers) for c in configs])


# ---------------------------------------------------------------------------
# 结果文件
# ---------------------------------------------------------------------------


def save_results(rows: Any, path: Path | str) -> tuple[Path, Path]:
    """把结果表同时写成 CSV（UTF-8 带 BOM，Excel 可直接打开）与 JSON，返回两个路径（第 6 章）。"""
    import pandas as pd  # 同 run_many

    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = path.with_suffix(".csv"), path.with_suffix(".json")
    table.to_csv(csv_path, index=False, encoding="utf-8-sig", float_format="%.6g")
    records = json.loads(table.to_json(orient="records", force_ascii=False, double_precision=6))
    json_path.write_text(json.dumps({"results": records}, ensure_ascii=False, indent=1) + "\n",
                         encoding="utf-8")
    return csv_path, json_path


def load_results(*paths: Path | str):
    """读回一个或多个结果文件（CSV 或 JSON）并拼成一张表，用来比较不同提供方的运行（第 6 章）。"""
    import pandas as pd  # 同 run_many

    tables = []
    for p in map(Path, paths):
        if p.suffix == ".json":
            tables.append(pd.DataFrame(json.loads(p.read_text(encoding="utf-8"))["results"]))
        else:
            tables.append(pd.read_csv(p, encoding="utf-8-sig"))
    if not tables:
        raise ValueError("没有给出结果文件：例如 load_results(RESULTS_DIR / 'offline.csv')")
    return pd.concat(tables, ignore_index=True)
