"""智能体式检索（第 8 章）：知识库工具、计算器、三道护栏、"再搜一次"规则、步骤表，以及与固定链的对比。

离线教学模型按 helpers.offline.engine 的规则选工具；断言写的是用户看得到的结果（调用了哪个工具、回答带不带出处、
为什么停下），与规则相关的断言只对离线模型成立，所以这里明确用 offline 提供方，而不是 .env 里的模型。
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from helpers.agent import (
    AgentRun,
    arun_agent,
    build_agent,
    calculator,
    knowledge_tools,
    run_agent,
    trace_rows,
)
from helpers.evaluation.agent import AGENT, CHAIN, agent_table, compare_agent_and_chain
from helpers.evaluation.bench import main as bench_main
from helpers.llm import get_chat_model
from helpers.offline.engine import NOT_FOUND, _keywords as keywords
from helpers.prompts import SEARCH_NOT_FOUND
from tests.support.othermodel import create_app
from tests.support.servers import serve_in_thread

CONTENT_Q = "星河咖啡馆的招牌饮品是什么？"
NOWHERE_Q = "Kubernetes 集群怎么扩容？"


@pytest.fixture(scope="module")
def llm():
    return get_chat_model("offline", max_retries=0)


@pytest.fixture(scope="module")
def tools(tiny_kb):
    return [*knowledge_tools(tiny_kb), calculator]


@pytest.fixture(scope="module")
def agent(llm, tools):
    return build_agent(llm, tools)


def test_content_question_searches_then_answers_with_a_source(agent):
    run = run_agent(agent, CONTENT_Q)
    assert run.calls == [("search_knowledge", {"query": CONTENT_Q})]
    assert "桂花拿铁" in run.answer and "[1]" in run.answer
    assert [d.metadata["source"] for d in run.retrieved][:1] == ["coffee.md"]
    assert run.stopped_by is None and run.searched
    assert (run.model_calls, run.tool_calls) == (2, 1)
    assert run.input_tokens > 0 and run.output_tokens > 0 and run.seconds > 0


def test_search_tool_returns_numbered_text_and_the_documents(tools):
    search = tools[0]
    msg = search.invoke({"name": "search_knowledge", "args": {"query": CONTENT_Q}, "id": "c1", "type": "tool_call"})
    assert msg.content.startswith("[1] 来源：coffee.md")
    assert msg.artifact and msg.artifact[0].metadata["source"] == "coffee.md"
    empty = search.invoke({"name": "search_knowledge", "args": {"query": NOWHERE_Q}, "id": "c2", "type": "tool_call"})
    assert empty.content.startswith(SEARCH_NOT_FOUND) and empty.artifact == []


def test_list_documents_answers_which_documents(agent):
    run = run_agent(agent, "知识库里有哪些文档？")
    assert run.calls == [("list_documents", {})]
    assert all(name in run.answer for name in ("coffee.md", "garden.md", "notes.txt"))
    assert run.retrieved == [] and not run.searched


def test_calculator_question(agent):
    run = run_agent(agent, "用计算器算“(12+30)*7”等于多少")
    assert run.calls == [("calculator", {"expression": "(12+30)*7"})]
    assert "294" in run.answer


def test_calculator_is_safe_and_explains_errors():
    for expression, shown in [("(12+30)*7", "(12+30)*7 = 294"), ("2^10", "2**10 = 1024"), ("7 ÷ 2", "7 / 2 = 3.5")]:
        assert calculator.invoke({"expression": expression}) == shown
    for bad in ("__import__('os').system('echo hi')", "abc", "1/0", "9**9**9", ""):
        out = calculator.invoke({"expression": bad})
        assert out.startswith("无法计算"), out


def test_search_again_with_keywords_then_says_not_found(agent):
    run = run_agent(agent, NOWHERE_Q)
    assert run.calls == [("search_knowledge", {"query": NOWHERE_Q}),
                         ("search_knowledge", {"query": keywords(NOWHERE_Q)})]
    assert keywords(NOWHERE_Q) == "Kubernetes 集群 扩容"
    assert run.answer == NOT_FOUND
    assert run.stopped_by is None and run.retrieved == []


def test_runaway_loop_is_stopped_by_the_repeated_call_guard(llm, tools):
    run = run_agent(build_agent(llm, tools, require_tools=True), CONTENT_Q)
    assert run.stopped_by == "repeated_call"
    assert len(run.calls) == 2 and run.calls[0] == run.calls[1]
    assert run.tool_calls == 1  # 重复的那次没有执行
    assert "完全相同" in run.answer


@pytest.mark.parametrize(("limits", "reason", "executed"), [
    ({"max_model_calls": 1}, "model_calls", 1),
    ({"max_tool_calls": 1}, "tool_calls", 1),
])
def test_runaway_loop_is_stopped_by_the_limits(llm, tools, limits, reason, executed):
    run = run_agent(build_agent(llm, tools, require_tools=True, **limits), CONTENT_Q)
    assert run.stopped_by == reason
    assert run.tool_calls == executed and "上限" in run.answer


def test_guard_only_looks_at_this_run(llm, tools):
    agent = build_agent(llm, tools, require_tools=True, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    first = run_agent(agent, CONTENT_Q, config=config)
    second = run_agent(agent, CONTENT_Q, config=config)  # 同一个问题再问一次：第一次调用不算重复
    assert first.stopped_by == second.stopped_by == "repeated_call"
    assert len(second.calls) == 2 and len(second.messages) > len(first.messages)


def test_trace_rows_have_model_and_tool_steps_with_tokens_and_time(agent):
    rows = trace_rows(run_agent(agent, CONTENT_Q))
    assert [r["类型"] for r in rows] == ["模型", "工具", "模型"]
    assert rows[0]["内容"].startswith("→ search_knowledge")
    assert rows[1]["名称"] == "search_knowledge" and "coffee.md" in rows[1]["内容"]
    assert rows[2]["内容"].startswith("回答：")
    assert all(r["输入 tokens"] > 0 and r["输出 tokens"] > 0 for r in rows if r["类型"] == "模型")
    assert all(r["耗时 ms"] >= 0 for r in rows)
    assert "耗时 ms" not in trace_rows(run_agent(agent, CONTENT_Q), with_time=False)[0]


def test_async_run_matches_the_sync_run(agent):
    sync, async_ = run_agent(agent, CONTENT_Q), asyncio.run(arun_agent(agent, CONTENT_Q))
    assert (async_.answer, async_.calls) == (sync.answer, sync.calls)


class _Scripted(GenericFakeChatModel):
    """按脚本回复的模型：先调用不存在的工具，再用错参数调用计算器，最后作答。"""

    def bind_tools(self, tools: Any, **kwargs: Any) -> _Scripted:
        return self


def test_unknown_tool_and_bad_arguments_come_back_as_tool_errors(tools):
    script = iter([
        AIMessage("", tool_calls=[{"name": "no_such_tool", "args": {}, "id": "a"}]),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"wrong": 1}, "id": "b"}]),
        AIMessage("好了。"),
    ])
    run = run_agent(build_agent(_Scripted(messages=script), tools), "随便问问")
    errors = [m for m in run.messages if isinstance(m, ToolMessage)]
    assert [m.status for m in errors] == ["error", "error"]
    assert "no_such_tool" in errors[0].content
    assert run.answer == "好了。" and run.stopped_by is None


def test_a_model_that_never_calls_tools_does_not_break_anything(tiny_kb, tools):
    with serve_in_thread(create_app()) as base:
        other = ChatOpenAI(base_url=base + "/v1", api_key="test", model="other-model", max_retries=0)
        run = run_agent(build_agent(other, tools), CONTENT_Q)
        rows = compare_agent_and_chain([{"id": "q", "question": CONTENT_Q, "gold": [{"source": "coffee.md"}]}],
                                       tiny_kb, other, progress=False)
    assert isinstance(run, AgentRun) and run.answer.startswith("好的。")
    assert run.calls == [] and run.retrieved == [] and run.model_calls == 1
    assert rows[1]["no_search_rate"] == 1.0 and rows[1]["hit@4"] == 0.0


def test_compare_agent_and_chain_on_a_tiny_set(tiny_kb, llm):
    queries = [
        {"id": "a", "question": CONTENT_Q, "gold": [{"source": "coffee.md"}]},
        {"id": "b", "question": "青藤植物园里最古老的树是什么？", "gold": [{"source": "garden.md"}]},
        {"id": "c", "question": NOWHERE_Q, "gold": []},
    ]
    chain, agent = compare_agent_and_chain(queries, tiny_kb, llm, k=2, progress=False)
    assert (chain["pipeline"], agent["pipeline"]) == (CHAIN, AGENT)
    assert chain["questions"] == agent["questions"] == 2 and chain["unanswerable"] == 1
    assert chain["hit@2"] == agent["hit@2"] == 1.0 and agent["d_hit@2"] == 0.0
    assert chain["refusal_rate"] == agent["refusal_rate"] == 1.0
    assert chain["model_calls"] < agent["model_calls"]  # 固定链拒答时不调用模型；智能体每题至少两次
    assert len(agent["records"]) == 3 and agent["records"][2]["searches"] == 2
    table = agent_table([chain, agent], k=2)
    assert "智能体" in table and "+0.000" in table


def test_bench_agent_command_reports_a_missing_file(tmp_path, capsys):
    assert bench_main(["agent", "--queries", str(tmp_path / "none.jsonl")]) == 2
    assert "找不到" in capsys.readouterr().err


def test_chunks_returned_through_mcp_count_as_retrieved(tools):
    # langchain-mcp-adapters 把 MCP 工具的结构化结果放在 artifact["structured_content"] 里
    chunk = {"text": "星河咖啡馆的招牌饮品是桂花拿铁。", "source": "coffee.md", "page": None, "score": 0.9}
    script = iter([AIMessage("", tool_calls=[{"name": "mcp_search", "args": {"query": "招牌"}, "id": "m"}]),
                   AIMessage("桂花拿铁。")])

    @tool("mcp_search", response_format="content_and_artifact")
    def mcp_search(query: str) -> tuple[str, dict]:
        """假装经 MCP 调用的检索工具。"""
        return "…", {"structured_content": {"result": [chunk, chunk]}}

    run = run_agent(build_agent(_Scripted(messages=script), [mcp_search]), "招牌饮品")
    assert [(d.page_content, d.metadata) for d in run.retrieved] == [
        (chunk["text"], {"source": "coffee.md", "score": 0.9})]


def test_offline_model_calls_a_search_tool_whose_k_is_optional(llm, tiny_kb):
    # MCP 服务的检索工具多一个选填的 k：离线模型不填它（用默认值），问题里没有数字也照样调用
    @tool("search_with_k")
    def search_with_k(query: str, k: int = 4) -> str:
        """在课程知识库里查资料：某个概念是什么、为什么、怎么做。"""
        return f"k={k}"

    run = run_agent(build_agent(llm, [search_with_k]), CONTENT_Q)
    assert run.calls == [("search_with_k", {"query": CONTENT_Q})]
    assert run.answer.endswith("k=4")


def test_a_tool_that_raises_does_not_end_the_run():
    @tool("flaky")
    def flaky(query: str) -> str:
        """在课程知识库里查资料。"""
        if query == "boom":
            raise RuntimeError("内部细节 /secret/path")
        raise ToolException("参数不对：k 必须在 1 到 50 之间")

    script = iter([AIMessage("", tool_calls=[{"name": "flaky", "args": {"query": "boom"}, "id": "x"}]),
                   AIMessage("", tool_calls=[{"name": "flaky", "args": {"query": "k"}, "id": "y"}]),
                   AIMessage("算了。")])
    run = run_agent(build_agent(_Scripted(messages=script), [flaky]), "随便问问")
    results = [m.content for m in run.messages if isinstance(m, ToolMessage)]
    assert "RuntimeError" in results[0] and "secret" not in results[0]
    assert "k 必须在 1 到 50 之间" in results[1]
    assert run.answer == "算了。"


def test_no_second_search_when_the_keywords_are_the_same_query(agent):
    run = run_agent(agent, "Kubernetes 集群扩容")  # 没有疑问词和标点：关键词就是原问题，再搜只会重复
    assert run.calls == [("search_knowledge", {"query": "Kubernetes 集群扩容"})]
    assert run.answer == NOT_FOUND and run.stopped_by is None
