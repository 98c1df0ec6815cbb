"""裁判与人工标注的一致性：Cohen's κ、Spearman 秩相关、混淆表与一致性摘要（第 6 章）。

两份标注按位置配对（第 i 个自动标签对第 i 个人工标签）；任一方为空（None 或 NaN）的样例不计。
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Any


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _order(value: Any) -> tuple:
    """数字按大小、其他标签按文字排序：0、0.5、1 不会因为 int 与 float 不同类而排乱。"""
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _labels(x: list, y: list, labels: Sequence[Hashable] | None) -> list:
    found = set(x) | set(y)
    if labels is None:
        return sorted(found, key=_order)
    extra = [v for v in found if v not in set(labels)]
    if extra:
        raise ValueError(f"标注里有 labels 没列出的标签 {extra!r}：把它们加进 labels")
    return list(labels)


def paired_labels(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> tuple[list, list]:
    """两份标注按位置配对，去掉任一方为空（None/NaN）的样例；长度不同或一对都不剩时报错（第 6 章）。"""
    if len(a) != len(b):
        raise ValueError(f"两份标注要对应同一批样例：一份 {len(a)} 个，另一份 {len(b)} 个")
    pairs = [(x, y) for x, y in zip(a, b) if not _missing(x) and not _missing(y)]
    if not pairs:
        raise ValueError("两份标注没有一对都不为空的样例：先给至少一个样例打上两份标签")
    return [x for x, _ in pairs], [y for _, y in pairs]


def cohens_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None], *,
                 weights: str | None = None, labels: Sequence[Hashable] | None = None) -> float:
    """Cohen's κ（scikit-learn 的 cohen_kappa_score）；两份标注只用了同一个标签时 κ 无定义，这里记 1.0（第 6 章）。

    weights="linear" 或 "quadratic" 给加权 κ：有序档位（0、0.5、1）上差一档比差两档罚得轻；
    标签的先后默认按大小（数字）或文字排，文字标签有次序时用 labels 写明（如 ["错", "部分对", "对"]）。
    """
    from sklearn.metrics import cohen_kappa_score  # 只在算 κ 时导入：scikit-learn 约 0.5 s

    x, y = paired_labels(a, b)
    if len(set(x) | set(y)) == 1:  # 两人给所有样例同一个标签：完全一致，但偶然一致率也是 1，公式是 0/0
        return 1.0
    labels = _labels(x, y, labels)
    index = {label: i for i, label in enumerate(labels)}  # 换成名次：0.5 这样的小数标签 scikit-learn 当成连续值拒收
    return float(cohen_kappa_score([index[v] for v in x], [index[v] for v in y], labels=list(range(len(labels))),
                                   weights=weights))


def spearman(a: Sequence[float | None], b: Sequence[float | None]) -> tuple[float, float]:
    """Spearman 秩相关（scipy.stats.spearmanr）：返回 (rho, p 值)；一方全是同一个值时无定义，都给 NaN（第 6 章）。"""
    from scipy.stats import spearmanr

    x, y = paired_labels(a, b)
    if len(x) < 2 or len(set(x)) == 1 or len(set(y)) == 1:  # 没有名次可比：scipy 会警告并给 NaN
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 样例很少时 scipy 提醒 p 值不准：p 值照常返回，由读者判断
        result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def agreement_table(auto: Sequence[Hashable | None], human: Sequence[Hashable | None], *,
                    names: tuple[str, str] = ("自动标签", "人工标签"), labels: Sequence[Hashable] | None = None):
    """混淆表（pandas.DataFrame）：行是自动标签、列是人工标签，两边标签相同，对角线是一致的样例数（第 6 章）。"""
    import pandas as pd

    x, y = paired_labels(auto, human)
    labels = _labels(x, y, labels)
    table = pd.crosstab(pd.Series(x, name=names[0]), pd.Series(y, name=names[1]))
    return table.reindex(index=labels, columns=labels, fill_value=0)


def agreement_summary(auto: Sequence[Hashable | None], human: Sequence[Hashable | None], *,
                      weights: str | None = None, labels: Sequence[Hashable] | None = None) -> dict[str, float | int]:
    """一致性摘要：参与比较的样例数 n、一致率 agreement、Cohen's κ（第 6 章）。"""
    x, y = paired_labels(auto, human)
    same = sum(p == q for p, q in zip(x, y))
    return {"n": len(x), "agreement": same / len(x), "kappa": cohens_kappa(x, y, weights=weights, labels=labels)}
