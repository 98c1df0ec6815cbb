"""人工评分量表与大模型裁判：七个维度的锚定档位、分数校验与汇总、先分析后打分的裁判、交换顺序的成对比较（第 6 章）。"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, Field, ValidationError

from helpers.config import Settings, load_settings
from helpers.evaluation.metrics import CITE_MARK, answer_tokens, token_f1
from helpers.llm import get_chat_model
from helpers.prompts import JUDGE_PROMPT, PAIRWISE_PROMPT
from helpers.rag import is_offline
from helpers.text import first_json_object

# ---------------------------------------------------------------------------
# 人工评分量表：每个维度的每一档都有一句具体的标准（锚点）
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricDimension:
    """评分量表的一个维度：名称、评价环节、关注的问题、分值范围、打分说明与各档的锚点（第 6 章）。"""

    key: str
    name: str
    stage: str
    question: str
    low: float
    high: float
    guide: str
    binary: bool = False
    anchors: tuple[tuple[float, str], ...] = ()  # (分数, 这一档的具体标准)，从高到低

    @property
    def levels(self) -> tuple[float, ...]:
        """裁判允许给的分数（锚点的分值，从低到高）（第 6 章）。"""
        return tuple(sorted(v for v, _ in self.anchors)) or ((self.low, self.high) if self.binary else ())


RUBRIC: tuple[RubricDimension, ...] = (
    RubricDimension("knowledge", "知识查找正确性", "检索", "检索到的片段里有没有回答所需的知识",
                    0, 1, "只取 0 或 1：片段包含答案所需知识记 1，否则 0", binary=True, anchors=(
                        (1, "参考资料里有一句或几句话直接给出了回答所需的事实（能指出是哪一句）"),
                        (0, "参考资料里找不到回答所需的事实（所需的数字、名称或步骤不在其中）"))),
    RubricDimension("consistency", "回答一致性", "生成", "回答是否紧扣问题，有没有跑题、答非所问",
                    0, 1, "三档：全部切题 1，部分切题 0.5，答非所问 0", anchors=(
                        (1, "每一句都在回应所问的问题；问了几件事就答了几件事"),
                        (0.5, "回应了问题，但漏答了所问的一部分，或约一半内容与问题无关"),
                        (0, "没有回应所问的问题：答非所问、空白，或只复述问题"))),
    RubricDimension("faithfulness", "回答幻觉比例", "生成", "回答里有多少内容能在检索片段中找到依据",
                    0, 1, "三档（越高越好）：陈述全部有据 1，核心有据但夹带无据陈述 0.5，核心陈述无据 0", anchors=(
                        (1, "把回答拆成独立陈述后，每一条都能在参考资料中找到依据"),
                        (0.5, "回答问题的核心陈述有依据，但至少有一条其他陈述在资料中找不到依据"),
                        (0, "回答问题的核心陈述在资料中找不到依据，或与资料矛盾"))),
    RubricDimension("correctness", "回答正确性", "生成", "回答的事实与结论是否正确、完整",
                    0, 1, "三档：与参考答案一致且完整 1，核心对但有错漏 0.5，核心错误或该答未答 0", anchors=(
                        (1, "与参考答案的每个要点一致，数字、名称、条件都对；问题无法回答时明确拒答也记 1"),
                        (0.5, "核心结论正确，但漏掉参考答案的一个要点，或附带了一处错误的次要事实"),
                        (0, "核心结论错误或缺失（如数字不对、答成别的东西），或能回答却拒答"))),
    RubricDimension("logic", "逻辑性", "生成", "回答条理是否清晰、前后是否自洽",
                    0, 1, "三档：条理清楚且自洽 1，有跳跃 0.5，自相矛盾 0", anchors=(
                        (1, "先给结论再解释，各句前后一致，没有矛盾"),
                        (0.5, "结论可读，但顺序跳跃、缺少过渡，或有多余的重复推理"),
                        (0, "前后自相矛盾，或由前文推出相反的结论"))),
    RubricDimension("fluency", "通顺性", "生成", "语句是否通顺，有无语病、重复或格式混乱",
                    0, 1, "三档：无语病 1，一两处小问题 0.5，影响理解 0", anchors=(
                        (1, "没有语病、重复或格式错乱"),
                        (0.5, "有一两处语病、重复或残留标记，但不影响理解"),
                        (0, "语病、残句或整句重复多到影响理解"))),
    RubricDimension("intelligence", "智能性", "生成", "回答像不像有经验的人给出的，能否给出有用的补充",
                    0, 1, "三档：组织得当且有恰当补充 1，正确但机械照搬 0.5，空洞或误导 0", anchors=(
                        (1, "直接回答并给出恰当的补充（适用条件、注意事项或下一步），像有经验的人在答"),
                        (0.5, "回答正确，但机械照搬原文，没有组织或补充"),
                        (0, "空洞敷衍，或补充了误导性的内容"))),
)
RUBRIC_BY_NAME = {d.name: d for d in RUBRIC}
RUBRIC_BY_KEY = {d.key: d for d in RUBRIC}


def _num(value: float) -> str:
    return f"{float(value):g}"


def _allowed(dim: RubricDimension) -> str:
    return "0 或 1" if dim.binary else f"{dim.low:g}～{dim.high:g}"


def _levels_text(dim: RubricDimension) -> str:
    return "、".join(_num(v) for v in dim.levels)


def rubric_table():
    """把评分量表排成表格（pandas.DataFrame）：每个维度一行，档位与各档标准也在表里（第 6 章）。"""
    import pandas as pd  # 只在出表时才用：导入 pandas 约 0.4 s，命令行基准用不到

    return pd.DataFrame(
        [{"维度": d.name, "环节": d.stage, "关注的问题": d.question, "分值": _allowed(d),
          "档位": _levels_text(d), "打分说明": d.guide} for d in RUBRIC]
    )


def anchor_table():
    """每个维度每一档的具体标准（锚点），一档一行（pandas.DataFrame）（第 6 章）。"""
    import pandas as pd

    return pd.DataFrame([{"维度": d.name, "分数": float(v), "标准": text} for d in RUBRIC for v, text in d.anchors])


def nearest_level(name: str, value: float | None) -> float | None:
    """把一个 0～1 的分数归到该维度最近的档位（如人工的 0.7 → 0.5 还是 1）；同样近时取低档（第 6 章）。"""
    dim = RUBRIC_BY_NAME.get(name) or RUBRIC_BY_KEY.get(name)
    if dim is None:
        raise ValueError(f"未知的评分维度 {name!r}：可选 {'、'.join(RUBRIC_BY_NAME)}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(min(dim.levels, key=lambda level: (abs(level - float(value)), level)))


def check_scores(scores: Mapping[str, float | None], where: str = "", *,
                 anchored: bool = False) -> dict[str, float | None]:
    """校验一组人工分数：维度名须在量表中、分值在范围内；anchored=True 时只许取锚定的档位（第 6 章）。"""
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
        if anchored and float(value) not in dim.levels:
            raise ValueError(f"{where}{name} 的分数 {value!r} 不是锚定的档位：只能取 {_levels_text(dim)}"
                             f"（可用 nearest_level 归档）")
        out[name] = float(value)
    return out


def score_table(scores: Mapping[str, Mapping[str, float | None]], *, anchored: bool = False):
    """把"样例 → {维度: 分数}"的人工评分排成表格，并追加各维度的平均分一行（第 6 章）。"""
    import pandas as pd  # 同 rubric_table：只在出表时导入

    rows = {sid: check_scores(s, f"样例 {sid}：", anchored=anchored) for sid, s in scores.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[d.name for d in RUBRIC])
    table = table.dropna(axis=1, how="all")
    table["总分"] = table.sum(axis=1, min_count=1)
    table.loc["平均"] = table.mean(numeric_only=True)
    return table.round(3)


# ---------------------------------------------------------------------------
# 大模型裁判
# ---------------------------------------------------------------------------


def _score(key: str) -> Any:
    """量表里这个维度的档位 → Literal 类型：JSON Schema 里是 enum，Pydantic 校验时只认这几个值。"""
    return Literal[RUBRIC_BY_KEY[key].levels]  # type: ignore[valid-type]


def _field(key: str) -> Any:
    """字段说明取自量表；JSON Schema 里写明 type number，与 enum 一起告诉模型只能填这几个数。"""
    dim = RUBRIC_BY_KEY[key]
    return Field(description=f"{dim.name}：{dim.question}，只能取 {_levels_text(dim)}",
                 json_schema_extra={"type": "number"})


class JudgeScores(BaseModel):
    """裁判模型必须返回的结构：先是逐条核对的分析，再是七个维度的锚定档位分数（第 6 章）。"""

    analysis: str = Field(min_length=1, description="先写：把回答拆成陈述逐条核对资料与参考答案，再说各维度的档")
    knowledge: _score("knowledge") = _field("knowledge")
    consistency: _score("consistency") = _field("consistency")
    faithfulness: _score("faithfulness") = _field("faithfulness")
    correctness: _score("correctness") = _field("correctness")
    logic: _score("logic") = _field("logic")
    fluency: _score("fluency") = _field("fluency")
    intelligence: _score("intelligence") = _field("intelligence")


class PairwiseVerdict(BaseModel):
    """成对比较时裁判必须返回的结构：先写比较分析，再给胜者（第 6 章）。"""

    analysis: str = Field(min_length=1, description="先写：逐条比较两份回答的正确、有据、切题")
    winner: Literal["A", "B", "tie"] = Field(description="更好的一份：A、B，或一样好（一样差）时 tie")


@dataclass
class JudgeResult:
    """一次评判：各维度分数（无法评估的为 None）、裁判是谁、说明，以及裁判写下的分析（第 6 章）。"""

    scores: dict[str, float | None]
    judge: str
    note: str = ""
    reason: str = ""


@dataclass
class PairwiseResult:
    """一次成对比较：胜者（A、B 或 tie）、两种顺序的结论是否一致、两次的结论与理由、裁判是谁（第 6 章）。"""

    winner: str  # "A" / "B" / "tie"，A、B 指调用时的 answer_a、answer_b
    consistent: bool  # 两种顺序给出同一结论；False 表示结论随位置变化（位置偏差）
    first: str  # 原顺序（answer_a 放在前面）时的结论
    second: str  # 交换顺序（answer_b 放在前面）时的结论，已换回原来的 A、B
    reasons: tuple[str, str]  # 两次的分析
    judge: str
    note: str = ""


def get_judge_model(settings: Settings | None = None, **kwargs: Any) -> BaseChatModel:
    """裁判用的聊天模型：JUDGE_PROVIDER / JUDGE_MODEL 留空时与 LLM_PROVIDER / LLM_MODEL 相同（第 6 章）。"""
    settings = settings or load_settings()
    return get_chat_model(settings.judge_provider, settings.judge_model, settings=settings, **kwargs)


def _rubric_prompt() -> str:
    lines = []
    for d in RUBRIC:
        lines.append(f"- {d.key}（{d.name}）：{d.question}。只能取 {_levels_text(d)}：")
        lines += [f"  {_num(v)} = {text}" for v, text in d.anchors]
    return "\n".join(lines)


def judge_messages(question: str, answer: str, context: str, reference: str = "") -> list[BaseMessage]:
    """拼出发给裁判模型的消息：量表的每一档标准写进系统提示，要求先写 analysis 再打分（第 6 章）。"""
    keys = list(JudgeScores.model_fields)
    example = "{" + ", ".join(f'"{k}": ' + ('"……"' if k == "analysis" else "…") for k in keys) + "}"
    return JUDGE_PROMPT.format_messages(
        rubric=_rubric_prompt(), fields="、".join(keys), example=example, question=question,
        context=context or "（无）", reference=reference or "（无）", answer=answer)


def pairwise_messages(question: str, answer_a: str, answer_b: str, context: str, reference: str = "", *,
                      swap: bool = False) -> list[BaseMessage]:
    """拼出成对比较的消息；swap=True 时把 answer_b 放在"回答 A"的位置（第二次提问用）（第 6 章）。"""
    first, second = (answer_b, answer_a) if swap else (answer_a, answer_b)
    return PAIRWISE_PROMPT.format_messages(
        question=question, context=context or "（无）", reference=reference or "（无）",
        answer_a=first, answer_b=second)


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


def _judge_name(llm: BaseChatModel) -> str:
    return str(getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__)


def _same_vendor_note(llm: BaseChatModel) -> str:
    """裁判与课程回答用的是同一家时提醒一句（自我偏好）；看不出厂商（如测试里的假模型）时不说。"""
    vendor = (getattr(llm, "metadata", None) or {}).get("provider")
    if vendor and vendor == load_settings().llm_provider:
        return f"；裁判与回答问题的模型同为 {vendor}，可能偏爱自家的回答：可在 .env 设 JUDGE_PROVIDER 换一家"
    return ""


def _problems(err: ValidationError) -> str:
    """把 Pydantic 的校验错误写成给模型看的中文：哪个字段、应取什么、实际给了什么。"""
    out = []
    for e in err.errors()[:4]:
        field = str(e["loc"][0]) if e["loc"] else "（整体）"
        if e["type"] == "missing":
            out.append(f"缺少字段 {field}")
        elif field in RUBRIC_BY_KEY:
            out.append(f"{field} 只能取 {_levels_text(RUBRIC_BY_KEY[field])}，收到 {e.get('input')!r}")
        elif field == "winner":
            out.append(f"winner 只能是 \"A\"、\"B\" 或 \"tie\"，收到 {e.get('input')!r}")
        else:
            out.append(f"{field}：{e['msg']}")
    return "；".join(out)


Schema = TypeVar("Schema", bound=BaseModel)
def parse_verdict(text: str, schema: type[Schema]) -> Schema:
    """从裁判回复中取出 JSON 并校验：必须是对象、第一个字段是 analysis、各字段取值合格，否则报中文原因（第 6 章）。"""
    data = first_json_object(text)
    if not isinstance(data, dict):
        raise ValueError("回复里没有找到 JSON 对象")
    if next(iter(data), None) != "analysis":
        raise ValueError("analysis 必须是第一个字段：先写核对过程，再给分数")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ValueError(_problems(err)) from None


def _ask(llm: BaseChatModel, messages: list[BaseMessage], schema: type[Schema], retries: int) -> Schema:
    """发消息、校验回复；不合格时把原因告诉模型再问，最多 retries 次。"""
    messages, error = list(messages), ""
    for _ in range(retries + 1):
        reply = llm.invoke(messages)
        text = reply.text if isinstance(reply, AIMessage) else str(reply.content)
        try:
            return parse_verdict(text, schema)
        except ValueError as err:
            error = str(err)
            messages += [AIMessage(text), HumanMessage(f"上面的输出不合格（{error}）。请只输出符合要求的 JSON 对象，"
                                                       "第一个字段是 analysis。")]
    raise ValueError(f"裁判模型连续 {retries + 1} 次没有给出合格的 JSON（{error}）：换一个更强的模型，或检查提示")


def judge_answer(question: str, answer: str, context: str, reference: str = "", *,
                 llm: BaseChatModel | None = None, retries: int = 1, **heuristic: Any) -> JudgeResult:
    """大模型裁判：先分析后打分、只收锚定档位、不合格时带着错误重试；离线模型改用启发式并明说（第 6 章）。"""
    llm = llm or get_judge_model()
    if is_offline(llm):
        return heuristic_judge(question, answer, context, reference, **heuristic)
    parsed = _ask(llm, judge_messages(question, answer, context, reference), JudgeScores, retries)
    scores = {d.name: float(getattr(parsed, d.key)) for d in RUBRIC}
    note = "大模型裁判：分数由模型给出，建议先用少量人工评分校准" + _same_vendor_note(llm)
    return JudgeResult(scores, _judge_name(llm), note, parsed.analysis)


# ---------------------------------------------------------------------------
# 成对比较：同一对回答问两次，第二次交换位置；两次一致才算有胜者
# ---------------------------------------------------------------------------

_SWAP = {"A": "B", "B": "A", "tie": "tie"}
PAIRWISE_TIE_MARGIN = 0.05  # 离线启发式：两份回答的词级 F1 相差不到这个数记平局


def _combine(first: str, second: str, reasons: tuple[str, str], judge: str, note: str) -> PairwiseResult:
    consistent = first == second
    return PairwiseResult(first if consistent else "tie", consistent, first, second, reasons, judge, note)


def heuristic_pairwise(question: str, answer_a: str, answer_b: str, context: str,
                       reference: str = "") -> PairwiseResult:
    """离线时的成对比较：两份回答谁对参考答案（没有参考答案时对资料）的词级 F1 高谁胜，并明说（第 6 章）。"""
    target, against = (reference, "参考答案") if reference else (context, "参考资料")

    def pick(first: str, second: str) -> tuple[str, str]:  # 按"先 A 后 B"的位置判，与裁判的两次提问对应
        f1, f2 = token_f1(CITE_MARK.sub(" ", first), target), token_f1(CITE_MARK.sub(" ", second), target)
        winner = "tie" if abs(f1 - f2) < PAIRWISE_TIE_MARGIN else ("A" if f1 > f2 else "B")
        return winner, f"位置 A 的 F1 = {f1:.2f}，位置 B 的 F1 = {f2:.2f}"

    first, why1 = pick(answer_a, answer_b)
    second, why2 = pick(answer_b, answer_a)
    note = (f"离线启发式，不是真正的裁判：比较两份回答对{against}的词级 F1，高者胜，相差不到 "
            f"{PAIRWISE_TIE_MARGIN:g} 记平局；这条规则与顺序无关，交换位置必然一致，所以离线看不出位置偏差")
    return _combine(first, _SWAP[second], (why1, why2), "offline-heuristic", note)


def pairwise_judge(question: str, answer_a: str, answer_b: str, context: str, reference: str = "", *,
                   llm: BaseChatModel | None = None, retries: int = 1) -> PairwiseResult:
    """成对比较：原顺序与交换顺序各问一次，两次一致才判胜负，否则记平局、标出位置偏差；离线用启发式（第 6 章）。"""
    llm = llm or get_judge_model()
    if is_offline(llm):
        return heuristic_pairwise(question, answer_a, answer_b, context, reference)
    one = _ask(llm, pairwise_messages(question, answer_a, answer_b, context, reference), PairwiseVerdict, retries)
    two = _ask(llm, pairwise_messages(question, answer_a, answer_b, context, reference, swap=True),
               PairwiseVerdict, retries)
    second = _SWAP[two.winner]  # 第二次 answer_b 在"回答 A"的位置：换回原来的标签
    note = ("大模型裁判：两种顺序结论一致" if one.winner == second
            else f"两种顺序结论不同（先 {one.winner}、后 {second}）：存在位置偏差，记平局")
    note += _same_vendor_note(llm)
    return _combine(one.winner, second, (one.analysis, two.analysis), _judge_name(llm), note)
