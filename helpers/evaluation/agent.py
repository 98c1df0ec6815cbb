"""智能体式检索与固定检索问答链的对比：同一批问题上的 hit@k、模型/工具调用次数、拒答率与延迟（第 8 章）。

两边同一个知识库、同一个模型、同一个 k 和拒答阈值。hit@k 按"送到模型面前的块"算：固定链是过了拒答阈值的检索结果，
智能体是它每次调用 search_knowledge 拿到的块（按先后、去重，取前 k 块）。所以这里的 hit@k 会比只看检索器的
hit@k（第 6 章、helpers.bench retrieval）略低：相关度不够、被阈值挡掉的块不算。
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from tqdm.auto import tqdm

from helpers.agent import SEARCH_TOOL, build_agent, calculator, knowledge_tools, run_agent
from helpers.callbacks import StepLogger
from helpers.evaluation.compare import bootstrap_ci, paired_bootstrap, text_table
from helpers.evaluation.dataset import QAItem
from helpers.evaluation.metrics import first_hit_rank
from helpers.knowledge.store import KnowledgeBase
from helpers.rag import build_rag_chain, is_refusal  # 拒答的判据与检索问答链同一个

CHAIN, AGENT = "固定链", "智能体"

__all__ = ["AGENT", "CHAIN", "agent_table", "compare_agent_and_chain"]


def _quiet(progress: bool) -> dict[str, Any]:
    """progress=False 时关掉进度条；否则不传 disable，让 TQDM_DISABLE 等环境设置照常生效（测试与笔记本重跑时关掉）。"""
    return {} if progress else {"disable": True}


def _as_query(item: QAItem | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, QAItem):
        return {"id": item.id, "question": item.question, "gold": list(item.gold)}
    return {"id": item.get("id"), "question": item["question"], "gold": list(item.get("gold") or [])}


def _record(pipeline: str, q: dict[str, Any], docs: Sequence[Any], k: int, refused: bool, ms: float,
            **counts: Any) -> dict[str, Any]:
    """一个问题在一种做法下的结果（绘图与逐题配对比较用）。"""
    rank = first_hit_rank(list(docs)[:k], q["gold"]) if q["gold"] else None
    return {"pipeline": pipeline, "id": q["id"], "question": q["question"], "answerable": bool(q["gold"]),
            "rank": rank, "hit@1": float(rank == 1), f"hit@{k}": float(rank is not None), "refused": refused,
            "ms": round(ms, 3), **counts}


def _chain_records(queries: list[dict[str, Any]], kb: KnowledgeBase, llm: BaseChatModel, k: int,
                   progress: bool) -> list[dict[str, Any]]:
    logger = StepLogger(echo=False)
    chain = build_rag_chain(kb.as_retriever(k=k), llm.with_config(callbacks=[logger]), embeddings=kb.embeddings)
    out = []
    for q in tqdm(queries, desc=CHAIN, unit="问", **_quiet(progress)):
        logger.reset()
        t0 = time.perf_counter()
        ans = chain.invoke(q["question"])
        ms = (time.perf_counter() - t0) * 1000
        shown = [d for d, s in ans.retrieved if s >= chain.score_threshold]  # 送到模型面前的块
        llm_steps = [s for s in logger.steps if s.kind == "llm"]
        out.append(_record(CHAIN, q, shown, k, ans.refused, ms, model_calls=len(llm_steps), tool_calls=0,
                           searches=1, searched=True, stopped_by=None,
                           input_tokens=sum(s.input_tokens for s in llm_steps),
                           output_tokens=sum(s.output_tokens for s in llm_steps), calls=[]))
    return out


def _agent_record(q: dict[str, Any], run: Any, k: int) -> dict[str, Any]:
    return _record(AGENT, q, run.retrieved, k, is_refusal(run.answer), run.seconds * 1000,
                   model_calls=run.model_calls, tool_calls=run.tool_calls,
                   searches=sum(name == SEARCH_TOOL for name, _ in run.calls), searched=run.searched,
                   stopped_by=run.stopped_by, input_tokens=run.input_tokens, output_tokens=run.output_tokens,
                   calls=run.calls)


def _summary(pipeline: str, records: list[dict[str, Any]], k: int) -> dict[str, Any]:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    ms = [r["ms"] for r in records]

    def mean(rows: list[dict[str, Any]], key: str) -> float | None:
        return round(float(np.mean([float(r[key]) for r in rows])), 4) if rows else None

    row: dict[str, Any] = {"pipeline": pipeline, "questions": len(answerable), "unanswerable": len(unanswerable),
                           "hit@1": mean(answerable, "hit@1"), f"hit@{k}": mean(answerable, f"hit@{k}")}
    if answerable:
        _, lo, hi = bootstrap_ci([r[f"hit@{k}"] for r in answerable])
        row[f"hit@{k}_ci"] = (round(lo, 4), round(hi, 4))
    row.update({
        "model_calls": mean(records, "model_calls"), "tool_calls": mean(records, "tool_calls"),
        "searches": mean(records, "searches"),
        "no_search_rate": round(1 - float(np.mean([r["searched"] for r in records])), 4),
        "refusal_rate": mean(unanswerable, "refused"),  # 无答案的问题里拒答了多少（越高越好）
        "wrong_refusal_rate": mean(answerable, "refused"),  # 有答案的问题里却拒答了多少（越低越好）
        "stopped_by_guard": round(float(np.mean([r["stopped_by"] is not None for r in records])), 4),
        "input_tokens": mean(records, "input_tokens"), "output_tokens": mean(records, "output_tokens"),
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "records": records,
    })
    return row


def _paired(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """智能体一行加上与固定链的配对差值：同一批可回答问题上 hit@k 之差及其自助法置信区间。"""
    chain, agent = ([r for r in row["records"] if r["answerable"]] for row in rows)
    if chain:
        d, lo, hi = paired_bootstrap([r[f"hit@{k}"] for r in agent], [r[f"hit@{k}"] for r in chain])
        rows[1][f"d_hit@{k}"], rows[1][f"d_hit@{k}_ci"] = round(d, 4), (round(lo, 4), round(hi, 4))
    return rows


def _check(queries: Sequence[QAItem | Mapping[str, Any]], k: int) -> list[dict[str, Any]]:
    if k < 1:
        raise ValueError(f"k 应当 ≥ 1，现为 {k}")
    picked = [_as_query(q) for q in queries]
    if not picked:
        raise ValueError("问题集是空的：至少给一个问题（评估集见 helpers.evaluation.load_qa）")
    return picked


def compare_agent_and_chain(queries: Sequence[QAItem | Mapping[str, Any]], kb: KnowledgeBase,
                            llm: BaseChatModel, *, k: int = 4, progress: bool = True) -> list[dict[str, Any]]:
    """同一批问题上比较固定检索问答链与智能体：每种做法一行指标，行里的 records 是逐题结果（第 8 章）。

    行的键：pipeline（固定链/智能体）、questions（可回答题数）、unanswerable、hit@1、hit@k 与 hit@k_ci、
    model_calls / tool_calls / searches（每题平均）、no_search_rate（一次也没检索的比例）、
    refusal_rate（无答案题的拒答率）、wrong_refusal_rate（有答案题被拒答的比例）、
    stopped_by_guard（被护栏停下的比例）、input_tokens / output_tokens（每题平均）、p50_ms / p95_ms；
    智能体一行还有 d_hit@k 与 d_hit@k_ci（智能体 − 固定链，配对自助法 95% 区间）。
    """
    picked = _check(queries, k)
    agent = build_agent(llm, [*knowledge_tools(kb, k=k), calculator])
    chain = _chain_records(picked, kb, llm, k, progress)
    agent_records = [_agent_record(q, run_agent(agent, q["question"]), k)
                     for q in tqdm(picked, desc=AGENT, unit="问", **_quiet(progress))]
    return _paired([_summary(CHAIN, chain, k), _summary(AGENT, agent_records, k)], k)


def agent_table(rows: Sequence[Mapping[str, Any]], k: int = 4) -> str:
    """把对比结果排成一张中文表：每种做法一行（第 8 章）。"""
    def num(value: Any, fmt: str = "{:.3f}") -> str:
        return "—" if value is None else fmt.format(value)

    header = ["做法", "hit@1", f"hit@{k}", f"Δhit@{k} [95% 区间]", "模型调用/题", "工具调用/题", "未检索",
              "拒答率(无答案)", "误拒(有答案)", "输入 tokens/题", "p50 ms", "p95 ms"]
    body = []
    for r in rows:
        delta = "—"
        if f"d_hit@{k}" in r:
            lo, hi = r[f"d_hit@{k}_ci"]
            delta = f"{r[f'd_hit@{k}']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        body.append([str(r["pipeline"]), num(r["hit@1"]), num(r.get(f"hit@{k}")), delta,
                     num(r["model_calls"], "{:.2f}"), num(r["tool_calls"], "{:.2f}"), num(r["no_search_rate"]),
                     num(r["refusal_rate"]), num(r["wrong_refusal_rate"]), num(r["input_tokens"], "{:.0f}"),
                     num(r["p50_ms"], "{:.1f}"), num(r["p95_ms"], "{:.1f}")])
    return text_table(header, body)
