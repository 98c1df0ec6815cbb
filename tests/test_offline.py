"""helpers.offline：离线 OpenAI 兼容服务——SDK 调用、本机服务、故障模拟与抽取式回答。"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import numpy as np
import openai
import pytest
from zhipuai import ZhipuAI

from helpers import offline
from helpers.config import PROJECT_ROOT
from helpers.llm import get_openai_client
from helpers.offline.app import get_app
from helpers.offline.engine import NOT_FOUND, SELF_INTRO
from tests.support.servers import free_port, serve_in_thread, stop_process, wait_until_up

MODEL = offline.CHAT_MODEL
CONTEXT = (
    "<context>\n"
    "[1] Chroma 是一个开源的向量数据库，可以嵌入式运行，也可以作为服务器运行。\n"
    "[2] 温度（temperature）控制生成的随机性，温度为 0 时输出最确定。\n"
    "[3] 通义千问由阿里云推出，可以通过 DashScope 调用。\n"
    "</context>\n"
)


def ask(question: str, context: str = CONTEXT) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{context}问题：{question}"}]


def fault(spec: str) -> dict[str, str]:
    return {"X-Offline-Fault": spec}


@pytest.fixture
def client() -> openai.OpenAI:
    return get_openai_client(max_retries=0)


@pytest.fixture(scope="module")
def live_server():
    """在后台线程里用 uvicorn 真正监听 127.0.0.1 的一个空闲端口，产出 OpenAI 兼容的 /v1 地址。"""
    with serve_in_thread(get_app(), timeout=20, ready="/v1/models") as base:
        yield base + "/v1"


# ---- 通过 OpenAI SDK ----

def test_chat_completion(client):
    resp = client.chat.completions.create(model=MODEL, messages=ask("Chroma 是什么？"))
    msg = resp.choices[0].message
    assert resp.model == MODEL
    assert msg.role == "assistant"
    assert "Chroma 是一个开源的向量数据库" in msg.content
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0


def test_streaming_with_usage(client):
    full = client.chat.completions.create(model=MODEL, messages=ask("Chroma 是什么？"))
    stream = client.chat.completions.create(
        model=MODEL, messages=ask("Chroma 是什么？"), stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert text == full.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == full.usage.total_tokens


def test_embeddings_base64_default_and_float(client):
    seen = []
    client._client.event_hooks["request"].append(lambda r: seen.append(json.loads(r.content)))
    texts = ["向量数据库", "温度参数"]
    default = client.embeddings.create(model=offline.EMBEDDING_MODEL, input=texts)
    as_float = client.embeddings.create(model=offline.EMBEDDING_MODEL, input=texts,
                                        encoding_format="float")
    assert seen[0]["encoding_format"] == "base64"  # SDK 默认要 base64，再自己解码
    assert seen[1]["encoding_format"] == "float"
    expected = offline.embed_texts(texts)
    for resp in (default, as_float):
        got = np.array([d.embedding for d in resp.data])
        assert got.shape == (2, offline.DIM)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert default.usage.prompt_tokens > 0


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert ids == [offline.CHAT_MODEL, offline.EMBEDDING_MODEL]


# ---- 真正监听端口：zhipuai SDK 与命令行 ----

@pytest.mark.slow  # 真正监听本机端口
def test_zhipuai_sdk_against_local_server(live_server):
    # ZhipuAI 接受 http_client，但它要的是 httpx 客户端，进程内的 TestClient 属于 httpx2，
    # 所以这里让它走真实的本机端口
    zhipu = ZhipuAI(api_key="offline.dummy-key", base_url=live_server, max_retries=0)
    resp = zhipu.chat.completions.create(model="glm-4-flash", messages=ask("通义千问是谁推出的？"))
    assert "阿里云" in resp.choices[0].message.content
    assert resp.usage.total_tokens > 0
    pieces = [c.choices[0].delta.content or "" for c in zhipu.chat.completions.create(
        model="glm-4-flash", messages=ask("通义千问是谁推出的？"), stream=True) if c.choices]
    assert "".join(pieces) == resp.choices[0].message.content
    emb = zhipu.embeddings.create(model="embedding-3", input=["向量数据库"])
    np.testing.assert_allclose(emb.data[0].embedding, offline.embed_text("向量数据库"), atol=1e-6)


@pytest.mark.slow  # 子进程里运行 python -m helpers.offline serve
def test_serve_command_answers_models():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.offline", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/v1/models"
    try:
        try:
            wait_until_up(url, 60, alive=lambda: proc.poll() is None)
        except RuntimeError:
            pytest.fail(f"离线服务没能启动：{proc.stdout.read()}")
        r = httpx.get(url, timeout=5)
        assert r.status_code == 200
        assert offline.CHAT_MODEL in [m["id"] for m in r.json()["data"]]
    finally:
        stop_process(proc, timeout=10)
        proc.stdout.close()


# ---- 故障模拟 ----

def test_fault_401(client):
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_headers=fault("401"))
    assert err.value.status_code == 401
    assert "密钥无效" in err.value.message


def test_fault_429(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_headers=fault("429"))


def test_fault_429_then_success_after_retries():
    client = get_openai_client(max_retries=2)
    tag = f"429*2#{uuid.uuid4().hex}"
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("Chroma 是什么？"), extra_headers=fault(tag)
    )
    assert raw.retries_taken == 2
    assert "Chroma" in raw.parse().choices[0].message.content


def test_fault_429_exhausts_too_few_retries():
    client = get_openai_client(max_retries=1)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model=MODEL, messages=ask("hi"), extra_headers=fault(f"429*2#{uuid.uuid4().hex}")
        )


def test_fault_timeout_is_quick(client):
    start = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(
            model=MODEL, messages=ask("hi"), extra_headers=fault("timeout")
        )
    assert time.perf_counter() - start < 2.5


def test_fault_500(client):
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_headers=fault("500"))
    assert err.value.status_code == 500


def test_unknown_fault_is_400(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_headers=fault("oops"))


# ---- 离线模型的行为 ----

def test_deterministic(client):
    answers = {client.chat.completions.create(model=MODEL, messages=ask("温度是什么？"))
               .choices[0].message.content for _ in range(2)}
    assert len(answers) == 1


def test_extractive_answer_with_source_tag(client):
    text = client.chat.completions.create(model=MODEL, messages=ask("温度参数有什么作用？")) \
        .choices[0].message.content
    assert "温度（temperature）控制生成的随机性" in text
    assert "[2]" in text
    assert "[1]" not in text


def test_unrelated_question_refuses(client):
    text = client.chat.completions.create(model=MODEL, messages=ask("明天北京的天气如何？")) \
        .choices[0].message.content
    assert text == NOT_FOUND
    assert "不知道" in text


def test_no_context_introduces_itself(client):
    text = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "你好，你是谁？"}]
    ).choices[0].message.content
    assert text.startswith(SELF_INTRO)
    assert "离线" in text


def test_temperature_with_seed_is_reproducible(client):
    def sample(seed):
        return client.chat.completions.create(
            model=MODEL, messages=ask("Chroma、温度和通义千问分别是什么？"), temperature=1.0, seed=seed
        ).choices[0].message.content

    assert sample(7) == sample(7)


def test_max_tokens_truncates(client):
    resp = client.chat.completions.create(model=MODEL, messages=ask("Chroma 是什么？"), max_tokens=5)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.completion_tokens <= 5


def test_tool_call(client):
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather", "description": "查询某个城市的天气",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]},
        },
    }, {
        "type": "function",
        "function": {
            "name": "add", "description": "计算两个数的和",
            "parameters": {"type": "object", "properties": {
                "a": {"type": "number"}, "b": {"type": "number"}}},
        },
    }]
    resp = client.chat.completions.create(
        model=MODEL, tools=tools, messages=[{"role": "user", "content": "请计算 3 加 4.5 的和"}]
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "add"
    assert json.loads(call.function.arguments) == {"a": 3.0, "b": 4.5}
