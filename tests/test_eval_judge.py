"""大模型裁判：先分析后打分、锚定档位与重试、交换位置的成对比较、离线启发式、与人工标注的一致性。"""

from __future__ import annotations

import json
import math

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from helpers.config import load_settings
from helpers.evaluation import agreement as ag, judge as jd
from helpers.llm import get_chat_model

SCORES = {"knowledge": 1, "consistency": 1, "faithfulness": 0.5, "correctness": 0.5,
          "logic": 1, "fluency": 1, "intelligence": 0.5}
GOOD = json.dumps({"analysis": "“由 Meta 开发”在资料中找不到依据；核心答案 Chroma 正确", **SCORES}, ensure_ascii=False)


def verdict(winner: str, why: str = "比较正确性") -> str:
    return json.dumps({"analysis": why, "winner": winner}, ensure_ascii=False)


class Picker(BaseChatModel):
    """脚本化的成对裁判：选内容含 keyword 的那一份；keyword 为空时永远选位置 A（位置偏差）。"""

    keyword: str = ""
    seen: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "picker"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = str(messages[-1].content)
        self.seen.append(text)
        a, b = text.split("【回答 A】")[1].split("【回答 B】")
        winner = "A" if not self.keyword or self.keyword in a else "B"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(verdict(winner)))])


# ---------- 先分析后打分 ----------

def test_schema_and_prompt_put_the_analysis_before_the_scores():
    fields = list(jd.JudgeScores.model_json_schema()["properties"])
    assert fields[0] == "analysis" and fields[1:] == [d.key for d in jd.RUBRIC]
    system = jd.judge_messages("问", "答", "资料", "参考")[0].content
    assert "在心里" not in system and "第一个字段 analysis" in system
    assert system.index('"analysis"') < system.index('"knowledge"')
    assert list(jd.PairwiseVerdict.model_json_schema()["properties"]) == ["analysis", "winner"]


def test_scores_written_before_the_analysis_are_sent_back():
    late = json.dumps({**SCORES, "analysis": "事后补的理由"}, ensure_ascii=False)
    llm = FakeListChatModel(responses=[late, GOOD])
    res = jd.judge_answer("问", "答", "资料", "参考", llm=llm)
    assert res.scores["回答幻觉比例"] == 0.5 and res.reason.startswith("“由 Meta 开发”")
    with pytest.raises(ValueError, match="analysis 必须是第一个字段"):
        jd.parse_verdict(late, jd.JudgeScores)


def test_json_is_found_after_a_thinking_block_or_chatter():
    text = "<think>先看 {资料} 里有没有 7860</think>\n好的，评分如下：" + GOOD + "\n以上。"
    assert jd.parse_verdict(text, jd.JudgeScores).faithfulness == 0.5
    with pytest.raises(ValueError, match="没有找到 JSON 对象"):
        jd.parse_verdict("我觉得挺好", jd.JudgeScores)


# ---------- 锚定档位 ----------

def test_every_dimension_has_anchors_rendered_into_the_prompt():
    system = jd.judge_messages("问", "答", "资料", "参考")[0].content
    for d in jd.RUBRIC:
        assert len(d.anchors) >= 2 and d.levels[0] == d.low and d.levels[-1] == d.high
        schema = jd.JudgeScores.model_json_schema()["properties"][d.key]
        assert sorted(schema["enum"]) == list(d.levels)
        assert all(text in system for _, text in d.anchors)
    assert jd.RUBRIC_BY_KEY["knowledge"].levels == (0, 1)
    assert list(jd.anchor_table().columns) == ["维度", "分数", "标准"]


def test_off_anchor_score_is_explained_to_the_model_and_retried():
    off = GOOD.replace('"correctness": 0.5', '"correctness": 0.7')
    llm = FakeListChatModel(responses=[off, "```json\n" + GOOD + "\n```"])
    res = jd.judge_answer("问", "答", "资料", "参考", llm=llm)
    assert res.judge == "FakeListChatModel" and res.scores["回答正确性"] == 0.5
    with pytest.raises(ValueError, match="连续 2 次.*correctness 只能取 0、0.5、1，收到 0.7"):
        jd.judge_answer("问", "答", "资料", "参考", llm=FakeListChatModel(responses=[off, off]))


def test_human_scores_may_sit_between_anchors_unless_anchored():
    assert jd.check_scores({"回答正确性": 0.7}) == {"回答正确性": 0.7}
    with pytest.raises(ValueError, match="不是锚定的档位：只能取 0、0.5、1"):
        jd.check_scores({"回答正确性": 0.7}, anchored=True)
    assert jd.nearest_level("回答正确性", 0.7) == 0.5 and jd.nearest_level("correctness", 0.8) == 1.0
    assert jd.nearest_level("回答正确性", 0.75) == 0.5 and jd.nearest_level("逻辑性", None) is None


# ---------- 成对比较 ----------

def test_pairwise_winner_when_both_orders_agree():
    picker = Picker(keyword="7860", seen=[])
    res = jd.pairwise_judge("默认端口？", "默认端口 7860", "默认端口 8080", "端口 7860", "7860", llm=picker)
    assert (res.winner, res.consistent, res.first, res.second) == ("A", True, "A", "A")
    assert "默认端口 7860\n【回答 B】" in picker.seen[0] and "默认端口 8080\n【回答 B】" in picker.seen[1]
    res = jd.pairwise_judge("默认端口？", "默认端口 8080", "默认端口 7860", "端口 7860", "7860", llm=picker)
    assert (res.winner, res.consistent) == ("B", True)


def test_position_bias_gives_a_tie_marked_inconsistent():
    res = jd.pairwise_judge("默认端口？", "默认端口 7860", "默认端口 8080", "端口 7860", "7860",
                            llm=Picker(seen=[]))
    assert (res.winner, res.consistent, res.first, res.second) == ("tie", False, "A", "B")
    assert "位置偏差" in res.note and res.judge == "Picker"


def test_pairwise_verdict_is_validated_and_retried():
    llm = FakeListChatModel(responses=[verdict("C"), verdict("A"), verdict("B")])
    res = jd.pairwise_judge("问", "甲", "乙", "资料", llm=llm)
    assert (res.winner, res.consistent) == ("A", True)  # 第二次 B 在前、选了位置 B：也是原来的 A
    with pytest.raises(ValueError, match="winner 只能是"):
        jd.pairwise_judge("问", "甲", "乙", "资料", llm=FakeListChatModel(responses=[verdict("C")]), retries=0)


def test_offline_pairwise_says_it_is_a_literal_rule():
    offline = get_chat_model()
    res = jd.pairwise_judge("默认端口？", "Gradio 默认端口是 7860[1]", "默认端口是 8080", "端口 7860",
                            "Gradio 默认端口 7860", llm=offline)
    assert res.judge == "offline-heuristic" and "不是真正的裁判" in res.note and "F1" in res.note
    assert (res.winner, res.consistent) == ("A", True) and "F1" in res.reasons[0]
    one, two = (jd.pairwise_messages("问", "甲回答", "乙回答", "资料", swap=s)[1].content for s in (False, True))
    assert one.index("甲回答") < one.index("乙回答") and two.index("乙回答") < two.index("甲回答")


# ---------- 裁判用哪个模型 ----------

def test_judge_model_defaults_to_the_course_model_and_can_be_another_vendor(monkeypatch):
    monkeypatch.delenv("JUDGE_PROVIDER", raising=False)
    assert jd.get_judge_model(load_settings()).metadata["provider"] == load_settings().llm_provider
    settings = load_settings(judge_provider="deepseek", api_keys={"deepseek": "sk-test-not-real"})
    judge = jd.get_judge_model(settings)
    assert judge.metadata["provider"] == "deepseek" and "sk-test" not in repr(settings)
    monkeypatch.setenv("JUDGE_PROVIDER", "deepseek")
    monkeypatch.setenv("JUDGE_MODEL", "deepseek-reasoner")
    assert (load_settings().judge_provider, load_settings().judge_model) == ("deepseek", "deepseek-reasoner")


def test_a_judge_from_the_answering_vendor_is_flagged(monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "ollama")
    same = FakeListChatModel(responses=[GOOD], metadata={"provider": "ollama"})
    assert "可能偏爱自家的回答" in jd.judge_answer("问", "答", "资料", "参考", llm=same).note
    other = FakeListChatModel(responses=[GOOD], metadata={"provider": "deepseek"})
    assert "自家" not in jd.judge_answer("问", "答", "资料", "参考", llm=other).note


# ---------- 与人工标注的一致性 ----------

def test_kappa_matches_hand_calculation_and_handles_one_label():
    a, b = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 0, 1, 0]
    assert ag.cohens_kappa(a, b) == pytest.approx(0.375)  # (0.8 − 0.68) ÷ (1 − 0.68)
    assert ag.cohens_kappa([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.0)
    assert ag.cohens_kappa(["对"] * 3, ["对"] * 3) == 1.0  # scikit-learn 此时给 NaN
    assert ag.cohens_kappa([0, 0.5, 1, None], [0, 0.5, 1, 1]) == pytest.approx(1.0)  # 空的不计
    near = ag.cohens_kappa([0, 0.5, 1, 1], [0.5, 0.5, 1, 1], weights="quadratic")
    assert near > ag.cohens_kappa([0, 0.5, 1, 1], [1, 0.5, 1, 1], weights="quadratic")
    with pytest.raises(ValueError, match="同一批样例"):
        ag.cohens_kappa([1], [1, 0])


def test_spearman_and_constant_input():
    rho, p = ag.spearman([0, 0.5, 1, 1], [0.1, 0.4, 0.9, 0.8])
    assert rho == pytest.approx(0.9486832980505138) and 0 <= p <= 1
    assert all(math.isnan(v) for v in ag.spearman([1, 1, 1], [0, 0.5, 1]))


def test_confusion_table_and_summary():
    auto, human = ["对", "错", "对", "对", None], ["对", "对", "部分对", "对", "错"]
    table = ag.agreement_table(auto, human, labels=["对", "部分对", "错"])
    assert table.index.name == "自动标签" and table.columns.name == "人工标签"
    assert list(table.index) == list(table.columns) == ["对", "部分对", "错"]
    assert table.loc["对", "对"] == 2 and table.loc["错", "对"] == 1 and int(table.to_numpy().sum()) == 4
    summary = ag.agreement_summary(auto, human)
    assert summary["n"] == 4 and summary["agreement"] == 0.5 and -1 <= summary["kappa"] <= 1
