"""评估：评估集、检索指标、回答指标、评分量表、大模型裁判与对比实验（第 6 章）。"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, Field

from helpers.config import EVAL_DIR, PROJECT_ROOT
from helpers.knowledge.split import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from helpers.rag import DEFAULT_SCORE_THRESHOLD, RagAnswer, Source, is_offline

QA_FILE = EVAL_DIR / "qa.jsonl"
RESULTS_DIR = PROJECT_ROOT / "artifacts" / "eval"
QUESTION_TYPES = ("lookup", "paraphrase", "multi", "unanswerable")

# ---------------------------------------------------------------------------
# 评估集
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QAItem:
    """评估集的一条：问题、金标准出处、参考答案与题型（第 6 章）。"""

    id: str
    question: str
    gold: tuple[Mapping[str, Any], ...]
    answer: str
    type: str

    @property
    def answerable(self) -> bool:
        """金标准非空即可回答；空列表表示知识库里没有答案（第 6 章）。"""
        return bool(self.gold)


def _check_gold(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not entry:
        raise ValueError(f"{where}：gold 的每一项都应是非空对象，如 {{\"source\": \"rag.md\"}}")
    if not isinstance(entry.get("source"), str) or not entry["source"]:
        raise ValueError(f"{where}：gold 的每一项都要有字符串字段 source（文档相对路径）")
    if "page" in entry and (isinstance(entry["page"], bool) or not isinstance(entry["page"], int)
                            or entry["page"] < 0):
        raise ValueError(f"{where}：gold 的 page 应是从 0 开始的整数页码，现为 {entry['page']!r}")
    return dict(entry)


def parse_qa_line(line: str, where: str = "第 1 行") -> QAItem:
    """解析并校验评估集的一行；出错时用中文说明是哪一行、哪里不对（第 6 章）。"""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}不是合法的 JSON（第 {err.colno} 列：{err.msg}）") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}应是一个 JSON 对象")
    for name in ("id", "question", "answer", "type"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise ValueError(f"{where}缺少字段 {name}（非空字符串）")
    if not isinstance(raw.get("gold"), list):
        raise ValueError(f"{where}缺少字段 gold（出处列表；不可回答的问题写 []）")
    if raw["type"] not in QUESTION_TYPES:
        raise ValueError(f"{where}的 type={raw['type']!r} 不在 {'、'.join(QUESTION_TYPES)} 之中")
    gold = tuple(_check_gold(g, where) for g in raw["gold"])
    if (raw["type"] == "unanswerable") != (not gold):
        raise ValueError(f"{where}：type 为 unanswerable 当且仅当 gold 为空列表")
    return QAItem(raw["id"], raw["question"], gold, raw["answer"], raw["type"])


def load_qa(path: Path | str = QA_FILE) -> list[QAItem]:
    """读取 JSON Lines 评估集并逐行校验（空行跳过，id 不得重复）（第 6 章）。"""
    path = Path(path)
    items: list[QAItem] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = parse_qa_line(line, f"{path.name} 第 {n} 行")
        if item.id in seen:
            raise ValueError(f"{path.name} 第 {n} 行：id {item.id!r} 与前面的重复")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ValueError(f"{path.name} 是空的：每行写一条 {{\"id\", \"question\", \"gold\", \"answer\", \"type\"}}")
    return items


def qa_fingerprint(items: Sequence[QAItem]) -> str:
    """评估集内容的短哈希：不同班级、不同提供方的结果只在同一评估集上比较（第 6 章）。"""
    blob = json.dumps([asdict(i) for i in items], ensure_ascii=False, sort_keys=True, default=dict)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------
# 检索指标
# ---------------------------------------------------------------------------


def metadata_of(item: Document | Source | Mapping[str, Any]) -> Mapping[str, Any]:
    """取出检索结果的元数据（Document、回答里的 Source 或普通字典都行）（第 6 章）。"""
    if isinstance(item, Document):
        return item.metadata
    if isinstance(item, Source):
        return {"source": item.source, "page": item.page}
    return item


def matches(meta: Mapping[str, Any], gold: Mapping[str, Any]) -> bool:
    """元数据包含金标准条目的每个键和值即为命中；页码按整数比较（第 6 章）。"""
    for key, want in gold.items():
        if key not in meta or meta[key] is None:
            return False
        if key == "page":
            try:
                if int(meta[key]) != int(want):
                    return False
            except (TypeError, ValueError):
                return False
        elif meta[key] != want:
            return False
    return True


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
        meta = metadata_of(item)
        new = next((j for j, g in enumerate(gold) if j not in found and matches(meta, g)), None)
        if new is not None:
            found.add(new)
        out.append(new)
    return out


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
    import jieba

    jieba.setLogLevel(logging.WARNING)  # 不打印"Building prefix dict…"
    text = unicodedata.normalize("NFKC", text).lower()
    return tuple(t for t in jieba.lcut(text) if not _is_punct_or_space(t))


def tokenize(text: str) -> list[str]:
    """用 jieba 分词（先全角转半角、英文小写），去掉标点与空白（第 6 章）。"""
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
    return _f1(tokenize(prediction), tokenize(reference))


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
    return _rouge_l(tokenize(prediction), tokenize(reference))


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
    return _bleu(tokenize(prediction), tokenize(reference), max_n, epsilon)


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
    pred, ref = tokenize(prediction), tokenize(reference)  # 只分一次词
    return {"em": exact_match(prediction, reference), "f1": _f1(pred, ref),
            "rouge_l": _rouge_l(pred, ref), "bleu": _bleu(pred, ref)}


# ---------------------------------------------------------------------------
# 引用与拒答
# ---------------------------------------------------------------------------

_CITE_MARK = re.compile(r"\[(\d+)\]")


def cited_sources(answer: RagAnswer) -> list[Source]:
    """回答正文里用 [n] 真正标出的资料；没有标号的回答一条也不算（第 6 章）。"""
    marks = {int(n) for n in _CITE_MARK.findall(answer.answer)}
    return [s for s in answer.sources if s.n in marks]


def citation_scores(answer: RagAnswer, gold: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """引用准确率（引用中命中任一金标准的比例，无引用记 0）与引用召回率（被引到的金标准占比）（第 6 章）。"""
    if not gold:
        raise ValueError("不可回答的问题没有金标准，不计算引用指标")
    cited = cited_sources(answer)
    if not cited:
        return {"citation_accuracy": 0.0, "citation_recall": 0.0, "cited": 0.0}
    good = sum(any(matches(metadata_of(s), g) for g in gold) for s in cited)
    covered = sum(any(matches(metadata_of(s), g) for s in cited) for g in gold)
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


# ---------------------------------------------------------------------------
# 人工评分量表
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricDimension:
    """评分量表的一个维度：名称、评价环节、关注的问题、分值范围与打分说明（第 6 章）。"""

    key: str
    name: str
    stage: str
    question: str
    low: float
    high: float
    guide: str
    binary: bool = False


RUBRIC: tuple[RubricDimension, ...] = (
    RubricDimension("knowledge", "知识查找正确性", "检索", "检索到的片段里有没有回答所需的知识",
                    0, 1, "只取 0 或 1：片段包含答案所需知识记 1，否则 0", binary=True),
    RubricDimension("consistency", "回答一致性", "生成", "回答是否紧扣问题，有没有跑题、答非所问",
                    0, 1, "完全切题记 1，部分切题按切题内容占比给分，完全跑题记 0"),
    RubricDimension("faithfulness", "回答幻觉比例", "生成", "回答里有多少内容能在检索片段中找到依据",
                    0, 1, "把回答拆成独立陈述，得分 = 有依据的陈述数 ÷ 陈述总数（越高越好，全部有据记 1）"),
    RubricDimension("correctness", "回答正确性", "生成", "回答的事实与结论是否正确、完整",
                    0, 1, "完全正确且完整记 1，核心正确但有错漏酌情扣分，错误记 0"),
    RubricDimension("logic", "逻辑性", "生成", "回答条理是否清晰、前后是否自洽",
                    0, 1, "逻辑严密记 1，有跳跃或自相矛盾酌情扣分"),
    RubricDimension("fluency", "通顺性", "生成", "语句是否通顺，有无语病、重复或格式混乱",
                    0, 1, "表达流畅记 1，每处明显语病或重复扣 0.2"),
    RubricDimension("intelligence", "智能性", "生成", "回答像不像有经验的人给出的，能否给出有用的补充",
                    0, 1, "令人满意、有恰当补充记 1，机械照搬原文酌情扣分"),
)
RUBRIC_BY_NAME = {d.name: d for d in RUBRIC}


def rubric_table():
    """把评分量表排成表格（pandas.DataFrame）（第 6 章）。"""
    import pandas as pd

    return pd.DataFrame(
        [{"维度": d.name, "环节": d.stage, "关注的问题": d.question,
          "分值": "0 或 1" if d.binary else f"{d.low:g}～{d.high:g}", "打分说明": d.guide} for d in RUBRIC]
    )


def check_scores(scores: Mapping[str, float | None], where: str = "") -> dict[str, float | None]:
    """校验一组人工分数：维度名须在量表中、分值在范围内（二值维度只能 0 或 1）（第 6 章）。"""
    out: dict[str, float | None] = {}
    for name, value in scores.items():
        dim = RUBRIC_BY_NAME.get(name)
        if dim is None:
            raise ValueError(f"{where}未知的评分维度 {name!r}：可选 {'、'.join(RUBRIC_BY_NAME)}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[name] = None
            continue
        if not dim.low <= float(value) <= dim.high or (dim.binary and float(value) not in (0.0, 1.0)):
            allowed = "0 或 1" if dim.binary else f"{dim.low:g}～{dim.high:g}"
            raise ValueError(f"{where}{name} 的分数 {value!r} 超出范围：应为 {allowed}")
        out[name] = float(value)
    return out


def score_table(scores: Mapping[str, Mapping[str, float | None]]):
    """把"样例 → {维度: 分数}"的人工评分排成表格，并追加各维度的平均分一行（第 6 章）。"""
    import pandas as pd

    rows = {sid: check_scores(s, f"样例 {sid}：") for sid, s in scores.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[d.name for d in RUBRIC])
    table = table.dropna(axis=1, how="all")
    table["总分"] = table.sum(axis=1, min_count=1)
    table.loc["平均"] = table.mean(numeric_only=True)
    return table.round(3)


# ---------------------------------------------------------------------------
# 大模型裁判
# ---------------------------------------------------------------------------


class JudgeScores(BaseModel):
    """裁判模型必须返回的结构：七个维度的分数（0～1）与一句理由（第 6 章）。"""

    knowledge: float = Field(ge=0, le=1, description="知识查找正确性：参考资料里是否有回答所需的知识，0 或 1")
    consistency: float = Field(ge=0, le=1, description="回答一致性：回答是否紧扣问题")
    faithfulness: float = Field(ge=0, le=1, description="回答幻觉比例：有资料依据的陈述所占比例")
    correctness: float = Field(ge=0, le=1, description="回答正确性：对照参考答案是否正确、完整")
    logic: float = Field(ge=0, le=1, description="逻辑性：条理是否清晰、前后自洽")
    fluency: float = Field(ge=0, le=1, description="通顺性：语句是否通顺")
    intelligence: float = Field(ge=0, le=1, description="智能性：是否像有经验的人给出的回答")
    reason: str = Field(description="一两句话说明打分理由")


@dataclass
class JudgeResult:
    """一次评判：各维度分数（无法评估的为 None）、裁判是谁、说明（第 6 章）。"""

    scores: dict[str, float | None]
    judge: str
    note: str = ""
    reason: str = ""


JUDGE_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system",
         "你是一名严格的评审员，按下面的量表给知识库助手的回答打分，每项 0 到 1 分：\n{rubric}\n"
         "先在心里逐条核对回答中的陈述是否有参考资料支持，再打分；简洁准确优于冗长。\n"
         "只输出一个 JSON 对象，字段为 {fields}，其中 reason 是一两句中文理由。"),
        ("user", "【问题】{question}\n【参考资料】\n{context}\n【参考答案】{reference}\n【回答】{answer}"),
    ]
)


def judge_messages(question: str, answer: str, context: str, reference: str = ""):
    """拼出发给裁判模型的消息（量表逐条写进系统提示）（第 6 章）。"""
    rubric = "\n".join(f"- {d.key}（{d.name}）：{d.question}；{d.guide}" for d in RUBRIC)
    fields = "、".join([d.key for d in RUBRIC] + ["reason"])
    return JUDGE_PROMPT.format_messages(rubric=rubric, fields=fields, question=question,
                                        context=context or "（无）", reference=reference or "（无）",
                                        answer=answer)


def heuristic_judge(question: str, answer: str, context: str, reference: str = "", *,
                    hit: float | None = None, refused: bool | None = None,
                    answerable: bool = True) -> JudgeResult:
    """离线时的替代品：用上面的字面指标估几个维度，并明说它不是裁判（第 6 章）。"""
    pred, ctx = tokenize(_CITE_MARK.sub(" ", answer)), set(tokenize(context))
    if not answerable:
        correctness = float(bool(refused))
    elif refused:
        correctness = 0.0
    else:
        correctness = token_f1(answer, reference) if reference else None
    scores: dict[str, float | None] = {d.name: None for d in RUBRIC}
    scores.update({
        "知识查找正确性": hit,
        "回答幻觉比例": (sum(t in ctx for t in pred) / len(pred)) if pred and not refused else None,
        "回答正确性": correctness,
    })
    note = ("离线启发式，不是真正的裁判：知识查找正确性取检索命中，回答幻觉比例取回答词出现在资料中的比例，"
            "回答正确性取对参考答案的词级 F1；回答一致性、逻辑性、通顺性、智能性无法用字面指标估计，留空")
    return JudgeResult(scores, "offline-heuristic", note)


def judge_answer(question: str, answer: str, context: str, reference: str = "", *,
                 llm: BaseChatModel | None = None, retries: int = 1, **heuristic: Any) -> JudgeResult:
    """大模型裁判：要求 JSON、用 Pydantic 校验、不合格时带着错误重试；离线模型改用启发式并明说（第 6 章）。"""
    from helpers.llm import get_chat_model

    llm = llm or get_chat_model()
    if is_offline(llm):
        return heuristic_judge(question, answer, context, reference, **heuristic)
    parser = PydanticOutputParser(pydantic_object=JudgeScores)
    messages = list(judge_messages(question, answer, context, reference))
    error = ""
    for _ in range(retries + 1):
        reply = llm.invoke(messages)
        try:
            parsed = parser.invoke(reply)
        except Exception as err:  # noqa: BLE001  JSON 不合法或字段不合格都重试
            error = str(err).splitlines()[0]
            messages += [AIMessage(str(reply.content)),
                         HumanMessage(f"上面的输出不合格（{error}）。请只输出符合要求的 JSON 对象。")]
            continue
        scores = {d.name: getattr(parsed, d.key) for d in RUBRIC}
        name = (getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__)
        return JudgeResult(scores, str(name), "大模型裁判：分数由模型给出，建议先用少量人工评分校准", parsed.reason)
    raise ValueError(f"裁判模型连续 {retries + 1} 次没有给出合格的 JSON（{error}）：换一个更强的模型，或检查提示")


# ---------------------------------------------------------------------------
# 查询改写
# ---------------------------------------------------------------------------

REWRITE_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system",
         "把用户的问题改写成适合在课程知识库里检索的查询：补全省略的主语，把口语换成术语，"
         "保留数字、型号和专有名词。只输出改写后的查询。"),
        ("user", "{question}"),
    ]
)
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
# 对比实验
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
        from helpers.knowledge import make_splitter
        from helpers.prompts import get_prompt

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
            out.append(d.metadata.get("source", "?") + (f" 第 {int(page) + 1} 页" if page is not None else ""))
        return out


FAILURE_KINDS = ("检索未命中", "过度拒答", "该拒未拒", "回答偏离参考")


def classify_failure(result: QuestionResult, f1_floor: float = 0.1) -> str | None:
    """粗分坏例：先看检索有没有找到，再看生成环节；不算坏例返回 None（第 6 章）。"""
    answer = result.answer
    if not result.gold:
        return "该拒未拒" if answer is not None and not answer.refused else None
    if result.scores.get("hit") == 0:
        return "检索未命中"
    if answer is None:
        return None
    if answer.refused:
        return "过度拒答"
    if (result.scores.get("f1") or 0.0) < f1_floor:
        return "回答偏离参考"
    return None


class _QueryRecorder:
    """包住检索器：需要时先改写查询，记下这次检索返回的全部片段；同一索引上的相同检索只做一次。"""

    def __init__(self, retriever: Any, rewrite: Any, cache: dict[str, list[Document]]) -> None:
        self.retriever, self.rewrite, self.cache = retriever, rewrite, cache
        self.last: list[Document] = []
        self.last_query = ""

    def invoke(self, input: str, config: Any = None, **kwargs: Any) -> list[Document]:
        self.last_query = self.rewrite(input) if self.rewrite else input
        if self.last_query not in self.cache:
            self.cache[self.last_query] = list(self.retriever.invoke(self.last_query, config, **kwargs))
        self.last = list(self.cache[self.last_query])
        return self.last


def distinct_sources(docs: Sequence[Document]) -> int:
    """前 k 个片段来自几个不同的出处（PDF 按页算）：看 MMR 是否带来多样性（第 6 章）。"""
    return len({(d.metadata.get("source"), d.metadata.get("page")) for d in docs})


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


class ExperimentRunner:
    """在评估集上端到端跑实验：每种切分一个独立的 Chroma 集合，入库按 (块大小, 重叠) 缓存（第 6 章）。"""

    def __init__(self, qa: Sequence[QAItem] | None = None, *, corpus: Path | str | None = None,
                 llm: BaseChatModel | None = None, embeddings: Any = None, client: Any = None) -> None:
        from helpers.config import KNOWLEDGE_DIR
        from helpers.knowledge import load_directory
        from helpers.llm import get_chat_model, get_embeddings

        self.qa = list(qa) if qa is not None else load_qa()
        self.corpus = Path(corpus) if corpus is not None else KNOWLEDGE_DIR
        if llm is None:
            from langchain_core.caches import InMemoryCache

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
        self._kbs: dict[str, Any] = {}
        self._chunks: dict[str, list[Document]] = {}
        self._retrieved: dict[tuple[Any, ...], dict[str, list[Document]]] = {}
        self._details: dict[tuple[ExperimentConfig, bool], list[QuestionResult]] = {}
        self._rows: dict[tuple[ExperimentConfig, bool], dict[str, Any]] = {}
        self._rewrites: dict[str, str] = {}

    # ---------- 索引 ----------
    def index_key(self, config: ExperimentConfig) -> str:
        """决定索引内容的那部分配置（块大小、重叠、语料指纹）的哈希（第 6 章）。"""
        blob = json.dumps([config.chunk_size, config.chunk_overlap, self.corpus_digest])
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    def collection_name(self, config: ExperimentConfig) -> str:
        """配置对应的集合名：切分或嵌入不同的配置绝不共用一个集合（第 6 章）。"""
        from helpers.knowledge import collection_name_for

        return collection_name_for(f"eval-{self.index_key(config)}", self.embeddings,
                                   config.chunk_size, config.chunk_overlap)

    def knowledge_base(self, config: ExperimentConfig):
        """取出配置的知识库：同一 (块大小, 重叠) 只切分、嵌入、入库一次，之后只读（第 6 章）。"""
        from helpers.knowledge import KnowledgeBase, chunk_ids, split_documents

        key = self.index_key(config)
        if key in self._kbs:
            return self._kbs[key]
        name = self.collection_name(config)
        if name in {c.name for c in self.client.list_collections()}:
            self.client.delete_collection(name)  # 上次运行留下的同名集合：删掉重建，保证干净
        kb = KnowledgeBase(f"eval-{key}", embeddings=self.embeddings, chunk_size=config.chunk_size,
                           chunk_overlap=config.chunk_overlap, client=self.client)
        chunks = split_documents(self.docs, config.chunk_size, config.chunk_overlap)
        ids = chunk_ids(chunks)
        vectors = self.embeddings.embed_documents([c.page_content for c in chunks])
        # HNSW 是近似检索：候选列表（ef_search）不小于块数时结果与精确检索一致，
        # 配置之间的差异才只来自配置本身（块数超过知识库默认的 1000 时才需要调大）
        kb.collection.modify(configuration={"hnsw": {"ef_search": max(1000, len(ids))}})
        for start in range(0, len(ids), 5000):
            sl = slice(start, start + 5000)
            kb.collection.add(ids=ids[sl], embeddings=vectors[sl],
                              documents=[c.page_content for c in chunks[sl]],
                              metadatas=[c.metadata for c in chunks[sl]])
        self._kbs[key], self._chunks[key] = kb, chunks
        return kb

    def _rewrite(self, question: str) -> str:
        if question not in self._rewrites:
            self._rewrites[question] = rewrite_query(question, self.llm)
        return self._rewrites[question]

    # ---------- 运行 ----------
    def details(self, config: ExperimentConfig, answers: bool = True) -> list[QuestionResult]:
        """逐题运行并打分；结果按配置缓存，同一配置不会重跑（第 6 章）。"""
        from helpers.rag import RagChain

        if (config, answers) in self._details:
            return self._details[(config, answers)]
        if not answers and (config, True) in self._details:
            return self._details[(config, True)]
        kb = self.knowledge_base(config)
        cache = self._retrieved.setdefault((self.index_key(config), config.kind, config.k, config.rewrite), {})
        recorder = _QueryRecorder(kb.as_retriever(config.kind, k=config.k),
                                  self._rewrite if config.rewrite else None, cache)
        chain = (RagChain(recorder, self.llm, prompt=config.prompt, embeddings=self.embeddings,
                          score_threshold=config.score_threshold) if answers else None)
        out = []
        for item in self.qa:
            ans = chain.invoke(item.question) if chain else None
            if chain is None:
                recorder.invoke(item.question)
            res = QuestionResult(item.id, item.type, item.question, recorder.last_query, item.gold,
                                 recorder.last, item.answer, ans)
            if item.answerable:
                res.scores.update({
                    "hit": hit_at_k(res.retrieved, item.gold, config.k),
                    "recall": recall_at_k(res.retrieved, item.gold, config.k),
                    "ndcg": ndcg_at_k(res.retrieved, item.gold, config.k),
                    "rr": reciprocal_rank(res.retrieved, item.gold, config.k),
                })
            res.scores["distinct_sources"] = float(distinct_sources(res.retrieved))
            if ans is not None:
                res.scores["refused"] = float(ans.refused)
                if item.answerable:
                    res.scores.update(answer_metrics(ans.answer, item.answer))
                    if not ans.refused:
                        res.scores.update(citation_scores(ans, item.gold))
            out.append(res)
        self._details[(config, answers)] = out
        return out

    def run(self, config: ExperimentConfig, answers: bool = True) -> dict[str, Any]:
        """跑一个配置，返回一行指标（配置、提供方、模型、评估集指纹与各项平均分）（第 6 章）。"""
        from helpers.knowledge import embedding_id

        key = (config, answers)
        if key in self._rows:
            return self._rows[key]
        results = self.details(config, answers)
        answerable = [r for r in results if r.gold]
        row: dict[str, Any] = {
            **asdict(config), "kind": config.kind, "config_id": config.key(),
            "provider": (getattr(self.llm, "metadata", None) or {}).get("provider", "?") if answers else "",
            "model": str(getattr(self.llm, "model_name", "") or "") if answers else "",
            "embedding": embedding_id(self.embeddings), "qa": qa_fingerprint(self.qa),
            "questions": len(results), "answerable": len(answerable),
            "chunks": len(self._chunks[self.index_key(config)]),
            "collection": self.collection_name(config),
        }
        for name, col in (("hit", "hit@k"), ("recall", "recall@k"), ("ndcg", "ndcg@k"), ("rr", "mrr@k")):
            row[col] = _mean(r.scores.get(name) for r in answerable)
        row["distinct_sources"] = _mean(r.scores["distinct_sources"] for r in results)
        if answers:
            for name in ("em", "f1", "rouge_l", "bleu"):
                row[name] = _mean(r.scores.get(name) for r in answerable)
            answered = [r for r in answerable if not r.answer.refused]
            for name in ("citation_accuracy", "citation_recall"):
                row[name] = _mean(r.scores.get(name) for r in answered)
            row["citation_rate"] = _mean(r.scores.get("cited") for r in answered)
            row.update(refusal_metrics([r.answer.refused for r in results], [bool(r.gold) for r in results]))
        self._rows[key] = row
        return row

    def run_many(self, configs: Iterable[ExperimentConfig], answers: bool = True):
        """依次跑多个配置，返回一张表（pandas.DataFrame，一行一个配置）（第 6 章）。"""
        import pandas as pd

        return pd.DataFrame([self.run(c, answers) for c in configs])


def _ephemeral_client():
    """进程内的 Chroma（不落盘）；集合名带配置哈希，不同配置互不干扰。"""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))


def run_experiment(config: ExperimentConfig, qa: Sequence[QAItem] | None = None, *,
                   answers: bool = True, **runner_options: Any) -> dict[str, Any]:
    """端到端跑一个配置并返回一行指标（一次性用法；多个配置请复用 ExperimentRunner）（第 6 章）。"""
    return ExperimentRunner(qa, **runner_options).run(config, answers)


def save_results(rows: Any, path: Path | str) -> tuple[Path, Path]:
    """把结果表同时写成 CSV（UTF-8 带 BOM，Excel 可直接打开）与 JSON，返回两个路径（第 6 章）。"""
    import pandas as pd

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
    import pandas as pd

    tables = []
    for p in map(Path, paths):
        if p.suffix == ".json":
            tables.append(pd.DataFrame(json.loads(p.read_text(encoding="utf-8"))["results"]))
        else:
            tables.append(pd.read_csv(p, encoding="utf-8-sig"))
    if not tables:
        raise ValueError("没有给出结果文件：例如 load_results(RESULTS_DIR / 'offline.csv')")
    return pd.concat(tables, ignore_index=True)
