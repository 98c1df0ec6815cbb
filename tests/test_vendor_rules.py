"""每个提供方的请求都守它文档写明的规则（helpers/providers.py 的 Rules）：温度、max_tokens、嵌入格式与批量、流式用量。

请求经 httpx.MockTransport 截下来检查，不联网；假厂商只回 OpenAI 格式，用量放在该厂商文档写的位置。
"""

from __future__ import annotations

import base64
import functools
import json
import struct
import warnings

import httpx
import pytest

from helpers import llm
from helpers.callbacks import UsageTracker
from helpers.config import ConfigError, load_settings
from helpers.providers import PROVIDERS

KEY = "sk-vendor-rules-test-0000"
REAL = [n for n in PROVIDERS if n != "offline"]
WITH_EMBEDDINGS = [n for n in REAL if PROVIDERS[n].embedding_model]
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def settings(**overrides):
    return load_settings(api_keys={n: KEY for n in REAL}, **overrides)


class Vendor:
    """假厂商：记下请求体；流式时按 usage_where 放用量（top：顶层；choice：choices[0].usage，Moonshot）。"""

    def __init__(self, *, usage_where: str = "top", float_only: bool = False, max_batch: int = 0,
                 reasoning: str = "") -> None:
        self.usage_where, self.float_only, self.max_batch = usage_where, float_only, max_batch
        self.reasoning = reasoning
        self.bodies: list[dict] = []

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if request.url.path.endswith("/embeddings"):
            return self.embeddings(body)
        return self.stream(body) if body.get("stream") else self.chat(body)

    def chat(self, body: dict) -> httpx.Response:
        message = {"role": "assistant", "content": "好的"}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        return httpx.Response(200, json={
            "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}], "usage": USAGE})

    def stream(self, body: dict) -> httpx.Response:
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        deltas = ([{"role": "assistant", "content": "", "reasoning_content": self.reasoning}] if self.reasoning else [])
        deltas += [{"role": "assistant", "content": "好"}, {"content": "的"}]
        chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        if self.usage_where == "choice":  # Moonshot：用量在最后一块的 choices[0].usage（earendil-works/pi#2017）
            last["choices"][0]["usage"] = USAGE
            chunks.append(last)
        else:  # OpenAI 约定：stream_options.include_usage 时另有一块 choices 为空、带顶层 usage
            chunks += [last, {**base, "choices": [], "usage": USAGE}]
        text = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    def embeddings(self, body: dict) -> httpx.Response:
        texts = body["input"]
        if self.float_only and body.get("encoding_format") != "float":  # 千帆 v2：encoding_format 当前只支持float
            return httpx.Response(400, json={"error": {"code": "invalid_argument",
                                                       "message": "encoding_format 当前只支持float"}})
        if self.max_batch and len(texts) > self.max_batch:
            return httpx.Response(400, json={"error": {"message": f"batch size > {self.max_batch}"}})
        vectors = [[float(len(t)), 0.5, 0.25] for t in texts]
        as_b64 = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(struct.pack("<3f", *v)).decode() if as_b64 else v}
                for i, v in enumerate(vectors)]
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                         "usage": {"prompt_tokens": 3, "total_tokens": 3}})


def vendor_for(name: str, **extra) -> Vendor:
    rules = PROVIDERS[name].rules
    return Vendor(usage_where=rules.stream_usage, float_only=rules.embed_encoding == "float",
                  max_batch=rules.embed_batch, **extra)


def chat_for(name: str, vendor: Vendor, **kwargs):
    return llm.get_chat_model(name, settings=kwargs.pop("settings", None) or settings(), http_client=vendor.client(),
                              max_retries=0, **kwargs)


def in_range(name: str, model: str, temperature: float) -> bool:
    rules = PROVIDERS[name].rules
    low_ok = temperature > rules.temperature_min if rules.temperature_min_exclusive else (
        temperature >= rules.temperature_min)
    return low_ok and temperature <= rules.temperature_max


@pytest.mark.parametrize("name", REAL)
def test_chat_request_obeys_the_row_rules(name):
    """课程默认的 temperature=0 发出去时落在厂商允许的范围内；max_tokens 用厂商认的字段名。"""
    spec, vendor = PROVIDERS[name], vendor_for(name)
    reply = chat_for(name, vendor, max_tokens=16).invoke("你好")
    assert reply.content == "好的" and reply.usage_metadata["total_tokens"] == 13
    [body] = vendor.bodies
    assert body["model"] == spec.chat_model
    assert in_range(name, spec.chat_model, body["temperature"]), body["temperature"]
    wanted, other = spec.rules.max_tokens_param, {"max_tokens", "max_completion_tokens"} - {spec.rules.max_tokens_param}
    assert body[wanted] == 16 and not other & set(body)


@pytest.mark.parametrize("name", REAL)
def test_streaming_usage_reaches_the_tracker(name):
    """流式回答的用量（Moonshot 放在 choices[0].usage）进 usage_metadata，UsageTracker 不再记 0。"""
    vendor, tracker = vendor_for(name), UsageTracker(provider=name)
    chunks = list(chat_for(name, vendor).stream("你好", config={"callbacks": [tracker]}))
    joined = functools.reduce(lambda a, b: a + b, chunks)
    assert joined.content == "好的"
    assert joined.usage_metadata["total_tokens"] == 13
    assert (tracker.prompt_tokens, tracker.completion_tokens) == (9, 4)
    assert vendor.bodies[0]["stream_options"] == {"include_usage": True}


def test_moonshot_usage_in_choice_was_lost_before():
    """对照：不按规则读时（ChatOpenAI 原样），Moonshot 的流式用量是空的。"""
    vendor = Vendor(usage_where="choice")
    chat = llm.langchain_openai.ChatOpenAI(model="kimi-k2.6", api_key=KEY, base_url=PROVIDERS["moonshot"].base_url,
                                           http_client=vendor.client(), stream_usage=True, temperature=1)
    joined = functools.reduce(lambda a, b: a + b, chat.stream("你好"))
    assert not joined.usage_metadata


@pytest.mark.parametrize("name", WITH_EMBEDDINGS)
def test_embedding_requests_obey_batch_size_and_encoding(name, monkeypatch):
    """嵌入按厂商写明的批量切开；只收 float 的厂商（千帆 v2）收到 encoding_format=float；向量原样解出。"""
    rules, vendor = PROVIDERS[name].rules, vendor_for(name)
    monkeypatch.setattr(llm, "OpenAIEmbeddings", functools.partial(llm.OpenAIEmbeddings, http_client=vendor.client()))
    texts = [f"第{i}段" + "字" * (i % 5) for i in range(25)]
    vectors = llm.get_embeddings(name, settings=settings()).embed_documents(texts)
    assert [v[0] for v in vectors] == pytest.approx([float(len(t)) for t in texts])
    assert all(len(b["input"]) <= rules.embed_batch for b in vendor.bodies)
    assert sum(len(b["input"]) for b in vendor.bodies) == 25
    expected = "float" if rules.embed_encoding == "float" else "base64"
    assert {b["encoding_format"] for b in vendor.bodies} == {expected}


def test_qianfan_text_over_the_per_text_limit_is_one_chinese_line(monkeypatch):
    vendor = vendor_for("qianfan")
    monkeypatch.setattr(llm, "OpenAIEmbeddings", functools.partial(llm.OpenAIEmbeddings, http_client=vendor.client()))
    with pytest.raises(ConfigError, match="每段最多 1000 个字符：第 2 段有 1200 个字"):
        llm.get_embeddings("qianfan", settings=settings()).embed_documents(["短", "长" * 1200])
    assert vendor.bodies == []  # 没有发出注定 400 的请求


@pytest.mark.parametrize(("name", "model", "sent"), [
    ("moonshot", "kimi-k2.6", {"temperature": 1.0}),
    ("moonshot", "kimi-k3", {"temperature": 1.0}),
    ("moonshot", "moonshot-v1-32k", {"temperature": 0.0}),
    ("openai", "o3", {"temperature": 1.0}),
    ("openai", "gpt-6-luna", {"temperature": 0.0, "reasoning_effort": "none"}),
    ("zhipuai", "glm-4-flash-250414", {"temperature": 0.01}),
    ("deepseek", "deepseek-flash", {"temperature": 0.0}),
])
def test_fixed_and_clamped_temperatures(name, model, sent):
    vendor = vendor_for(name)
    chat_for(name, vendor, model=model).invoke("你好")
    body = vendor.bodies[0]
    assert {k: body.get(k) for k in sent} == sent
    if "reasoning_effort" not in sent:
        assert "reasoning_effort" not in body


def test_user_temperature_outside_the_range_is_clamped_and_said_once(monkeypatch):
    monkeypatch.setattr(llm, "_WARNED", set())
    s = settings(temperature=1.5)
    vendor = vendor_for("zhipuai")
    with pytest.warns(UserWarning, match=r"temperature=1\.5 超出厂商允许的范围 \(0, 0\.99\]，已改为 0\.99"):
        chat_for("zhipuai", vendor, settings=s).invoke("你好")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 第二次不再提醒
        chat_for("zhipuai", vendor, settings=s).invoke("你好")
    assert [b["temperature"] for b in vendor.bodies] == [0.99, 0.99]


def test_offline_row_sends_what_it_always_sent():
    """离线模型不受厂商规则影响：温度照发 0，没有 reasoning_effort；回答与用量照常。"""
    client = llm.offline.http_client()
    bodies: list[dict] = []
    client.event_hooks["request"].append(lambda r: bodies.append(json.loads(r.content)))
    chat = llm.get_chat_model(http_client=client)
    assert type(chat) is llm.ChatOpenAI and chat.temperature == 0.0
    assert chat.max_tokens_field == "max_completion_tokens" and not chat.usage_in_choice and not chat.reasoning_field
    chat.invoke("LangChain 是什么？")
    assert bodies[0]["temperature"] == 0.0 and "reasoning_effort" not in bodies[0]


# DashScope 思考模式的回答形状（help.aliyun.com/en/model-studio/deep-thinking，2026-12-01 核对）：非流式在
# choices[0].message.reasoning_content，流式先来 delta.reasoning_content 再来 delta.content，最后一块带 usage
THINKING = "先想一想：用户在打招呼。"


def test_qwen_thinking_output_is_kept_when_invoked():
    vendor = vendor_for("dashscope", reasoning=THINKING)
    reply = chat_for("dashscope", vendor).invoke("你好")
    assert reply.content == "好的"
    assert reply.additional_kwargs["reasoning_content"] == THINKING  # ChatOpenAI 原样会丢掉它


def test_qwen_thinking_output_is_kept_when_streamed():
    vendor = vendor_for("dashscope", reasoning=THINKING)
    joined = functools.reduce(lambda a, b: a + b, chat_for("dashscope", vendor).stream("你好"))
    assert joined.content == "好的"
    assert joined.additional_kwargs["reasoning_content"] == THINKING
    assert joined.usage_metadata["total_tokens"] == 13


def test_every_rule_group_names_its_source_and_date():
    for name, p in PROVIDERS.items():
        if name == "offline":
            continue
        r = p.rules
        for field in ("temperature_source", "stream_usage_source", "capabilities_source", "max_tokens_source"):
            assert "2026-12-01" in getattr(r, field), (name, field)
        if p.embedding_model:
            assert "2026-12-01" in r.embed_source and r.embed_batch > 0, name
        if r.reasoning_field:
            assert "2026-12-01" in r.reasoning_source, name
        assert "2026-12-01" in p.models_source, name
