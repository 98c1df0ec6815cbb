"""helpers.callbacks 与 helpers.history（原 helpers.chains）：逐步记录的回调、会话聊天记录、按 token 裁剪历史。"""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from helpers.callbacks import StepLogger
from helpers.history import ChatHistory, SessionHistoryStore, count_message_tokens, trim_history


def test_step_logger_logs_nested_steps_with_usage(offline_llm):
    lines: list[str] = []
    log = StepLogger(printer=lines.append)
    prompt = ChatPromptTemplate.from_messages([("human", "<context>{ctx}</context>{q}")])
    chain = prompt | offline_llm | StrOutputParser()
    answer = chain.invoke({"ctx": "Chroma 是一个向量数据库。", "q": "Chroma 是什么？"},
                          config={"callbacks": [log]})
    assert "Chroma 是一个向量数据库" in answer
    assert [(s.kind, s.name) for s in log.steps] == [
        ("chain", "ChatPromptTemplate"), ("llm", "ChatOpenAI"),
        ("chain", "StrOutputParser"), ("chain", "RunnableSequence"),
    ]
    llm_step = log.steps[1]
    assert llm_step.depth == 1 and llm_step.input_tokens > 0 and llm_step.output_tokens > 0
    assert len(log.calls) == 1 and log.prompt_tokens == llm_step.input_tokens  # UsageTracker 仍可用
    assert lines[0] == "▶ [chain] RunnableSequence" and lines[-1].startswith("◀ [chain] RunnableSequence（")
    assert any("tokens" in line and "费用" in line for line in lines)
    assert log.by_kind()["chain"]["count"] == 3


def test_step_logger_without_time_prints_deterministic_lines():
    lines: list[str] = []
    log = StepLogger(printer=lines.append, show_time=False, skip_kinds=("chain",))

    @tool
    def add(a: int, b: int) -> int:
        """两数相加。"""
        return a + b

    assert add.invoke({"a": 2, "b": 3}, config={"callbacks": [log]}) == 5
    assert lines == ["▶ [tool] add", "◀ [tool] add"]
    lines.clear()
    model = FakeListChatModel(responses=["好"])
    (ChatPromptTemplate.from_template("{q}") | model).invoke({"q": "问"}, config={"callbacks": [log]})
    # 被跳过的链不占缩进，模型一步顶格打印
    assert lines == [
        "▶ [llm] FakeListChatModel",
        "◀ [llm] FakeListChatModel（输入 0 / 输出 0 tokens，费用 0.000000 CNY）",
    ]
    assert [s.kind for s in log.steps].count("chain") == 2
    log.reset()
    assert log.steps == [] and log.calls == []


def test_step_logger_records_errors():
    lines: list[str] = []
    log = StepLogger(printer=lines.append, show_time=False)

    def boom(_):
        raise ValueError("坏输入")

    with pytest.raises(ValueError):
        RunnableLambda(boom).invoke(1, config={"callbacks": [log]})
    assert log.steps[0].error == "ValueError: 坏输入"
    assert lines[-1] == "◀ [chain] boom（出错：ValueError: 坏输入）"


def test_session_store_keeps_sessions_apart_in_memory():
    store = SessionHistoryStore()
    store.get("alice").add_user_message("你好")
    store.get("alice").add_ai_message("你好，我是助手")
    assert len(store.get("alice")) == 2 and len(store.get("bob")) == 0
    assert store.get("alice") is store("alice")
    assert store.session_ids() == ["alice", "bob"]
    store.clear("alice")
    assert len(store.get("alice")) == 0


def test_session_store_persists_to_json(tmp_path):
    store = SessionHistoryStore(tmp_path / "sessions")
    store.get("用户-1").add_messages([HumanMessage("记住：我叫小明"), AIMessage("好的")])
    path = store.path_for("用户-1")
    assert path is not None and path.is_file()

    reopened = SessionHistoryStore(tmp_path / "sessions")  # 模拟重启
    assert "用户-1" in reopened
    assert [m.content for m in reopened.get("用户-1").messages] == ["记住：我叫小明", "好的"]
    assert isinstance(reopened.get("用户-1").messages[0], HumanMessage)

    reopened.clear("用户-1")
    assert not path.exists() and "用户-1" not in reopened


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", "..", "x" * 200, 42])
def test_session_id_is_checked(bad):
    with pytest.raises(ValueError, match="会话 id"):
        SessionHistoryStore().get(bad)


def test_store_works_with_runnable_with_message_history():
    from langchain_core.runnables.history import RunnableWithMessageHistory

    model = FakeListChatModel(responses=["第一答", "第二答", "别的会话"])
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{question}")]
    )
    store = SessionHistoryStore()
    chat = RunnableWithMessageHistory(prompt | model, store.get, input_messages_key="question",
                                      history_messages_key="history")
    cfg = {"configurable": {"session_id": "s1"}}
    chat.invoke({"question": "问一"}, config=cfg)
    asyncio.run(chat.ainvoke({"question": "问二"}, config=cfg))
    chat.invoke({"question": "问三"}, config={"configurable": {"session_id": "s2"}})
    assert [m.content for m in store.get("s1").messages] == ["问一", "第一答", "问二", "第二答"]
    assert len(store.get("s2")) == 2


def test_chat_history_repr_and_sync_api():
    hist = ChatHistory()
    hist.add_message(HumanMessage("hi"))
    assert repr(hist) == "ChatHistory(1 条消息)"
    asyncio.run(hist.aclear())
    assert hist.messages == []


def _dialogue(turns: int) -> list:
    msgs = [SystemMessage("你是课程助手。")]
    for i in range(turns):
        msgs += [HumanMessage(f"第{i}个问题是什么"), AIMessage(f"第{i}个回答在这里")]
    return msgs


def test_trim_history_keeps_system_and_recent_turns_within_budget():
    msgs = _dialogue(5)
    full = count_message_tokens(msgs)
    trimmed = trim_history(msgs, max_tokens=full // 2)
    assert count_message_tokens(trimmed) <= full // 2
    assert isinstance(trimmed[0], SystemMessage)
    assert isinstance(trimmed[1], HumanMessage)  # 从用户消息开始，不会留下半轮
    assert trimmed[-1].content == "第4个回答在这里"  # 最近的一轮总在
    assert trim_history(msgs, max_tokens=full) == msgs
    first = trim_history(msgs, max_tokens=30, strategy="first")
    assert first[0].content == "你是课程助手。" and count_message_tokens(first) <= 30
    with pytest.raises(ValueError, match="max_tokens"):
        trim_history(msgs, -1)


def test_count_message_tokens_matches_offline_usage(offline_llm):
    msgs = [SystemMessage("你是课程助手。"), HumanMessage("LangChain 有哪些模块？")]
    reply = offline_llm.invoke(msgs)
    assert reply.usage_metadata["input_tokens"] == count_message_tokens(msgs)
