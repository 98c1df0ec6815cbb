"""离线服务的 tool_choice：强制调用时一定给出那个工具的调用；不强制时回答逐字节不变（第 3 章）。"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from helpers import offline
from helpers.offline.app import get_app

MODEL = offline.CHAT_MODEL
CONTEXT = "<context>\n[1] Chroma 是一个开源的向量数据库。\n[2] 温度为 0 时输出最确定。\n</context>\n"


def _fn(name: str, description: str, **props: str) -> dict[str, Any]:
    properties = {key: {"type": kind} for key, kind in props.items()}
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": list(props)}}}


MULTIPLY = _fn("multiply", "计算两个数的乘积", a="number", b="number")
ADD = _fn("add", "计算两个整数的和", a="integer", b="integer")
SEARCH = _fn("search_notes", "在课程资料里搜索", query="string")
NOW = _fn("current_time", "返回当前时间")
TOOLS = [MULTIPLY, ADD, SEARCH]


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# 不强制工具的请求（其他章节笔记本里已经提交的输出依赖它们）：键是请求的名字
UNFORCED: dict[str, dict[str, Any]] = {
    "plain": {"messages": _user("你好")},
    "material": {"messages": _user(CONTEXT + "问题：Chroma 是什么？")},
    "material_hot": {"messages": _user(CONTEXT + "问题：温度有什么用？"), "temperature": 0.9, "seed": 7},
    "truncated": {"messages": _user(CONTEXT + "问题：Chroma 是什么？"), "max_tokens": 5},
    "schema": {"messages": _user(CONTEXT + "问题：Chroma 是什么？"), "response_format": {
        "type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object", "properties": {
            "answer": {"type": "string"}, "sources": {"type": "array", "items": {"type": "integer"}}}}}}},
    "tool_picked": {"messages": _user("计算 12 乘以 7"), "tools": TOOLS},
    "tool_picked_auto": {"messages": _user("计算 12 加 30"), "tools": TOOLS, "tool_choice": "auto"},
    "tool_string": {"messages": _user("在课程资料里搜索“LCEL”"), "tools": TOOLS},
    "tool_none": {"messages": _user("计算 12 乘以 7"), "tools": TOOLS, "tool_choice": "none"},
    "tool_no_match": {"messages": _user("你好"), "tools": TOOLS},
    "tool_no_number": {"messages": _user("计算乘积"), "tools": [MULTIPLY]},
    "tool_no_args": {"messages": _user("current time 现在几点"), "tools": [NOW]},
    "tool_result": {"messages": [
        *_user("计算 12 乘以 7"),
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "multiply", "arguments": "{\"a\": 12, \"b\": 7}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "84"}], "tools": TOOLS},
    "stream_tool": {"messages": _user("计算 12 乘以 7"), "tools": TOOLS, "stream": True,
                    "stream_options": {"include_usage": True}},
    "stream_text": {"messages": _user(CONTEXT + "问题：Chroma 是什么？"), "stream": True,
                    "stream_options": {"include_usage": True}},
}


# 上面每个请求在加入 tool_choice 之前（HEAD e2c7d77 的 engine.py/app.py）得到的响应字节的 sha256 前 16 位
BEFORE: dict[str, str] = {
    "plain": "b080efd631355ba0",
    "material": "f9bf7a889bae9927",
    "material_hot": "d561867523da9a20",
    "truncated": "87097c48e8ba8353",
    "schema": "30a5c60bcead7776",
    "tool_picked": "6c358841f6aa23fe",
    "tool_picked_auto": "667dd8857e80a0f7",
    "tool_string": "d7e0834d1d806e40",
    "tool_none": "298dff9b892d2e2b",
    "tool_no_match": "5f13e4677ac35469",
    "tool_no_number": "490a192650810459",
    "tool_no_args": "48b8bf519f4bdebf",
    "tool_result": "e5b64279807c7fee",
    "stream_tool": "428cb03f0f12fa6a",
    "stream_text": "c638f2657e7140eb",
}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(get_app(), base_url="http://offline.llm-universe.local")


def _post(client: TestClient, body: dict[str, Any]):
    return client.post("/v1/chat/completions", json={"model": MODEL, **body})


def _call(client: TestClient, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """返回 (工具名, 参数)；没有工具调用时断言失败。"""
    choice = _post(client, body).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    (call,) = choice["message"]["tool_calls"]
    return call["function"]["name"], json.loads(call["function"]["arguments"])


@pytest.mark.parametrize("name", list(UNFORCED))
def test_unforced_requests_are_byte_identical(client: TestClient, name: str) -> None:
    assert hashlib.sha256(_post(client, UNFORCED[name]).content).hexdigest()[:16] == BEFORE[name]


@pytest.mark.parametrize("choice", ["required", "any"])
def test_required_calls_the_best_matching_tool(client: TestClient, choice: str) -> None:
    # 选得出工具的请求，强制与不强制得到同一个调用
    body = {"messages": _user("在课程资料里搜索“LCEL”"), "tools": TOOLS}
    assert _post(client, {**body, "tool_choice": choice}).json()["choices"] == _post(client, body).json()["choices"]
    # 一个都不重合（"你好"），不强制时不调用；强制时取第一个，问题里没有数字，数字参数就不填
    assert _call(client, {"messages": _user("你好"), "tools": TOOLS, "tool_choice": choice}) == ("multiply", {})


def test_named_tool_choice_calls_that_tool(client: TestClient) -> None:
    named = {"type": "function", "function": {"name": "search_notes"}}
    body = {"messages": _user("计算 12 乘以 7"), "tools": TOOLS, "tool_choice": named}
    assert _call(client, body) == ("search_notes", {"query": "计算 12 乘以 7"})
    named = {"type": "function", "function": {"name": "add"}}
    assert _call(client, {**body, "tool_choice": named}) == ("add", {"a": 12, "b": 7})


def test_forced_tool_without_parameters_gets_empty_arguments(client: TestClient) -> None:
    body = {"messages": _user("你好"), "tools": [*TOOLS, NOW]}
    forced = {**body, "tool_choice": {"type": "function", "function": {"name": "current_time"}}}
    assert _call(client, forced) == ("current_time", {})


def test_forced_tool_is_called_again_after_a_tool_result(client: TestClient) -> None:
    # 与 OpenAI 一样：强制调用时，工具返回结果之后模型仍然调用工具（所以智能体循环里不要一直强制）
    body = {**UNFORCED["tool_result"], "tool_choice": "required"}
    assert _call(client, body) == ("multiply", {"a": 12.0, "b": 7.0})


def test_forced_tool_streams_the_call(client: TestClient) -> None:
    body = {"messages": _user("你好"), "tools": TOOLS, "stream": True,
            "tool_choice": {"type": "function", "function": {"name": "add"}}}
    text = _post(client, body).text
    assert '"name": "add"' in text and '"finish_reason": "tool_calls"' in text


@pytest.mark.parametrize("body, message", [
    ({"tool_choice": "required"}, "没有 tools"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "'nope' 不在 tools 里"),
])
def test_impossible_tool_choice_is_a_400(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = _post(client, {"messages": _user("你好"), **body})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
