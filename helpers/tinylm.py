"""一个真正的、很小的生成式语言模型：在课程资料上现场训练的字符 n 元模型（第 1、2 章）。

它和大模型做的是同一件事：给定前文，算出“下一个字”的概率分布，再按分布选一个字，一字一字往下写。
区别只在规模：它只记得前 ``order - 1`` 个字，参数是数出来的频次，而不是学出来的神经网络权重。

平滑用 Witten-Bell 插值（Witten & Bell 1991；Chen & Goodman 1998 §2.6）：每一阶的分布都与低一阶插值，
没见过的上下文自动退回更短的上下文，最后退回单字频率，所以任何前文都能得到一个完整的概率分布。
nltk.lm 也有 WittenBellInterpolated，但它一次只算一个字的概率；这里要的是每一步整张分布（画图、采样），
用 numpy 一次算完，所以手写这几十行。
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "CharNGram",
    "apply_temperature",
    "entropy_bits",
    "top_p_filter",
    "train_char_ngram",
]


@dataclass
class CharNGram:
    """字符 n 元语言模型：``distribution(前文)`` 给出下一个字在整个字表上的概率（第 1、2 章）。"""

    order: int
    vocab: list[str]
    unigram: np.ndarray
    # 第 k 阶（k = 1 … order-1）：长度为 k 的上下文 → (后继字的编号, 次数)
    tables: list[dict[str, tuple[np.ndarray, np.ndarray]]] = field(repr=False)
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {ch: i for i, ch in enumerate(self.vocab)}

    @property
    def parameters(self) -> int:
        """模型存下的数字个数（每个“上下文 → 后继字”的次数算一个），用来和大模型的参数量对比。"""
        return len(self.vocab) + sum(len(ids) for table in self.tables for ids, _ in table.values())

    def truncated(self, order: int) -> CharNGram:
        """只看前 order-1 个字的低阶模型：共用同一批计数，与单独训练一个 order 阶模型完全相同（第 1 章）。"""
        if not 1 <= order <= self.order:
            raise ValueError(f"order 应在 1～{self.order} 之间")
        return replace(self, order=order, tables=self.tables[: order - 1])

    def distribution(self, context: str) -> np.ndarray:
        """下一个字的概率分布（长度等于字表，和为 1）：从单字频率出发，逐阶与更长的上下文插值。"""
        probs = self.unigram.copy()
        for k in range(1, self.order):
            if len(context) < k:
                break
            entry = self.tables[k - 1].get(context[-k:])
            if entry is None:
                break  # 更长的上下文也不可能见过
            ids, counts = entry
            total, types = counts.sum(), len(ids)
            probs *= types / (total + types)
            probs[ids] += counts / (total + types)
        return probs

    def top_next(self, context: str, k: int = 10) -> list[tuple[str, float]]:
        """概率最高的 k 个候选字及其概率。"""
        probs = self.distribution(context)
        best = np.argsort(-probs, kind="stable")[:k]
        return [(self.vocab[i], float(probs[i])) for i in best]

    def generate(self, prompt: str, max_chars: int = 40, *, temperature: float = 1.0, top_p: float = 1.0,
                 seed: int | None = 0, stop: str = "\n") -> str:
        """从 prompt 往后一字一字地写：每步按温度与 top-p 调整分布再抽一个字；temperature=0 即每步取最可能的字。"""
        rng = np.random.default_rng(seed)
        text = prompt
        for _ in range(max_chars):
            probs = top_p_filter(apply_temperature(self.distribution(text), temperature), top_p)
            ch = self.vocab[int(rng.choice(len(probs), p=probs))]
            if ch in stop:
                break
            text += ch
        return text[len(prompt):]

    def perplexity(self, text: str) -> float:
        """困惑度：模型在 text 上平均每个字“在几个字里犹豫”，越低说明越能预测这段文字。"""
        logs = [np.log(self.distribution(text[:i])[self.index[ch]]) for i, ch in enumerate(text) if ch in self.index]
        if not logs:
            raise ValueError("这段文字里没有一个字出现在模型的字表中，无法计算困惑度")
        return float(np.exp(-np.mean(logs)))


def train_char_ngram(texts: Iterable[str], order: int = 4, *, min_count: int = 1) -> CharNGram:
    """数出每个长度 ≤ order-1 的上下文后面跟过哪些字、各几次；出现少于 min_count 次的字不进字表。"""
    if order < 1:
        raise ValueError("order 至少为 1（1 表示只看单字频率）")
    texts = [t for t in texts if t]
    chars = Counter(ch for t in texts for ch in t)
    vocab = sorted(ch for ch, n in chars.items() if n >= min_count)
    if not vocab:
        raise ValueError("训练文本为空：至少要有一个字")
    index = {ch: i for i, ch in enumerate(vocab)}
    unigram = np.array([chars[ch] for ch in vocab], dtype=float)
    raw: list[defaultdict[str, Counter[int]]] = [defaultdict(Counter) for _ in range(order - 1)]
    for t in texts:
        for i, ch in enumerate(t):
            if ch not in index:
                continue
            for k in range(1, min(order - 1, i) + 1):
                raw[k - 1][t[i - k:i]][index[ch]] += 1
    tables = [
        {ctx: (np.fromiter(c.keys(), dtype=np.int64), np.fromiter(c.values(), dtype=float)) for ctx, c in table.items()}
        for table in raw
    ]
    return CharNGram(order=order, vocab=vocab, unigram=unigram / unigram.sum(), tables=tables)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """温度：把概率取对数（相当于 logits）除以 T 再做 softmax；T<1 更集中，T>1 更平，T=0 只留最可能的一个。"""
    if temperature < 0:
        raise ValueError("temperature 不能为负数")
    probs = np.asarray(probs, dtype=float)
    if temperature == 0:
        out = np.zeros_like(probs)
        out[int(np.argmax(probs))] = 1.0
        return out
    with np.errstate(divide="ignore"):
        logits = np.log(probs) / temperature
    logits -= logits.max()
    weights = np.exp(logits)
    return weights / weights.sum()


def top_p_filter(probs: np.ndarray, top_p: float) -> np.ndarray:
    """top-p（核采样）：按概率从高到低累加，够 top_p 就停，只在这些候选里按比例重新分配概率。"""
    if not 0 < top_p <= 1:
        raise ValueError("top_p 应在 (0, 1] 之间")
    probs = np.asarray(probs, dtype=float)
    order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, top_p - 1e-12)) + 1]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def entropy_bits(probs: np.ndarray) -> float:
    """分布的熵（比特）：0 表示确定只有一个选择，越大越“拿不准”。"""
    p = np.asarray(probs, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())
