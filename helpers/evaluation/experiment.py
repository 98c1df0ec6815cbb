"""对比实验：查询改写、实验配置、逐题打分、坏例归类、在评估集上跑配置并保存结果（第 6 章）。

统计：metric_ci 给一个配置某项指标的自助法区间，paired_compare 给两个配置在同一批题上的配对差值与区间，
ExperimentRunner.with_ci 给结果表加上画误差棒用的 <指标>_lo / <指标>_hi 两列。
成本与延迟：每题记下检索与生成的毫秒数、token 与模型调用次数（QuestionResult.cost），行里汇总成
latency_p50_ms / latency_p95_ms / tokens_per_question / calls_per_question。运行器缓存检索结果和模型回复，
不同配置里相同的提示不再花钱花时间；所以 token 与调用次数连缓存命中的也算（真实运行要付的），延迟只取
真实调用的耗时（命中缓存的检索与模型调用沿用这次运行里第一次真实调用的毫秒数）。延迟与机器和负载有关。
划分：run / details / with_ci 的 split 取 dev 或 test（规则见 dataset.split_rule），题目总是全部跑一遍。
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.tracers.context import register_configure_hook

from helpers.callbacks import llm_usage
from helpers.config import KNOWLEDGE_DIR, PROJECT_ROOT
from helpers.evaluation.compare import bootstrap_ci, paired_bootstrap
from helpers.evaluation.dataset import NO_SPLIT, QAItem, filter_split, load_qa, qa_fingerprint
from helpers.evaluation.metrics import (
    answer_metrics,
    citation_scores,
    distinct_sources,
    facts_in_context,
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

RETRIEVERS = ("dense", "bm25", "hybrid")  # 检索基准（evaluation.bench）也按这三种出表
BASELINE_RETRIEVERS = ("random",)  # 对照用的基线：随机抽 k 块，见 RandomRetriever


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
        if self.retriever not in RETRIEVERS + BASELINE_RETRIEVERS:
            raise ValueError(f"retriever={self.retriever!r} 不认识：可选 {'、'.join(RETRIEVERS + BASELINE_RETRIEVERS)}")
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

    cost: dict[str, float | None] = field(default_factory=dict)  # 耗时与用量，键见 COST_KEYS
    split: str = NO_SPLIT  # 这道题属于评估集的 dev 还是 test

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
        if item.reference_facts():
            scores["facts"] = facts_in_context(retrieved, item.reference_facts(), k)
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
    for name, col in (("hit", "hit@k"), ("recall", "recall@k"), ("ndcg", "ndcg@k"), ("rr", "mrr@k"),
                      ("facts", "facts@k")):
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
# 逐题指标的置信区间与配对比较
# ---------------------------------------------------------------------------

# 汇总列 → 逐题得分的键：汇总列就是这些逐题值的平均（只算有这个值的题）
SUMMARY_METRICS = {"hit@k": "hit", "recall@k": "recall", "ndcg@k": "ndcg", "mrr@k": "rr", "facts@k": "facts",
                   "refusal_accuracy": "refusal_correct", "citation_rate": "cited",
                   "tokens_per_question": "tokens", "calls_per_question": "calls"}
COST_KEYS = ("retrieval_ms", "generation_ms", "latency_ms", "prompt_tokens", "completion_tokens", "tokens",
             "calls", "cached_calls")


def question_metric(result: QuestionResult, metric: str) -> float | None:
    """一道题的某项指标：scores 或 cost 里的键，或 refusal_correct（拒答决定对了记 1）；没定义时为 None（第 6 章）。"""
    metric = SUMMARY_METRICS.get(metric, metric)
    if metric in result.scores:
        return result.scores[metric]
    if metric in result.cost:
        return result.cost[metric]
    if metric == "refusal_correct":  # 该拒则拒、该答则答：拒答准确率的逐题版本，阈值扫描要用
        return None if result.answer is None else float(result.answer.refused == (not result.gold))
    return None


def _values(results: Sequence[QuestionResult], metric: str) -> dict[str, float]:
    return {r.id: float(v) for r in results if (v := question_metric(r, metric)) is not None}


def metric_ci(results: Sequence[QuestionResult], metric: str, n: int = 2000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float, float]:
    """一个配置某项指标的均值及自助法置信区间 (均值, 下限, 上限)，只算这项指标有定义的题（第 6 章）。"""
    values = _values(results, metric)
    if not values:
        raise ValueError(f"没有一道题有指标 {metric!r}：检索指标只对可回答题有定义，回答指标要用 answers=True 跑；"
                         "p50/p95、拒答精确率与召回率不是逐题平均，没有逐题版本")
    return bootstrap_ci(list(values.values()), n=n, seed=seed, level=level)


def paired_compare(a: Sequence[QuestionResult], b: Sequence[QuestionResult], metric: str, n: int = 2000,
                   seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """配置 a 与 b 在同一批题上某项指标的配对差 a − b：差值、配对自助法区间、题数与变好/变坏的题号（第 6 章）。

    按题号配对，只用两边都有这项指标的题；better 是 a 的值比 b 大的题（延迟、token 越小越好，要反过来读）。
    区间不含 0 才说明 a 与 b 有差别；返回 {"metric", "delta", "lo", "hi", "n", "a", "b", "better", "worse"}。
    """
    va, vb = _values(a, metric), _values(b, metric)
    ids = [i for i in va if i in vb]
    if not ids:
        raise ValueError(f"两边没有共同的、有指标 {metric!r} 的题：配对比较要在同一批题上做")
    delta, lo, hi = paired_bootstrap([va[i] for i in ids], [vb[i] for i in ids], n=n, seed=seed, level=level)
    return {"metric": metric, "delta": delta, "lo": lo, "hi": hi, "n": len(ids),
            "a": float(np.mean([va[i] for i in ids])), "b": float(np.mean([vb[i] for i in ids])),
            "better": [i for i in ids if va[i] > vb[i]], "worse": [i for i in ids if va[i] < vb[i]]}


def cost_summary(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """成本与延迟的汇总：端到端延迟的 p50/p95（毫秒）、每题 token 数与模型调用次数（第 6 章）。"""
    latency = [v for r in results if (v := r.cost.get("latency_ms")) is not None]
    p50, p95 = np.percentile(latency, [50, 95]) if latency else (None, None)
    return {"latency_p50_ms": None if p50 is None else round(float(p50), 3),
            "latency_p95_ms": None if p95 is None else round(float(p95), 3),
            "tokens_per_question": _mean(r.cost.get("tokens") for r in results),
            "calls_per_question": _mean(r.cost.get("calls") for r in results)}


# ---------------------------------------------------------------------------
# 随机检索基线
# ---------------------------------------------------------------------------


class RandomRetriever:
    """随机基线：从知识库的全部块里均匀抽 k 块（不放回），种子取自查询文字，同一问题永远抽到同样的块（第 6 章）。"""

    def __init__(self, kb: KnowledgeBase, k: int = 4) -> None:
        self.kb, self.k = kb, k

    def invoke(self, input: str, config: Any = None, **kwargs: Any) -> list[Document]:
        # 不算相关度：问答链判断拒答时会把问题与这几块重新嵌入一次
        chunks = self.kb.chunks()
        seed = int.from_bytes(hashlib.sha256(input.encode()).digest()[:8], "big")  # 不用 hash()：它每个进程都变
        picked = np.random.default_rng(seed).choice(len(chunks), size=min(self.k, len(chunks)), replace=False)
        return [chunks[i] for i in picked]


# ---------------------------------------------------------------------------
# 耗时与用量
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """一次模型调用：没有缓存时的耗时（毫秒，不知道时为 None）、实际耗时、token 数、是否命中缓存。"""

    ms: float | None
    actual_ms: float
    input_tokens: int
    output_tokens: int
    cached: bool


class _CallMeter(BaseCallbackHandler):
    """LangChain 回调：记下一道题里的每次模型调用；命中缓存的调用用这次运行里第一次真实调用的耗时顶替。"""

    def __init__(self, first_ms: dict[str, float]) -> None:
        self.first_ms = first_ms  # 提示 → 第一次（未命中缓存）调用的毫秒数，整个运行器共用
        self.calls: list[_Call] = []
        self._open: dict[Any, tuple[str, float]] = {}

    def _begin(self, run_id: Any, prompt: Any) -> None:
        key = hashlib.sha1(json.dumps(prompt, ensure_ascii=False, default=str).encode()).hexdigest()
        self._open[run_id] = (key, time.perf_counter())

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs) -> None:
        self._begin(run_id, [[(m.type, m.content) for m in batch] for batch in messages])

    def on_llm_start(self, serialized, prompts, *, run_id, **kwargs) -> None:
        self._begin(run_id, prompts)

    def on_llm_end(self, response, *, run_id, **kwargs) -> None:
        key, started = self._open.pop(run_id, ("", time.perf_counter()))
        actual = (time.perf_counter() - started) * 1000
        uses = llm_usage(response)
        # LangChain 在缓存命中时把 usage_metadata 的 total_cost 记为 0（helpers.callbacks 也按这个认）
        cached = bool(uses) and all(u.total_cost == 0 for u in uses)
        if not cached:
            self.first_ms.setdefault(key, actual)
        self.calls.append(_Call(self.first_ms.get(key) if cached else actual, actual,
                                sum(u.input_tokens for u in uses), sum(u.output_tokens for u in uses), cached))


_METER: ContextVar[_CallMeter | None] = ContextVar("evaluation_call_meter", default=None)
register_configure_hook(_METER, inheritable=True)  # 设了 _METER 的上下文里，每次模型调用都会回调它


def _question_cost(calls: Sequence[_Call], wall_ms: float, retrieval_ms: float,
                   retrieval_actual_ms: float) -> dict[str, float | None]:
    """一道题的耗时与用量：缓存命中的检索与模型调用按第一次真实调用的耗时计，token 照算（真实运行要付的）。"""
    known = all(c.ms is not None for c in calls)
    generation = sum(c.ms for c in calls if c.ms is not None) if known else None
    latency = None
    if generation is not None:
        latency = wall_ms - retrieval_actual_ms - sum(c.actual_ms for c in calls) + retrieval_ms + generation
    prompt_tokens, completion_tokens = sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls)
    return {"retrieval_ms": round(retrieval_ms, 3),
            "generation_ms": None if generation is None else round(generation, 3),
            "latency_ms": None if latency is None else round(latency, 3),
            "prompt_tokens": float(prompt_tokens), "completion_tokens": float(completion_tokens),
            "tokens": float(prompt_tokens + completion_tokens), "calls": float(len(calls)),
            "cached_calls": float(sum(c.cached for c in calls))}


def prompt_hash(name: str) -> str:
    """提示版本模板全文的短哈希：提示文字改了，哈希就变，保存的结果能看出是哪版提示跑的（第 6 章）。"""
    return hashlib.sha256(get_prompt(name).template.pretty_repr().encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------
# 实验运行器
# ---------------------------------------------------------------------------


class _QueryRecorder:
    """包住检索器：需要时先改写查询，记下这次检索返回的全部片段与耗时；同一索引上的相同检索只做一次。"""

    def __init__(self, retriever: Any, rewrite: Callable[[str], str] | None,
                 cache: dict[str, tuple[list[Document], float]]) -> None:
        self.retriever, self.rewrite, self.cache = retriever, rewrite, cache
        self.last: list[Document] = []
        self.last_query = ""
        self.last_ms = 0.0  # 这次检索第一次真实运行的毫秒数（命中缓存时沿用它）
        self.actual_ms = 0.0  # 这次实际花的毫秒数（命中缓存时约为 0）

    def invoke(self, input: str, config: Any = None, **kwargs: Any) -> list[Document]:
        self.last_query = self.rewrite(input) if self.rewrite else input
        started = time.perf_counter()
        if self.last_query not in self.cache:
            docs = list(self.retriever.invoke(self.last_query, config, **kwargs))
            self.cache[self.last_query] = (docs, (time.perf_counter() - started) * 1000)
        self.actual_ms = (time.perf_counter() - started) * 1000
        docs, self.last_ms = self.cache[self.last_query]
        self.last = list(docs)
        return self.last


# 各检索方式要先读入的块快照与 BM25 索引：建索引的时间算入库，不算进第一道题的检索延迟
_WARM = {"hybrid": ("word", "char"), "bm25": ("word",), "random": ()}


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
        self._rewrites: dict[str, tuple[str, list[_Call]]] = {}  # 问题 → (改写结果, 改写时的模型调用)
        self._first_ms: dict[str, float] = {}  # 提示 → 第一次真实调用模型的毫秒数（见 _CallMeter）
        self._kbs: dict[str, KnowledgeBase] = {}  # 索引键 → 知识库（每种切分入库一次）
        # (索引, 检索方式, k) → {查询 → (检索结果, 第一次检索的毫秒数)}
        self._retrieved: dict[tuple[str, str, int], dict[str, tuple[list[Document], float]]] = {}
        self._details: dict[tuple[ExperimentConfig, bool], list[QuestionResult]] = {}
        self._rows: dict[tuple[ExperimentConfig, bool, str], dict[str, Any]] = {}
        self._configs: dict[str, ExperimentConfig] = {}  # config_id → 配置（with_ci 从表的行找回配置）

    def _rewrite(self, question: str) -> str:
        """改写只做一次；之后再用到时，把第一次改写的模型调用记成缓存命中（token 照算）。"""
        meter = _METER.get()
        if question not in self._rewrites:
            start = len(meter.calls) if meter else 0
            rewritten = rewrite_query(question, self.llm)
            self._rewrites[question] = (rewritten, list(meter.calls[start:]) if meter else [])
        elif meter is not None:
            meter.calls.extend(replace(c, actual_ms=0.0, cached=True) for c in self._rewrites[question][1])
        return self._rewrites[question][0]

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
        if config.kind in _WARM:
            kb.warm(_WARM[config.kind])
        retriever = (RandomRetriever(kb, config.k) if config.retriever == "random"
                     else kb.as_retriever(config.kind, k=config.k))
        return _QueryRecorder(retriever, self._rewrite if config.rewrite else None, cache)

    def _answer_all(self, config: ExperimentConfig, answers: bool) -> list[QuestionResult]:
        recorder = self._recorder(config)
        chain = (RagChain(recorder, self.llm, prompt=config.prompt, embeddings=self.embeddings,
                          score_threshold=config.score_threshold) if answers else None)
        out = []
        for item in self.qa:
            meter = _CallMeter(self._first_ms)
            token = _METER.set(meter)
            started = time.perf_counter()
            try:
                if chain is None:
                    answer = None
                    recorder.invoke(item.question)
                else:
                    answer = chain.invoke(item.question)
            finally:
                wall = (time.perf_counter() - started) * 1000
                _METER.reset(token)
            out.append(QuestionResult(item.id, item.type, item.question, recorder.last_query, item.gold,
                                      recorder.last, item.answer, answer,
                                      score_question(item, recorder.last, answer, config.k),
                                      _question_cost(meter.calls, wall, recorder.last_ms, recorder.actual_ms),
                                      item.split))
        return out

    def details(self, config: ExperimentConfig, answers: bool = True,
                split: str | None = None) -> list[QuestionResult]:
        """逐题运行并打分（总是跑全部题，按配置缓存，不会重跑）；split 给 dev 或 test 时只返回那一半（第 6 章）。"""
        if not answers and (config, True) in self._details:
            return filter_split(self._details[(config, True)], split)  # 带回答的结果里已有检索明细
        key = (config, answers)
        if key not in self._details:
            self._details[key] = self._answer_all(config, answers)
        return filter_split(self._details[key], split)

    def run(self, config: ExperimentConfig, answers: bool = True, split: str | None = None) -> dict[str, Any]:
        """跑一个配置，返回一行：配置、出处（提供方、模型、温度、提示哈希、评估集指纹）、平均分与成本延迟（第 6 章）。

        split 给 dev 或 test 时只汇总那一半题（行里 split 列记下是哪一半，questions 是那一半的题数）。
        延迟列（latency_p50_ms、latency_p95_ms）随机器与负载变化，两次运行不会逐位相同；其余列不含时间戳。
        """
        key = (config, answers, split or NO_SPLIT)
        if key not in self._rows:
            results = self.details(config, answers, split)
            kb = self.knowledge_base(config)
            temperature = getattr(self.llm, "temperature", None)
            self._configs[config.key()] = config
            self._rows[key] = {
                **asdict(config), "kind": config.kind, "config_id": config.key(),
                "provider": (getattr(self.llm, "metadata", None) or {}).get("provider", "?") if answers else "",
                "model": str(getattr(self.llm, "model_name", "") or "") if answers else "",
                "temperature": float(temperature) if answers and isinstance(temperature, int | float) else None,
                "prompt_hash": prompt_hash(config.prompt) if answers else "",
                "embedding": embedding_id(self.embeddings), "qa": qa_fingerprint(self.qa), "split": split or NO_SPLIT,
                "questions": len(results), "answerable": sum(1 for r in results if r.gold),
                "chunks": kb.count(), "collection": kb.collection_name,
                **summarize(results, answers), **cost_summary(results),
            }
        return self._rows[key]

    def run_many(self, configs: Iterable[ExperimentConfig], answers: bool = True, split: str | None = None):
        """依次跑多个配置，返回一张表（pandas.DataFrame，一行一个配置）（第 6 章）。"""
        import pandas as pd  # 只在出表时才用：导入 pandas 约 0.4 s，命令行基准用不到

        return pd.DataFrame([self.run(c, answers, split) for c in configs])

    def with_ci(self, table: Any, metrics: str | Sequence[str] = ("hit@k", "recall@k", "mrr@k"),
                split: str | None = None, n: int = 2000, seed: int = 0):
        """给 run_many 的表加上每项指标的 95% 自助法区间两列 <指标>_lo、<指标>_hi（画误差棒用）（第 6 章）。

        按行里的 config_id 找回配置、按 split 列（或参数 split）取同一批题；指标可以是汇总列名（hit@k、
        refusal_accuracy、f1、tokens_per_question…）或逐题得分的键（hit、refusal_correct…）。
        """
        out = table.copy()
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        for name in names:
            bounds = []
            for _, row in table.iterrows():
                config = self._configs.get(row["config_id"])
                if config is None:
                    raise ValueError(f"config_id {row['config_id']} 不是这个运行器跑的："
                                     "请用同一个 runner 的 run_many 出表")
                answers = row.get("provider", "?") != ""  # 只跑检索的行（answers=False）provider 为空
                results = self.details(config, answers, split or row.get("split", NO_SPLIT))
                bounds.append(metric_ci(results, name, n=n, seed=seed)[1:])
            out[f"{name}_lo"], out[f"{name}_hi"] = [b[0] for b in bounds], [b[1] for b in bounds]
        return out


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
