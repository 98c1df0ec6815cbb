"""helpers.history：一条会话 id 规则、两种仓库都满足 HistoryStore、裁剪的 token 数与第 3 章一致。"""

from __future__ import annotations

import re
import uuid

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from helpers.history import (
    HistoryStore,
    SessionHistoryStore,
    SessionStore,
    check_session_id,
    count_message_tokens,
    trim_history,
)
from helpers.text import count_tokens


@pytest.mark.parametrize("good", ["小明", "练习", "user-42", "s1", "a.b", uuid.uuid4().hex, "x" * 128])
def test_session_id_rule_accepts_the_ids_the_course_uses(good):
    assert check_session_id(good) == good


@pytest.mark.parametrize("bad", ["../evil", "../secrets", "../../etc", "a/b", "", "..", "x" * 129, 42])
def test_session_id_rule_rejects_paths_and_odd_values(bad):
    with pytest.raises(ValueError, match="会话 id"):
        check_session_id(bad)


def test_the_app_rule_is_inside_the_course_rule():
    # 应用（第 7 章）原来的规则更窄：凡是它接受的 id，新规则也接受
    app_rule = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
    for sid in ["demo", "s-stream", "A_b-9", "x" * 64, uuid.uuid4().hex]:
        assert app_rule.match(sid) and check_session_id(sid) == sid


def test_both_stores_are_history_stores(tmp_path):
    stores: list[HistoryStore] = [SessionStore(), SessionStore(None, None), SessionHistoryStore(tmp_path)]
    for store in stores:
        store.add_messages("u1", [HumanMessage("问"), AIMessage("答")])
        got = store.messages("u1")
        got.append(HumanMessage("不影响仓库"))  # 返回的是副本
        assert [m.content for m in store.messages("u1")] == ["问", "答"]
        assert store.messages("没有的会话") == []
    assert (tmp_path / "u1.json").is_file()


def test_session_store_bounds_and_unbounded():
    bounded = SessionStore(max_sessions=3, max_messages=4)
    unbounded = SessionStore(max_sessions=None, max_messages=None)
    for i in range(5):
        for store in (bounded, unbounded):
            store.add_messages(f"s{i}", [HumanMessage(str(j)) for j in range(6)])
    assert bounded.messages("s0") == [] and len(bounded.messages("s4")) == 4
    assert all(len(unbounded.messages(f"s{i}")) == 6 for i in range(5))
    unbounded.clear("s0")
    assert unbounded.messages("s0") == []


def test_count_message_tokens_matches_the_rag_chains_counter():
    # rag.RagChain.history 里的计数：正文 + 每条 4 个；纯文本消息上两者相同
    messages = [SystemMessage("你是助手。"), HumanMessage("BM25 的参数 b 取多少？"), AIMessage("通常取 0.75。")]
    assert count_message_tokens(messages) == sum(count_tokens(str(m.content)) + 4 for m in messages)


def test_trim_history_gives_the_chapter_3_numbers():
    note = ("这是我今天的学习笔记：```向量数据库我选了 Chroma，因为它可以嵌入式运行。"
            "嵌入模型先用离线的 offline-hash-zh。```请先记住。")
    history = [SystemMessage("你是个人知识库助手。"), HumanMessage(note), AIMessage("好的，记住了。")]
    for i in range(1, 4):
        history += [HumanMessage(f"第 {i} 个问题：切分时 chunk_size 设多大合适？"),
                    AIMessage(f"第 {i} 次回答：中文资料常用 300～500 个字符，视文档结构而定。")]
    trimmed = trim_history(history, max_tokens=120)
    assert (count_message_tokens(history), len(trimmed), count_message_tokens(trimmed)) == (251, 3, 68)
    assert [m.type for m in trimmed] == ["system", "human", "ai"]
