"""检索器对比：自助法（bootstrap）置信区间、配对自助法差值，以及逐题名次的对比表（第 8 章）。

一个检索改进是不是真的更好，要看同一批问题上"新 − 旧"的差值有没有把 0 排除在外：
paired_bootstrap 对问题重抽样、每次两边用同一批问题，比两边各算一个区间再看是否重叠灵敏得多。
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from helpers.evaluation.metrics import first_hit_rank

Searcher = Callable[[str, int], Sequence[Any]]  # (问题, k) → 检索结果：Document 或 (Document, 分数) 的列表
DEFAULT_KS = (1, 3, 5, 10)


def _resample_means(values: np.ndarray, n: int, seed: int) -> np.ndarray:
    """对 values 有放回重抽样 n 次，返回每次的均值。"""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    return values[idx].mean(axis=1)


def _check(values: Sequence[float], level: float) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not len(arr):
        raise ValueError("自助法至少要一个数值（每个问题一个）")
    if not 0 < level < 1:
        raise ValueError(f"level 应在 0 与 1 之间（如 0.95），收到 {level}")
    return arr


def bootstrap_ci(values: Sequence[float], n: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """逐题数值（如每题是否命中 0/1）的均值及其自助法百分位置信区间：(均值, 下限, 上限)（第 8 章）。"""
    arr = _check(values, level)
    means = _resample_means(arr, n, seed)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(arr.mean()), float(lo), float(hi)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """同一批问题上 a − b 的均值差及其配对自助法置信区间：(差值, 下限, 上限)；区间不含 0 才算有差别（第 8 章）。"""
    arr_a, arr_b = _check(a, level), _check(b, level)
    if len(arr_a) != len(arr_b):
        raise ValueError(f"配对比较要求两边是同一批问题：一边 {len(arr_a)} 个，另一边 {len(arr_b)} 个")
    return bootstrap_ci(arr_a - arr_b, n=n, seed=seed, level=level)


def reciprocal_ranks(ranks: Sequence[int | None], k: int) -> list[float]:
    """首个命中名次 → 倒数排名（名次超过 k 或没命中记 0）（第 8 章）。"""
    return [1.0 / r if r is not None and r <= k else 0.0 for r in ranks]


def hits(ranks: Sequence[int | None], k: int) -> list[float]:
    """首个命中名次 → 每题前 k 名是否命中（1.0 / 0.0）（第 8 章）。"""
    return [1.0 if r is not None and r <= k else 0.0 for r in ranks]


def _docs(found: Sequence[Any]) -> list[Any]:
    """检索结果统一成块的列表：(块, 分数) 取出块。"""
    return [d[0] if isinstance(d, tuple) else d for d in found]


def query_ranks(queries: Sequence[Mapping[str, Any]], search: Searcher, k: int
                ) -> tuple[list[int | None], list[float]]:
    """逐题检索：返回 (每题首个命中的名次或 None, 每题耗时毫秒)；问题是带 question 与 gold 的字典（第 8 章）。"""
    ranks, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        found = search(q["question"], k)
        times.append((time.perf_counter() - t0) * 1000)
        ranks.append(first_hit_rank(_docs(found), q["gold"]))
    return ranks, times


def compare_retrievers(queries: Sequence[Mapping[str, Any]], searchers: Mapping[str, Searcher],
                       ks: Sequence[int] = DEFAULT_KS, baseline: str | None = None, n: int = 2000,
                       seed: int = 0, level: float = 0.95) -> list[dict[str, Any]]:
    """在同一批问题上跑几个检索器，每个一行：hit@k、MRR 及置信区间、延迟、逐题倒数排名（第 8 章）。

    baseline 给出对照检索器的名字（默认第一个）：其余各行再带上与它的配对差值 d_hit@k / d_mrr 及区间。
    行的键：retriever、queries、hit@k 与 hit@k_ci（(下限, 上限)）、mrr 与 mrr_ci、p50_ms、
    ranks（逐题名次，None 表示前 max(ks) 名里没有）、rr（逐题倒数排名），有对照时还有 d_hit@k(_ci)、d_mrr(_ci)。
    """
    answerable = [q for q in queries if q.get("gold")]
    if not answerable:
        raise ValueError("问题里没有带 gold 的：hit@k 无从计算")
    if not searchers:
        raise ValueError("至少给一个检索器")
    ks = tuple(sorted(set(ks)))
    kmax = ks[-1]
    base = baseline if baseline is not None else next(iter(searchers))
    if base not in searchers:
        raise ValueError(f"对照检索器 {base!r} 不在 {list(searchers)} 里")
    rows: dict[str, dict[str, Any]] = {}
    for name, search in searchers.items():
        ranks, times = query_ranks(answerable, search, kmax)
        row: dict[str, Any] = {"retriever": name, "queries": len(answerable)}
        for k in ks:
            mean, lo, hi = bootstrap_ci(hits(ranks, k), n, seed, level)
            row[f"hit@{k}"], row[f"hit@{k}_ci"] = round(mean, 4), (round(lo, 4), round(hi, 4))
        mean, lo, hi = bootstrap_ci(reciprocal_ranks(ranks, kmax), n, seed, level)
        row["mrr"], row["mrr_ci"] = round(mean, 4), (round(lo, 4), round(hi, 4))
        row["p50_ms"] = round(float(np.percentile(times, 50)), 3)
        row["ranks"], row["rr"] = ranks, reciprocal_ranks(ranks, kmax)
        rows[name] = row
    ref = rows[base]["ranks"]
    for name, row in rows.items():
        if name == base:
            continue
        for k in ks:
            d, lo, hi = paired_bootstrap(hits(row["ranks"], k), hits(ref, k), n, seed, level)
            row[f"d_hit@{k}"], row[f"d_hit@{k}_ci"] = round(d, 4), (round(lo, 4), round(hi, 4))
        d, lo, hi = paired_bootstrap(row["rr"], reciprocal_ranks(ref, kmax), n, seed, level)
        row["d_mrr"], row["d_mrr_ci"] = round(d, 4), (round(lo, 4), round(hi, 4))
    return list(rows.values())


def comparison_table(rows: Sequence[Mapping[str, Any]], ks: Sequence[int] = (1, 5)) -> str:
    """把 compare_retrievers 的结果排成一张中文对比表：指标 [区间]，与对照的差值 [区间]（第 8 章）。"""

    def cell(row: Mapping[str, Any], key: str, signed: bool = False) -> str:
        if key not in row:
            return "—"
        lo, hi = row[f"{key}_ci"]
        fmt = "{:+.3f}" if signed else "{:.3f}"
        return f"{fmt.format(row[key])} [{fmt.format(lo)}, {fmt.format(hi)}]"

    keys = [f"hit@{k}" for k in ks] + ["mrr"]
    header = ["检索器", *keys, *(f"Δ{k}" for k in keys), "p50_ms"]
    body = [[str(r["retriever"]), *(cell(r, k) for k in keys), *(cell(r, f"d_{k}", True) for k in keys),
             f"{r['p50_ms']:.2f}"] for r in rows]
    return text_table(header, body)


def text_table(header: list[str], body: list[list[str]]) -> str:
    """把表头与各行排成按显示宽度对齐的纯文本表（汉字占两格）（第 8 章）。"""
    widths = [max(_width(h), *(_width(b[i]) for b in body)) for i, h in enumerate(header)]
    return "\n".join("  ".join(_pad(c, w) for c, w in zip(line, widths)) for line in [header, *body])


def _width(text: str) -> int:
    """显示宽度：汉字占两格。"""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
