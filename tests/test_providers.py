"""helpers.providers：每个提供方都能构造客户端，请求发往表中的地址（不联网）。"""

from __future__ import annotations

import json

import httpx
import pytest
from langchain_openai import ChatOpenAI

from helpers.config import load_settings
from helpers.llm import ReasoningChatDeepSeek, get_chat_model, get_openai_client
from helpers.providers import PROVIDERS, estimate_cost, get_provider, resolve_provider_name

DUMMY_KEY = "sk-dummy-test-key-0000"
REAL = [name for name in PROVIDERS if name != "offline"]


def recorded_reply(request: httpx.Request) -> httpx.Response:
    """一条"录好的" OpenAI 格式回答。"""
    body = json.loads(request.content)
    return httpx.Response(200, json={
        "id": "chatcmpl-recorded", "object": "chat.completion", "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "录制的回答"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    })


class Recorder:
    """记录发出的请求，并回放录好的回答。"""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def client(self) -> httpx.Client:
        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return recorded_reply(request)

        return httpx.Client(transport=httpx.MockTransport(handler))


def settings_with_keys(**env_overrides):
    keys = {name: DUMMY_KEY for name in REAL}
    return load_settings(api_keys=keys, **env_overrides)


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_every_provider_builds_without_network(name):
    settings = settings_with_keys()
    chat = get_chat_model(name, settings=settings)
    client = get_openai_client(name, settings=settings)
    spec = PROVIDERS[name]
    # DeepSeek 用它的官方集成（保留思考过程），其余都是 ChatOpenAI；两者都是 langchain-openai 的 BaseChatOpenAI
    assert isinstance(chat, ReasoningChatDeepSeek if name == "deepseek" else ChatOpenAI)
    assert chat.model_name == spec.chat_model
    # 课程默认的 temperature=0 按该提供方的规则改写（智谱 0.01、Kimi 1……），都在厂商允许的范围内
    assert chat.temperature == spec.rules.temperature_for(spec.chat_model, 0.0)[0]["temperature"]
    assert str(client.base_url).rstrip("/") == spec.base_url
    assert chat.metadata["provider"] == name


@pytest.mark.parametrize("name", REAL)
def test_requests_reach_configured_url(name):
    """openai SDK 与 LangChain 两条路径都发往表中的地址，带上 Bearer 密钥与默认模型名。"""
    spec = PROVIDERS[name]
    rec = Recorder()
    client = get_openai_client(name, settings=settings_with_keys(), http_client=rec.client(),
                               max_retries=0)
    resp = client.chat.completions.create(
        model=spec.chat_model, messages=[{"role": "user", "content": "你好"}]
    )
    chat = get_chat_model(name, settings=settings_with_keys(), http_client=rec.client(),
                          max_retries=0)
    reply = chat.invoke("你好")
    assert resp.choices[0].message.content == reply.content == "录制的回答"
    assert reply.usage_metadata["total_tokens"] == 8
    assert len(rec.requests) == 2
    for req in rec.requests:
        assert req.method == "POST"
        assert str(req.url) == spec.base_url + "/chat/completions"
        assert req.headers["Authorization"] == f"Bearer {DUMMY_KEY}"
        assert json.loads(req.content)["model"] == spec.chat_model


def test_local_providers_need_no_key():
    rec = Recorder()
    client = get_openai_client("ollama", settings=load_settings(), http_client=rec.client())
    client.chat.completions.create(model="qwen3:8b", messages=[{"role": "user", "content": "hi"}])
    assert rec.requests[0].headers["Authorization"] == "Bearer not-needed"


def test_base_url_override_is_honoured(monkeypatch):
    monkeypatch.setenv("ZHIPUAI_BASE_URL", "http://127.0.0.1:9/proxy/v4/")
    monkeypatch.setenv("ZHIPUAI_API_KEY", DUMMY_KEY)
    rec = Recorder()
    chat = get_chat_model("zhipuai", http_client=rec.client(), max_retries=0)
    chat.invoke("你好")
    assert str(rec.requests[0].url) == "http://127.0.0.1:9/proxy/v4/chat/completions"


def test_model_override_from_env(monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "deepseek")
    monkeypatch.setenv("LLM_MODEL", "deepseek-v4-pro")
    monkeypatch.setenv("DEEPSEEK_API_KEY", DUMMY_KEY)
    rec = Recorder()
    get_chat_model(http_client=rec.client()).invoke("你好")
    assert json.loads(rec.requests[0].content)["model"] == "deepseek-v4-pro"


def test_aliases():
    assert resolve_provider_name("GLM") == "zhipuai"
    assert resolve_provider_name("文心") == "qianfan"
    assert resolve_provider_name("星火") == "spark"
    assert resolve_provider_name("通义") == "dashscope"
    assert resolve_provider_name("kimi") == "moonshot"
    assert get_provider("local").name == "ollama"


def test_env_prefix_and_needs_key():
    assert PROVIDERS["zhipuai"].env_prefix == "ZHIPUAI"
    assert PROVIDERS["offline"].env_prefix == "OFFLINE"
    assert not PROVIDERS["offline"].needs_key
    assert not PROVIDERS["ollama"].needs_key
    assert PROVIDERS["deepseek"].needs_key


def test_estimate_cost():
    assert estimate_cost("offline", 10_000, 10_000) == 0.0
    # deepseek-flash 高峰时段 2/8 元（api-docs.deepseek.com/zh-cn/quick_start/pricing，2026-12-01 核对）
    assert estimate_cost("deepseek", 1_000_000, 0) == pytest.approx(2.0)
    assert estimate_cost("deepseek", 0, 1_000_000) == pytest.approx(8.0)
    # gpt-6-luna 0.10/0.50 美元（developers.openai.com/api/docs/models/gpt-6-luna，2026-12-01 核对）
    assert estimate_cost("openai", 1000, 500) == pytest.approx((1000 * 0.10 + 500 * 0.50) / 1e6)
    assert estimate_cost("kimi", 1000, 1000) == estimate_cost("moonshot", 1000, 1000)


def test_retired_defaults_are_gone():
    """2026 年已下线或宣布下线的默认模型不再是任何一行的默认（出处见 providers.py 的 models_source）。"""
    retired = {"moonshot-v1-8k", "deepseek-chat", "deepseek-reasoner", "glm-4-flash", "gpt-4o-mini", "glm-4.5-flash"}
    assert not retired & {p.chat_model for p in PROVIDERS.values()}


def test_vllm_port_does_not_collide_with_chroma():
    """vllm serve 与 chroma run 默认都用 8000：课程的 vLLM 行用 8001（docs.trychroma.com/docs/cli/run）。"""
    from helpers.config import Settings

    assert PROVIDERS["vllm"].base_url == "http://localhost:8001/v1"
    assert f":{Settings().chroma_port}/" not in PROVIDERS["vllm"].base_url
    assert "--port 8001" in PROVIDERS["vllm"].note


def test_regional_providers_list_their_default_region_first_with_a_source():
    """分地域的提供方（DashScope、Moonshot、智谱）：地域表的第一个就是默认 base_url，每个都有出处与核对日期。"""
    regional = {name: p for name, p in PROVIDERS.items() if p.regions}
    assert set(regional) == {"dashscope", "moonshot", "zhipuai"}
    for p in regional.values():
        assert p.regions[0][1] == p.base_url and len(p.regions) >= 2
        assert "2026-" in p.regions_source
