"""人工评分量表与大模型裁判：七个维度、分数校验与汇总、要求 JSON 的裁判与离线启发式（第 6 章）。"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import PydanticOutputParser
from pydantic import BaseModel, Field

from helpers.evaluation.metrics import CITE_MARK, answer_tokens, token_f1
from helpers.llm import get_chat_model
from helpers.prompts import JUDGE_PROMPT
from helpers.rag import is_offline

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


def _allowed(dim: RubricDimension) -> str:
    return "0 或 1" if dim.binary else f"{dim.low:g}～{dim.high:g}"


def rubric_table():
    """把评分量表排成表格（pandas.DataFrame）（第 6 章）。"""
    import pandas as pd  # 只在出表时才用：导入 pandas 约 0.4 s，命令行基准用不到

    return pd.DataFrame(
        [{"维度": d.name, "环节": d.stage, "关注的问题": d.question, "分值": _allowed(d), "打分说明": d.guide}
         for d in RUBRIC]
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
            raise ValueError(f"{where}{name} 的分数 {value!r} 超出范围：应为 {_allowed(dim)}")
        out[name] = float(value)
    return out


def score_table(scores: Mapping[str, Mapping[str, float | None]]):
    """把"样例 → {维度: 分数}"的人工评分排成表格，并追加各维度的平均分一行（第 6 章）。"""
    import pandas as pd  # 同 rubric_table：只在出表时导入

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


def judge_messages(question: str, answer: str, context: str, reference: str = "") -> list[BaseMessage]:
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
    pred, ctx = answer_tokens(CITE_MARK.sub(" ", answer)), set(answer_tokens(context))
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
