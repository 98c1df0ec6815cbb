"""评估指标：金标准命中判定、检索指标、中文回答指标（EM/F1/ROUGE-L/BLEU）、引用与拒答（第 6 章）。"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import jieba
from langchain_core.documents import Document

from helpers.evaluation.dataset import QUOTE_KEY, QAItem, _squash_spaces
from helpers.prompts import CITATION_MARK
from helpers.rag import RagAnswer, Source

jieba.setLogLevel(logging.WARNING)  # 不打印"Building prefix dict…"

# ---------------------------------------------------------------------------
# 命中判定：检索基准与对比实验共用这一份
# ---------------------------------------------------------------------------


def metadata_of(item: Document | Source | Mapping[str, Any]) -> Mapping[str, Any]:
    """取出检索结果的元数据（Document、回答里的 Source 或普通字典都行）（第 6 章）。"""
    if isinstance(item, Document):
        return item.metadata
    if isinstance(item, Source):
        return {"source": item.source, "page": item.page}
    return item


def _text_of(item: Document | Source | Mapping[str, Any]) -> str | None:
    """检索结果的正文：Document 取整块，Source 取摘录，元数据字典没有正文返回 None。"""
    if isinstance(item, Document):
        return item.page_content
    if isinstance(item, Source):
        return item.snippet
    return None


def _same(key: str, want: Any, got: Any) -> bool:
    if want == got:
        return True
    if key == "page":  # 页码按整数比较："3" 与 3 相同
        try:
            return int(want) == int(got)
        except (TypeError, ValueError):
            return False
    return str(want) == str(got)  # 其余按字符串形式比较：.jsonl 语料的 id 7 与 "7" 相同


def matches(item: Document | Source | Mapping[str, Any], gold: Mapping[str, Any]) -> bool:
    """元数据包含 gold 条目除 quote 外的每个键和值，且带 quote 时正文（去空白后）含这段原文，即为命中（第 6 章）。"""
    meta = metadata_of(item)
    if not all(meta.get(key) is not None and _same(key, want, meta[key])
               for key, want in gold.items() if key != QUOTE_KEY):
        return False
    if QUOTE_KEY not in gold:
        return True
    text = _text_of(item)
    if text is None:
        raise ValueError(f"这条 gold 带 quote（{gold[QUOTE_KEY]!r}），要核对原文：请传入检索到的块（Document），"
                         "而不只是它的元数据")
    return _squash_spaces(str(gold[QUOTE_KEY])) in _squash_spaces(text)  # 去掉全部空白再比：不受断行影响


def is_hit(item: Document | Source | Mapping[str, Any], gold: Sequence[Mapping[str, Any]]) -> bool:
    """检索到的块算不算命中：它与某一条 gold 相符（元数据键值相同，带 quote 时正文含这段原文）（第 4 章）。"""
    return any(matches(item, g) for g in gold)


def first_hit_rank(docs: Sequence[Any], gold: Sequence[Mapping[str, Any]]) -> int | None:
    """第一个命中的名次（从 1 开始），没命中返回 None（第 4 章）。"""
    return next((rank for rank, doc in enumerate(docs, 1) if is_hit(doc, gold)), None)


def _check(gold: Sequence[Mapping[str, Any]], k: int | None) -> None:
    if not gold:
        raise ValueError("这个问题的 gold 为空（不可回答），不参与检索指标：请先过滤掉")
    if k is not None and k < 1:
        raise ValueError(f"k 应当 ≥ 1，现为 {k}")


def first_matches(retrieved: Sequence[Any], gold: Sequence[Mapping[str, Any]],
                  k: int | None = None) -> list[int | None]:
    """前 k 个结果逐个标出"首次找到"的金标准序号；重复命中同一条金标准记 None（第 6 章）。"""
    _check(gold, k)
    found: set[int] = set()
    out: list[int | None] = []
    for item in list(retrieved)[:k]:
        new = next((j for j, g in enumerate(gold) if j not in found and matches(item, g)), None)
        if new is not None:
            found.add(new)
        out.append(new)
    return out


# ---------------------------------------------------------------------------
# 检索指标
# ---------------------------------------------------------------------------


def hit_at_k(retrieved: Sequence[Any], gold: Sequence[Mapping[str, Any]], k: int) -> float:
    """Hit@k：前 k 个结果里至少有一个命中金标准记 1，否则 0（第 6 章）。"""
    return float(any(j is not None for j in first_matches(retrieved, gold, k)))


def recall_at_k(retrieved: Sequence[Any], gold: Sequence[Mapping[str, Any]], k: int) -> float:
    """Recall@k：被前 k 个结果找到的金标准条目数 ÷ 金标准条目总数（第 6 章）。"""
    return sum(j is not None for j in first_matches(retrieved, gold, k)) / len(gold)


def reciprocal_rank(retrieved: Sequence[Any], gold: Sequence[Mapping[str, Any]],
                    k: int | None = None) -> float:
    """倒数排名：第一个命中结果排第 r 名得 1/r，前 k 名都没命中得 0（第 6 章）。"""
    for rank, j in enumerate(first_matches(retrieved, gold, k), start=1):
        if j is not None:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Sequence[Any], gold: Sequence[Mapping[str, Any]], k: int) -> float:
    """nDCG@k（二值相关）：每条金标准只在首次找到时得分 1/log2(排名+1)，再除以理想排序的得分（第 6 章）。"""
    # 手写而不用 sklearn.metrics.ndcg_score：它按位置打分，重复命中同一文档会被重复计分
    marks = first_matches(retrieved, gold, k)
    dcg = sum(1.0 / math.log2(r + 1) for r, j in enumerate(marks, start=1) if j is not None)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def retrieval_metrics(items: Sequence[QAItem], retrieved: Mapping[str, Sequence[Any]],
                      ks: Iterable[int] = (1, 3, 5)) -> dict[str, float | int | None]:
    """对可回答的问题求平均：hit@k、recall@k、nDCG@k 与 MRR；不可回答的问题不计入（第 6 章）。"""
    ks = sorted(set(ks))
    answerable = [i for i in items if i.answerable]
    missing = [i.id for i in answerable if i.id not in retrieved]
    if missing:
        raise ValueError(f"缺少这些问题的检索结果：{'、'.join(missing[:5])}")
    out: dict[str, float | int | None] = {"queries": len(answerable)}
    names = [f"{m}@{k}" for k in ks for m in ("hit", "recall", "ndcg")] + ["mrr"]
    if not answerable:
        return {**out, **{n: None for n in names}}
    for k in ks:
        for name, fn in (("hit", hit_at_k), ("recall", recall_at_k), ("ndcg", ndcg_at_k)):
            out[f"{name}@{k}"] = sum(fn(retrieved[i.id], i.gold, k) for i in answerable) / len(answerable)
    out["mrr"] = sum(reciprocal_rank(retrieved[i.id], i.gold) for i in answerable) / len(answerable)
    return out


def metrics_from_ranks(ranks: Sequence[int | None], ks: Sequence[int]) -> dict[str, float]:
    """由每个问题的首个命中名次（first_hit_rank）算 hit@k 与 MRR@max(k)（第 4 章）。"""
    n = max(len(ranks), 1)
    out = {f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    kmax = max(ks)
    out[f"mrr@{kmax}"] = sum(1.0 / r for r in ranks if r is not None and r <= kmax) / n
    return out


def distinct_sources(docs: Sequence[Document]) -> int:
    """前 k 个片段来自几个不同的出处（PDF 按页算）：看 MMR 是否带来多样性（第 6 章）。"""
    return len({(d.metadata.get("source"), d.metadata.get("page")) for d in docs})


# ---------------------------------------------------------------------------
# 回答指标（中文）
# ---------------------------------------------------------------------------


def _is_punct_or_space(text: str) -> bool:
    return all(unicodedata.category(c)[0] in "PZC" or c.isspace() for c in text)


def normalize_answer(text: str) -> str:
    """规范化：全角转半角、英文小写、去掉标点与空白（精确匹配用）（第 6 章）。"""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(c for c in text if not _is_punct_or_space(c))


@lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFKC", text).lower()
    return tuple(t for t in jieba.lcut(text) if not _is_punct_or_space(t))


def answer_tokens(text: str) -> list[str]:
    """用 jieba 分词（先全角转半角、英文小写），去掉标点与空白（第 6 章）。"""
    # 与 helpers.knowledge.word_tokens（rjieba，检索用）不同：这里是给回答打分的词
    return list(_tokens(text or ""))


def exact_match(prediction: str, reference: str) -> float:
    """精确匹配：规范化后完全相同记 1，否则 0（两者都为空也记 1）（第 6 章）。"""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def _prf(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, reference: str) -> float:
    """词级 F1：jieba 词的多重集合重合数算精确率与召回率，再取调和平均（第 6 章）。"""
    return _f1(answer_tokens(prediction), answer_tokens(reference))


def _f1(pred: Sequence[str], ref: Sequence[str]) -> float:
    if not pred or not ref:  # 与 SQuAD 相同：一方为空时，两者都空记 1，否则 0
        return float(len(pred) == len(ref))
    return _prf(sum((Counter(pred) & Counter(ref)).values()), len(pred), len(ref))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """最长公共子序列的长度（动态规划，只保留一行）（第 6 章）。"""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1：LCS 长度 ÷ 回答词数为精确率，÷ 参考词数为召回率，取调和平均（第 6 章）。"""
    return _rouge_l(answer_tokens(prediction), answer_tokens(reference))


def _rouge_l(pred: Sequence[str], ref: Sequence[str]) -> float:
    if not pred or not ref:
        return float(len(pred) == len(ref))
    return _prf(lcs_length(pred, ref), len(pred), len(ref))


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(prediction: str, reference: str, max_n: int = 4, epsilon: float = 0.1) -> float:
    """句子级 BLEU-4，Chen & Cherry (2014) 平滑方法 1（ε=0.1），在 jieba 词上计算（第 6 章）。"""
    # BLEU = BP·exp(Σₙ ¼·log pₙ)，pₙ = mₙ / max(1, lₙ)（mₙ 为截断后的 n 元重合数，lₙ 为回答的 n 元总数）
    # mₙ = 0 时 pₙ 改用 ε / max(1, lₙ)；BP = 1（c > r）或 exp(1 − r/c)；一个 1 元词都没对上时为 0
    # 与 nltk 的 sentence_bleu(..., smoothing_function=SmoothingFunction().method1) 相同
    # 手写：nltk、sacrebleu 都不在依赖里，为二十行的公式新增依赖不划算
    return _bleu(answer_tokens(prediction), answer_tokens(reference), max_n, epsilon)


def _bleu(pred: Sequence[str], ref: Sequence[str], max_n: int = 4, epsilon: float = 0.1) -> float:
    if not pred or not ref:
        return float(len(pred) == len(ref))
    logs = []
    for n in range(1, max_n + 1):
        hyp, gold = _ngrams(pred, n), _ngrams(ref, n)
        m, total = sum((hyp & gold).values()), max(1, sum(hyp.values()))
        if n == 1 and m == 0:
            return 0.0
        logs.append(math.log((m if m else epsilon) / total))
    c, r = len(pred), len(ref)
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(sum(logs) / max_n)


def answer_metrics(prediction: str, reference: str) -> dict[str, float]:
    """一条回答对参考答案的 EM、F1、ROUGE-L 与 BLEU（第 6 章）。"""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)  # 只分一次词
    return {"em": exact_match(prediction, reference), "f1": _f1(pred, ref),
            "rouge_l": _rouge_l(pred, ref), "bleu": _bleu(pred, ref)}


# ---------------------------------------------------------------------------
# 引用与拒答
# ---------------------------------------------------------------------------

CITE_MARK = CITATION_MARK  # 回答里的引用标号 [n]（与检索问答链同一个写法）


def cited_sources(answer: RagAnswer) -> list[Source]:
    """回答正文里用 [n] 真正标出的资料；没有标号的回答一条也不算（第 6 章）。"""
    marks = {int(n) for n in CITE_MARK.findall(answer.answer)}
    return [s for s in answer.sources if s.n in marks]


def _cited_chunk(answer: RagAnswer, src: Source) -> Document | Source:
    """找回引用 [n] 对应的整块：Source 只带前 120 字的摘录，整块在 answer.retrieved 里。"""
    for doc, _ in answer.retrieved:
        if (doc.metadata.get("source") == src.source and doc.metadata.get("page") == src.page
                and doc.page_content.strip().startswith(src.snippet)):
            return doc
    return src


def citation_scores(answer: RagAnswer, gold: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """引用准确率（引用中命中任一金标准的比例，无引用记 0）与引用召回率（被引到的金标准占比）（第 6 章）。"""
    if not gold:
        raise ValueError("不可回答的问题没有金标准，不计算引用指标")
    cited = cited_sources(answer)
    if not cited:
        return {"citation_accuracy": 0.0, "citation_recall": 0.0, "cited": 0.0}
    chunks = [_cited_chunk(answer, s) for s in cited]  # gold 带 quote 时要核对被引那一块的全文
    good = sum(is_hit(c, gold) for c in chunks)
    covered = sum(any(matches(c, g) for c in chunks) for g in gold)
    return {"citation_accuracy": good / len(cited), "citation_recall": covered / len(gold), "cited": 1.0}


def refusal_metrics(refused: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """拒答：准确率（该拒则拒、该答则答），以及把"拒答"当作正类的精确率与召回率（第 6 章）。"""
    if len(refused) != len(answerable):
        raise ValueError("refused 与 answerable 的长度不同")
    pairs = list(zip(refused, answerable))
    tp = sum(r and not a for r, a in pairs)
    n_refused = sum(r for r, _ in pairs)
    n_unanswerable = sum(not a for _, a in pairs)
    return {
        "refusal_accuracy": sum(r == (not a) for r, a in pairs) / len(pairs) if pairs else None,
        "refusal_precision": tp / n_refused if n_refused else None,
        "refusal_recall": tp / n_unanswerable if n_unanswerable else None,
    }

