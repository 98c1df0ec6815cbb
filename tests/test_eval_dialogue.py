"""多轮追问评估集：逐行校验、quote 逐字出自原文、三种查询方式各用什么去检索、在三篇小文档上跑一遍。"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import Field

from helpers import evaluation as ev
from helpers.config import KNOWLEDGE_DIR
from helpers.evaluation import dialogue as dl
from helpers.knowledge import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, load_directory, split_documents
from helpers.llm import get_chat_model, get_embeddings
from helpers.rag import RagChain
from tests.support.corpus import write_corpus
from tests.support.factories import synced_kb

GOOD: dict[str, Any] = {
    "id": "X001", "turns": [{"question": "Gradio 的默认端口是多少？", "answer": "7860。"}],
    "question": "换成 Streamlit 呢？", "standalone": "Streamlit 的默认端口是多少？",
    "gold": [{"source": "deployment_and_ops.md", "quote": "Streamlit 的默认端口为 8501"}],
    "answer": "8501。", "type": "followup", "kind": "followup", "split": "dev",
}


def line(**change: Any) -> str:
    row = {**GOOD, **change}
    return json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False)


@pytest.fixture(scope="module")
def dialogues() -> list[dl.Dialogue]:
    return dl.load_dialogues()


# ---------- 评估集本身 ----------

def test_the_shipped_set_is_a_balanced_followup_slice(dialogues):
    assert len(dialogues) >= 16
    assert [d.id for d in dialogues] == [f"D{n:03d}" for n in range(1, len(dialogues) + 1)]
    assert all(d.type == "followup" and 1 <= len(d.turns) <= 2 for d in dialogues)
    # 划分只看编号：奇数号进 dev、偶数号进 test，两边各一半
    assert all(d.split == ("dev" if int(d.id[1:]) % 2 else "test") for d in dialogues)
    switches = [d for d in dialogues if d.kind == "topic_switch"]
    assert 2 <= len(switches) <= 3 and {d.split for d in switches} == {"dev", "test"}
    assert any(len(d.turns) == 2 for d in dialogues)  # 有回到更早一轮的对话
    assert all("quote" in g for d in dialogues for g in d.gold)


def test_every_quote_is_verbatim_in_its_document_and_fits_a_chunk(dialogues):
    corpus = load_directory(KNOWLEDGE_DIR)  # 与 metrics.matches 同一判定：元数据相同、去空白后正文含 quote
    chunks = split_documents(corpus, chunk_size=DEFAULT_CHUNK_SIZE, chunk_overlap=DEFAULT_CHUNK_OVERLAP)
    problems = []
    for d in dialogues:
        for g in d.gold:
            where = f"{d.id}（{g['source']}）：quote {g['quote']!r}"
            if not any(ev.matches(doc, g) for doc in corpus):
                problems.append(f"{where} 不在原文里（要逐字摘自资料）")
            elif not any(ev.matches(c, g) for c in chunks):
                problems.append(f"{where} 在默认切块里没有一块完整含有它（摘短一些）")
    assert not problems, "多轮评估集的 quote 有误：\n" + "\n".join(problems)


def test_history_turns_into_human_and_ai_messages(dialogues):
    d = next(d for d in dialogues if len(d.turns) == 2)
    history = d.history_messages()
    assert [type(m) for m in history] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    assert history[0].content == d.turns[0].question and history[1].content == d.turns[0].answer
    assert all(isinstance(m, HumanMessage) for m in d.history_messages(answers=False))


# ---------- 逐行校验 ----------

@pytest.mark.parametrize(("change", "message"), [
    ({"standalone": None}, "缺少字段 standalone"),
    ({"turns": []}, "turns 应是 1 到"),
    ({"turns": ["q"] * (dl.MAX_TURNS + 1)}, "turns 应是 1 到"),
    ({"turns": [{"answer": "只有回答"}]}, "turns 第 1 轮"),
    ({"turns": [{"question": "q", "answer": ""}]}, "answer 应是非空字符串"),
    ({"kind": "chitchat"}, "kind='chitchat'"),
    ({"split": "train"}, "split='train'"),
    ({"type": "lookup"}, "type 只能是 'followup'"),
    ({"gold": []}, "缺少字段 gold"),
    ({"gold": [{"source": "rag.md", "quote": "太短"}]}, "quote"),
    ({"standalone": "换成 Streamlit 呢？"}, "standalone 与 question 相同"),
])
def test_bad_lines_are_rejected_with_a_chinese_reason(change, message):
    with pytest.raises(ValueError, match=message):
        dl.parse_dialogue_line(line(**change), "dialogues.jsonl 第 3 行")


def test_plain_string_turns_and_topic_switch_without_rewrite_are_fine():
    d = dl.parse_dialogue_line(line(turns=["Gradio 的默认端口是多少？"], kind="topic_switch",
                                    standalone="换成 Streamlit 呢？"))
    assert d.turns == (dl.Turn("Gradio 的默认端口是多少？"),)
    assert d.history_messages() == [HumanMessage(d.turns[0].question)]


def test_loader_names_the_line_and_rejects_duplicates(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    path.write_text(line() + "\n\n{坏了\n", encoding="utf-8")
    with pytest.raises(ValueError, match="d.jsonl 第 3 行不是合法的 JSON"):
        dl.load_dialogues(path)
    path.write_text(line() + "\n" + line() + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="d.jsonl 第 2 行：id 'X001' 与前面的重复"):
        dl.load_dialogues(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="是空的"):
        dl.load_dialogues(path)


# ---------- 三种查询 ----------

class _NoRetriever:
    def invoke(self, input: str, config: Any = None, **kwargs: Any) -> list[Document]:
        return []


class _Recording(FakeListChatModel):
    """"真实"模型：记下收到的提示，回答固定的改写。"""

    seen: list = Field(default_factory=list)

    def _call(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(messages)
        return super()._call(messages, stop, run_manager, **kwargs)


def _chain(llm) -> RagChain:
    return RagChain(_NoRetriever(), llm, embeddings=get_embeddings("offline"))


def test_modes_query_the_followup_the_rule_and_the_human_rewrite(dialogues):
    chain = _chain(get_chat_model("offline"))
    by_id = {d.id: d for d in dialogues}
    # D007：GPT-3 → "GPT-2 呢？" → "它的训练数据有多大？"；规则拼上最近一个"完整"问题，接错成 GPT-3
    d = by_id["D007"]
    raw, condensed, oracle = (dl.dialogue_query(d, chain, m) for m in dl.MODES)
    assert raw == "它的训练数据有多大？" and oracle == "GPT-2 的训练数据有多大？"
    assert condensed == "GPT-3 有多少参数？ 它的训练数据有多大？"
    # D013：换了话题（"解释一下 RRF"），很短，规则仍把上一轮的 LoRA 问题拼了进去
    d = by_id["D013"]
    assert d.kind == "topic_switch"
    assert dl.dialogue_query(d, chain, "condensed") == f"{d.turns[0].question} {d.question}"
    assert dl.dialogue_query(d, chain, "raw") == d.question
    with pytest.raises(ValueError, match="mode="):
        dl.dialogue_query(d, chain, "rewrite")


def test_a_real_model_gets_condense_prompt_with_the_reference_answers(dialogues):
    model = _Recording(responses=["GPT-2 的训练数据有多大？"])
    d = next(d for d in dialogues if d.id == "D007")
    assert dl.dialogue_query(d, _chain(model), "condensed") == "GPT-2 的训练数据有多大？"
    prompt = model.seen[0]
    assert "改写成一个不依赖上下文" in prompt[0].content  # CONDENSE_PROMPT 的系统提示
    assert [m.content for m in prompt[1:5]] == [
        "GPT-3 有多少参数？", "1750 亿。", "GPT-2 呢？", "最大版本有 15 亿参数。"]
    assert prompt[-1].content.endswith(d.question)


# ---------- 三篇小文档上跑一遍 ----------

DOCS = {
    "coffee.md": "# 星河咖啡馆\n\n星河咖啡馆的招牌饮品是桂花拿铁，每杯 28 元。\n",
    "garden.md": "# 青藤植物园\n\n门票的售价是多少？青藤植物园成人票售价 40 元，学生票售价 20 元。\n",
    "notes.txt": "机器学习课程的期末考试安排在六月二十日上午九点，地点是教学楼 302 室。\n",
}
TINY = [
    {"id": "T001", "turns": [{"question": "星河咖啡馆的招牌饮品是什么？", "answer": "桂花拿铁。"}],
     "question": "它的售价是多少？", "standalone": "星河咖啡馆的桂花拿铁多少钱一杯？",
     "gold": [{"source": "coffee.md", "quote": "桂花拿铁，每杯 28 元"}], "answer": "每杯 28 元。",
     "type": "followup", "kind": "followup", "split": "dev"},
    {"id": "T002", "turns": ["机器学习课程的期末考试是哪天？"],
     "question": "那在哪里考？", "standalone": "机器学习课程的期末考试在哪里考？",
     "gold": [{"source": "notes.txt", "quote": "地点是教学楼 302 室"}], "answer": "教学楼 302 室。",
     "type": "followup", "kind": "followup", "split": "test"},
]


def test_tiny_run_condensing_finds_what_the_bare_followup_misses(tmp_path: Path):
    kb = synced_kb(write_corpus(tmp_path / "corpus", DOCS), tmp_path / "db")
    items = [dl.parse_dialogue_line(json.dumps(t, ensure_ascii=False)) for t in TINY]
    runs = dl.run_modes(items, kb=kb, llm=get_chat_model("offline"), k=1)
    first = runs["raw"][0]
    assert first.query == "它的售价是多少？" and first.sources == ["garden.md"] and first.hit == 0.0
    assert [r.hit for r in runs["condensed"]] == [1.0, 1.0] and [r.rr for r in runs["oracle"]] == [1.0, 1.0]
    rows = {r["mode"]: r for r in dl.dialogue_summary(runs, n=200)}
    assert rows["condensed − raw"]["hit@1"] == pytest.approx(rows["condensed"]["hit@1"] - rows["raw"]["hit@1"])
    assert rows["oracle − condensed"]["mrr@1"] == 0.0
    table = dl.dialogue_table(runs, n=200)
    assert "condensed − raw" in table and "hit@1" in table
    assert [x["id"] for x in dl.dialogue_diff(runs, "condensed", "raw")] == [r.id for r in runs["raw"] if r.hit == 0]
    row = dl.dialogue_rows(runs)[0]
    assert row["raw_query"] == "它的售价是多少？" and row["oracle_query"] == items[0].standalone
    with pytest.raises(ValueError, match="结果里没有 oracle"):
        dl.dialogue_diff({"raw": runs["raw"]}, "raw", "oracle")
    with pytest.raises(ValueError, match="没有可汇总的对话"):
        dl.dialogue_summary(runs, kind="topic_switch")
