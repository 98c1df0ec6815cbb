"""评估指标：金标准命中判定、检索指标、中文回答指标（EM/F1/ROUGE-L/BLEU）、引用与拒答（第 6 章）。"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import cn2an
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


def facts_in_context(retrieved: Sequence[Any], facts: Sequence[str], k: int | None = None) -> float:
    """参考事实在上下文中的比例：前 k 块里，有多少条参考事实（答案所在的原文片段）被某一块逐字包含（第 6 章）。"""
    # 与 RAGAS 的 context recall 同一个问题（"回答需要的事实找回来了没有"），这里用逐字包含判断，不请模型
    if not facts:
        raise ValueError("这道题没有参考事实：在评估集里给它写 facts（或带 quote 的 gold）")
    texts = [_text_of(d) for d in list(retrieved)[:k]]
    if any(t is None for t in texts):
        raise ValueError("核对参考事实要看正文：请传入检索到的块（Document），而不只是它的元数据")
    chunks = [_squash_spaces(t) for t in texts]
    return sum(any(_squash_spaces(f) in c for c in chunks) for f in facts) / len(facts)


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


# 中文数字 → 阿拉伯数字："四十二万"与"42 万"都写成 420000，"百分之五十八"写成 58%，"一点五"写成 1.5。
# 只改"一看就是数"的写法，"一般、统一、一致、十分、万一、一些、唯一、三思、进一步"不动：
# - 两个字以上、带十百千万亿或"点"的串（四十二万、一百二十、两千、一点五）；
# - 四个字的年份（二〇二三、一九九八）；
# - 单个数字只在"第"之后（第一 → 第1，两边一样改）或量词之前（三个、两次、十分钟）才改，
#   但单独的"一"不改（一个、一种、一次多是冠词用法，改了只会多出一堆"1""个"去凑重合）；
# - 百分之 N → N%，M 分之 N → N/M；阿拉伯数字后的万、亿乘出来（42 万 → 420000）。
# cn2an 负责把一串中文数字换成数值；"哪些串该换"由下面几条正则决定（cn2an.transform 会把"一般"改成"1般"）
_CN_DIGITS = "零〇一二两三四五六七八九"
_CN_NUMERAL = _CN_DIGITS + "十百千万亿"
_MEASURE = re.compile(r"个|次|倍|种|条|步|层|类|项|名|位|篇|章|节|页|轮|组|份|台|张|句|段|维|元|岁|年|月|日|天|周"
                      r"|小时|分钟|秒|毫秒|微秒")
_CN_RUN = re.compile(rf"(?<![{_CN_NUMERAL}点进])(第?)([{_CN_DIGITS}十][{_CN_NUMERAL}]*(?:点[{_CN_DIGITS}]+)?)")
_PERCENT = re.compile(rf"百分之([{_CN_NUMERAL}]+(?:点[{_CN_DIGITS}]+)?|\d+(?:\.\d+)?)")
_FRACTION = re.compile(rf"([{_CN_DIGITS}十][{_CN_NUMERAL}]*)分之([{_CN_DIGITS}十][{_CN_NUMERAL}点]*)")
_ARABIC_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*([万亿]+)")
_THOUSANDS = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?!\d|,\d)", re.ASCII)
_UNIT_VALUE = {"万": 10**4, "亿": 10**8}


def _plain(value: Decimal | float | int) -> str:
    """数值写成最短的阿拉伯数字：420000、1.5（不用科学计数法）。"""
    return format(Decimal(str(value)).normalize(), "f")


@lru_cache(maxsize=4096)
def _cn_value(run: str) -> str | None:
    """一串中文数字的阿拉伯写法；不成数（三四十、一五一十）返回 None。"""
    try:
        return _plain(cn2an.cn2an(run, "normal"))
    except ValueError:
        return None


def _is_number(prefix: str, run: str, after: str) -> bool:
    if len(run) >= 2 and any(c in run for c in "十百千万亿点"):
        return True
    if len(run) == 4 and "两" not in run:  # 年份：二〇二三
        return True
    if len(run) != 1:
        return False
    return prefix == "第" or (run != "一" and _MEASURE.match(after) is not None)  # "一个、一种"是冠词用法，不改


def _replace_run(m: re.Match[str]) -> str:
    prefix, run = m.group(1), m.group(2)
    value = _cn_value(run) if _is_number(prefix, run, m.string[m.end():m.end() + 2]) else None
    return m.group(0) if value is None else prefix + value


def _replace_percent(m: re.Match[str]) -> str:
    value = m.group(1) if m.group(1)[0].isdigit() else _cn_value(m.group(1))
    return m.group(0) if value is None else value + "%"


def _replace_fraction(m: re.Match[str]) -> str:
    den, num = _cn_value(m.group(1)), _cn_value(m.group(2))
    return m.group(0) if den is None or num is None else f"{num}/{den}"


def _replace_arabic_unit(m: re.Match[str]) -> str:
    value = Decimal(m.group(1))
    for unit in m.group(2):
        value *= _UNIT_VALUE[unit]
    return _plain(value)


def normalize_numerals(text: str) -> str:
    """把回答里的中文数字改写成阿拉伯数字（四十二万 → 420000、百分之五十八 → 58%），普通词不动（第 6 章）。"""
    text = _PERCENT.sub(_replace_percent, text)
    text = _FRACTION.sub(_replace_fraction, text)
    text = _CN_RUN.sub(_replace_run, text)
    return _ARABIC_UNIT.sub(_replace_arabic_unit, text)


def _canonical(text: str) -> str:
    """打分前的统一写法：全角转半角、英文小写、中文数字改成阿拉伯数字（两边同样处理）。"""
    # 千分位 1,000 → 1000：只认英文逗号，且在全角转半角之前（"v2，384"里的中文逗号是断句）
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text or "")
    return normalize_numerals(unicodedata.normalize("NFKC", text).lower())


def normalize_answer(text: str) -> str:
    """规范化：全角转半角、英文小写、中文数字改阿拉伯数字、去掉标点与空白（精确匹配用）（第 6 章）。"""
    return "".join(c for c in _canonical(text) if not _is_punct_or_space(c))


@lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t for t in jieba.lcut(_canonical(text)) if not _is_punct_or_space(t))


def answer_tokens(text: str) -> list[str]:
    """用 jieba 分词（先全角转半角、英文小写、中文数字改阿拉伯数字），去掉标点与空白（第 6 章）。"""
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

