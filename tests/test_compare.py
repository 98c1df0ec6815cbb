"""helpers.evaluation.compare：自助法区间、配对差值与检索器对比表（小输入，确定性）。"""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from helpers.evaluation import compare


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    values = [1.0] * 30 + [0.0] * 10
    mean, lo, hi = compare.bootstrap_ci(values)
    assert mean == 0.75 and lo < mean < hi and 0.5 < lo and hi < 0.95
    assert compare.bootstrap_ci(values) == (mean, lo, hi)  # 同一个 seed，同一个区间
    assert compare.bootstrap_ci([1.0] * 5) == (1.0, 1.0, 1.0)
    narrow = compare.bootstrap_ci(values, level=0.5)
    assert lo <= narrow[1] <= narrow[2] <= hi
    with pytest.raises(ValueError, match="至少要一个"):
        compare.bootstrap_ci([])
    with pytest.raises(ValueError, match="level"):
        compare.bootstrap_ci(values, level=95)


def test_paired_bootstrap_sees_a_consistent_gain():
    base = [0.0, 1.0] * 20
    better = [1.0, 1.0] * 20  # 每个原来错的问题都对了
    diff, lo, hi = compare.paired_bootstrap(better, base)
    assert diff == 0.5 and 0 < lo <= diff <= hi
    same = compare.paired_bootstrap(base, base)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="同一批问题"):
        compare.paired_bootstrap([1.0], [1.0, 0.0])


def test_rank_helpers():
    assert compare.reciprocal_ranks([1, 4, None, 12], k=10) == [1.0, 0.25, 0.0, 0.0]
    assert compare.hits([1, 4, None], k=3) == [1.0, 0.0, 0.0]


def _searchers():
    docs = [Document(f"第 {i} 段", metadata={"id": f"p{i}"}) for i in range(4)]

    def right(q, k):  # 问题 "qN" 要的是第 N 段：排第一
        n = int(q[1:])
        return [docs[n]] + [d for d in docs if d is not docs[n]][: k - 1]

    def fixed(q, k):  # 永远同一个顺序，带分数
        return [(d, 1.0) for d in docs[:k]]

    return {"fixed": fixed, "right": right}


def test_compare_retrievers_rows_and_table():
    queries = [{"id": str(n), "question": f"q{n}", "gold": [{"id": f"p{n}"}]} for n in range(4)]
    queries.append({"id": "x", "question": "q0", "gold": []})  # 无答案：不计
    rows = compare.compare_retrievers(queries, _searchers(), ks=(1, 3))
    fixed, right = rows
    assert fixed["retriever"] == "fixed" and fixed["queries"] == 4
    assert fixed["ranks"] == [1, 2, 3, None] and fixed["hit@1"] == 0.25 and fixed["hit@3"] == 0.75
    assert right["hit@1"] == 1.0 and right["mrr"] == 1.0 and right["rr"] == [1.0] * 4
    lo, hi = fixed["hit@1_ci"]
    assert lo <= fixed["hit@1"] <= hi
    assert "d_mrr" not in fixed and right["d_hit@1"] == 0.75 and right["d_hit@1_ci"][0] > 0
    assert right["p50_ms"] >= 0
    table = compare.comparison_table(rows, ks=(1,))
    assert "检索器" in table and "Δmrr" in table and "+0.750" in table and "—" in table
    other = compare.compare_retrievers(queries, _searchers(), ks=(1,), baseline="right")
    assert other[0]["d_hit@1"] == -0.75 and "d_hit@1" not in other[1]
    with pytest.raises(ValueError, match="对照检索器"):
        compare.compare_retrievers(queries, _searchers(), baseline="nope")
    with pytest.raises(ValueError, match="gold"):
        compare.compare_retrievers(queries[-1:], _searchers())
