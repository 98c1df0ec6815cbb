"""helpers.llm：LangChain 聊天模型（离线）、用量统计与磁盘缓存。"""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from helpers import llm, offline
from helpers.callbacks import UsageTracker
from helpers.config import ConfigError, load_settings
from helpers.llm import enable_cache, get_chat_model
from helpers.providers import estimate_cost

# SQLiteCache 读缓存时 LangChain 提示 allowed_objects 的默认值将来会变，与本课程无关
pytestmark = pytest.mark.filterwarnings("ignore:The default value of `allowed_objects`")

QUESTION = (
    "<context>\n[1] LangChain 是一个开发大模型应用的开源框架。\n"
    "[2] Chroma 是一个开源的向量数据库。\n</context>\n问题：LangChain 是什么？"
)


def counted_model(**kwargs):
    """返回 (模型, 请求计数列表)：每个真正发到离线服务的请求记一笔。"""
    client = offline.http_client()
    sent: list[str] = []
    client.event_hooks["request"].append(lambda r: sent.append(r.url.path))
    return get_chat_model(http_client=client, **kwargs), sent


def test_invoke_offline():
    reply = get_chat_model().invoke(QUESTION)
    assert isinstance(reply, AIMessage)
    assert "LangChain 是一个开发大模型应用的开源框架" in reply.content and "[1]" in reply.content
    assert reply.response_metadata["model_name"] == offline.CHAT_MODEL
    assert reply.usage_metadata["input_tokens"] > 0


def test_stream_offline_matches_invoke():
    chat = get_chat_model()
    chunks = list(chat.stream(QUESTION))
    assert len(chunks) > 3
    joined = chunks[0]
    for c in chunks[1:]:
        joined += c
    assert joined.content == chat.invoke(QUESTION).content
    assert joined.usage_metadata["total_tokens"] > 0  # stream_usage=True：流式也有用量


def test_ainvoke_offline():
    reply = asyncio.run(get_chat_model().ainvoke([SystemMessage("你是助教"), HumanMessage(QUESTION)]))
    assert "LangChain" in reply.content


def test_usage_tracker_counts_tokens_and_cost():
    chat = get_chat_model()
    tracker = UsageTracker(provider="deepseek")  # 用 DeepSeek 的价格估算离线调用的 token
    replies = [chat.invoke(QUESTION, config={"callbacks": [tracker]}) for _ in range(2)]
    assert len(tracker.calls) == 2
    want_in = sum(r.usage_metadata["input_tokens"] for r in replies)
    want_out = sum(r.usage_metadata["output_tokens"] for r in replies)
    assert (tracker.prompt_tokens, tracker.completion_tokens) == (want_in, want_out)
    assert tracker.total_cost == pytest.approx(estimate_cost("deepseek", want_in, want_out))
    assert tracker.calls[0].model == offline.CHAT_MODEL
    assert tracker.summary().startswith(f"共 2 次调用，输入 {want_in} tokens")
    assert tracker.summary().endswith("CNY")


def test_usage_tracker_counts_streaming():
    tracker = UsageTracker()
    list(get_chat_model().stream(QUESTION, config={"callbacks": [tracker]}))
    assert len(tracker.calls) == 1 and tracker.completion_tokens > 0
    assert tracker.total_cost == 0.0  # 离线模型免费


def test_disk_cache_serves_second_call(tmp_path):
    path = tmp_path / "cache" / "llm.sqlite3"
    chat, sent = counted_model(cache=enable_cache(path))
    first = chat.invoke(QUESTION)
    second = chat.invoke(QUESTION)
    assert sent == ["/v1/chat/completions"]  # 第二次没有发请求
    assert second.content == first.content
    assert path.is_file()
    # 新进程（新模型、新缓存对象）读同一个文件，也不必再发请求
    chat2, sent2 = counted_model(cache=enable_cache(path))
    assert chat2.invoke(QUESTION).content == first.content
    assert sent2 == []
    chat2.invoke(QUESTION + "？")  # 不同的问题照常请求
    assert sent2 == ["/v1/chat/completions"]


def test_cache_hit_costs_nothing(tmp_path):
    chat = get_chat_model(cache=enable_cache(tmp_path / "llm.sqlite3"))
    tracker = UsageTracker(provider="deepseek")
    for _ in range(2):
        chat.invoke(QUESTION, config={"callbacks": [tracker]})
    first, second = tracker.calls
    assert first.cost > 0
    assert second.cost == 0.0  # 缓存命中：没有发请求，也就不花钱
    assert tracker.total_cost == first.cost


def test_cache_switch_from_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(llm, "CACHE_DIR", tmp_path)
    monkeypatch.setenv("LLM_CACHE", "true")
    chat, sent = counted_model()
    chat.invoke(QUESTION)
    chat.invoke(QUESTION)
    assert len(sent) == 1
    assert (tmp_path / "llm_cache.sqlite3").is_file()


def test_no_cache_by_default():
    chat, sent = counted_model()
    chat.invoke(QUESTION)
    chat.invoke(QUESTION)
    assert len(sent) == 2


def test_missing_key_raises_config_error():
    with pytest.raises(ConfigError, match="未找到 DEEPSEEK_API_KEY"):
        get_chat_model("deepseek")
    with pytest.raises(ConfigError, match="ZHIPUAI_API_KEY"):
        llm.get_openai_client("zhipuai")


def test_default_model_follows_settings():
    s = load_settings(llm_provider="deepseek", llm_model="deepseek-v4-pro")
    assert llm.default_model(settings=s) == "deepseek-v4-pro"
    assert llm.default_model("zhipuai", settings=s) == "glm-4-flash-250414"  # 别的提供方不受影响


def test_offline_embeddings_match_server():
    emb = llm.get_embeddings()
    vec = emb.embed_query("向量数据库")
    assert len(vec) == offline.DIM
    assert emb.embed_documents(["向量数据库"])[0] == pytest.approx(vec)


def test_one_usage_extractor_feeds_both_callbacks():
    import uuid

    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    from helpers.callbacks import StepLogger, llm_usage

    usage = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
    msg = AIMessage("好", usage_metadata=usage, response_metadata={"model_name": "m-1"})
    cached = AIMessage("好", usage_metadata={**usage, "total_cost": 0}, response_metadata={})
    result = LLMResult(generations=[[ChatGeneration(message=msg)], [ChatGeneration(message=cached)]])
    assert [(u.model, u.input_tokens, u.output_tokens, u.total_cost) for u in llm_usage(result)] == [
        ("m-1", 12, 5, None), ("?", 12, 5, 0.0)]

    tracker, logger = UsageTracker(provider="deepseek"), StepLogger(provider="deepseek", echo=False)
    for cb in (tracker, logger):
        run = uuid.uuid4()
        cb.on_chat_model_start({}, [], run_id=run)
        cb.on_llm_end(result, run_id=run)
    assert tracker.prompt_tokens == logger.prompt_tokens == 24
    assert [c.cost for c in tracker.calls] == [estimate_cost("deepseek", 12, 5), 0.0]  # 缓存命中不计费
    [step] = logger.steps
    assert (step.input_tokens, step.output_tokens) == (24, 10)
    assert step.cost == estimate_cost("deepseek", 24, 10)


def _deepseek_thinking_server(seen: list[dict]):
    """按 DeepSeek 思考模式文档回应的模拟接口：调用过工具的助手消息没带 reasoning_content 就 400（第 8 章）。"""
    import json

    import httpx

    def reply(message: dict, finish: str) -> dict:
        return {"id": "sim", "object": "chat.completion", "created": 0, "model": "deepseek-v4-pro",
                "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        for m in body["messages"]:
            if m["role"] == "assistant" and m.get("tool_calls") and "reasoning_content" not in m:
                return httpx.Response(400, json={"error": {
                    "message": "The reasoning_content in the thinking mode must be passed back to the API.",
                    "type": "invalid_request_error", "code": "invalid_request_error"}})
        if body["messages"][-1]["role"] == "tool":
            answer = {"reasoning_content": "工具给了日期。", "content": "今天是 12 月 1 日。"}
            return httpx.Response(200, json=reply(answer, "stop"))
        return httpx.Response(200, json=reply({"reasoning_content": "先查日期。", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "today", "arguments": "{}"}}]}, "tool_calls"))

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_deepseek_keeps_reasoning_and_passes_it_back_after_tool_calls():
    from langchain_core.tools import tool

    @tool
    def today() -> str:
        """查询今天的日期。"""
        return "2026-12-01"

    seen: list[dict] = []
    settings = load_settings(llm_provider="deepseek", api_keys={"deepseek": "sk-test-1234567890"})
    chat = get_chat_model(settings=settings, http_client=_deepseek_thinking_server(seen), max_retries=0)
    assert isinstance(chat, llm.ReasoningChatDeepSeek)
    bound = chat.bind_tools([today])
    messages = [HumanMessage("今天几号？")]
    first = bound.invoke(messages)
    assert first.additional_kwargs["reasoning_content"] == "先查日期。"  # ChatOpenAI 会丢掉它
    messages += [first, today.invoke(first.tool_calls[0])]
    final = bound.invoke(messages)  # 不回传思考过程的客户端在这里收到 400
    assert final.content == "今天是 12 月 1 日。"
    assert [m.get("reasoning_content") for m in seen[-1]["messages"] if m["role"] == "assistant"] == ["先查日期。"]
    assert [b["type"] for b in final.content_blocks] == ["reasoning", "text"]
