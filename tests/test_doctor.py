"""helpers.doctor：离线时退出码为 0，密钥从不出现；提供方不能用时每种厂商报错是一句带修法的中文、退出码 1。"""

from __future__ import annotations

import functools
import json

import httpx
import pytest

from helpers import doctor, llm
from helpers.config import load_settings

FAKE_KEY = "fake-zhipu-id.s3cr3t-value-for-doctor"


def test_doctor_offline_exit_zero_and_key_hidden(monkeypatch, capsys):
    monkeypatch.setenv("ZHIPUAI_API_KEY", FAKE_KEY)
    assert doctor.main() == 0
    out = capsys.readouterr().out
    assert FAKE_KEY not in out
    assert "s3cr3t" not in out
    assert "ZHIPUAI_API_KEY=fake…" in out  # 只露出前 4 位
    assert "✓ 模型调用（offline）" in out
    assert "结论：离线课程可以运行" in out
    assert "✗" not in out


def test_run_checks_are_structured():
    checks = doctor.run_checks()
    names = [c.name for c in checks]
    for expected in ("Python 版本", "依赖 langchain", ".env 文件", "当前模型", "SQLite 版本",
                     "中文字体", "可写目录"):
        assert expected in names
    assert all(isinstance(c.detail, str) and c.detail for c in checks)


def test_version_checks():
    assert doctor.check_python((3, 11, 7)).ok
    old = doctor.check_python((3, 9, 18))
    assert not old.ok and old.required and old.symbol == "✗"
    assert doctor.check_sqlite("3.35.0").ok
    assert not doctor.check_sqlite("3.31.1").ok


def test_lock_mismatch_is_a_warning(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "openai"\nversion = "0.0.1"\n', encoding="utf-8")
    [check] = doctor.check_packages(("openai",), lock_file=lock)
    assert not check.ok and not check.required and check.symbol == "!"
    assert "uv.lock 锁定 0.0.1" in check.detail
    [missing] = doctor.check_packages(("no-such-package-xyz",), lock_file=lock)
    assert not missing.ok and missing.required


def test_real_provider_failure_is_one_chinese_line_and_fatal():
    # 测试中外网被禁止：连接失败是一句中文，不是回溯；设置的提供方不能用，所以是 ✗（退出码 1）
    settings = load_settings(llm_provider="deepseek", api_keys={"deepseek": FAKE_KEY})
    check = doctor.check_model_call(settings)
    assert not check.ok and check.required and check.provider == "deepseek"
    assert check.detail == "连接失败：请检查网络、代理或 base_url 是否正确"
    assert FAKE_KEY not in check.line()
    assert doctor.report([check]).splitlines()[-1] == (
        "结论：有 1 项必须修复（✗）：deepseek 现在不能为课程服务，按上面的说明改 .env；"
        "离线课程不受影响（LLM_PROVIDER=offline）")


def test_missing_key_is_reported():
    check = doctor.check_model_call(load_settings(llm_provider="zhipuai"))
    assert not check.ok and "未找到 ZHIPUAI_API_KEY" in check.detail


def test_bad_setting_fails(monkeypatch):
    monkeypatch.setenv("LLM_TIMEOUT", "abc")
    checks = doctor.run_checks()
    bad = [c for c in checks if c.name == "读取设置"]
    assert bad and bad[0].symbol == "✗"
    assert "结论：有 1 项必须修复" in doctor.report(checks)



# ---- 厂商报错 → 一句中文（请求经 httpx.MockTransport 回放厂商文档里的错误体，不联网） ----

OK_CHAT = {"id": "c1", "object": "chat.completion", "created": 0, "model": "vendor-model",
           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "好"}}],
           "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}


def sse(chunks: list[dict]) -> httpx.Response:
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


def stream_chunks(usage_where: str = "top") -> list[dict]:
    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "vendor-model"}
    first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "好"}, "finish_reason": None}]}
    last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if usage_where == "choice":  # Moonshot：用量在 choices[0].usage（earendil-works/pi#2017）
        last["choices"][0]["usage"] = usage
        return [first, last]
    if usage_where == "none":  # 不带用量的服务（例如 v0.5.2 之前的 Ollama）
        return [first, last]
    return [first, last, {**base, "choices": [], "usage": usage}]


class Vendor:
    """一个假厂商：chat/stream/embeddings 正常回答，或按 fail 返回文档里的错误；记下收到的请求体。"""

    def __init__(self, status: int = 200, body: object = None, *, on: str = "all", usage_where: str = "top",
                 raise_exc: type[Exception] | None = None, calls_tools: bool = True) -> None:
        self.status, self.body, self.on, self.usage_where, self.raise_exc = status, body, on, usage_where, raise_exc
        self.calls_tools = calls_tools
        self.bodies: list[dict] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.bodies.append(body)
        path = "embeddings" if request.url.path.endswith("/embeddings") else ("tools" if "tools" in body else "chat")
        if self.raise_exc is not None:
            raise self.raise_exc("模拟", request=request)
        if self.status != 200 and self.on in {"all", path}:
            if isinstance(self.body, str):
                return httpx.Response(self.status, text=self.body)
            return httpx.Response(self.status, json=self.body)
        if path == "embeddings":
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                    for i, _ in enumerate(body["input"])]
            return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                             "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        if path == "tools" and self.calls_tools:
            call = {"id": "call_1", "type": "function", "function": {"name": "multiply", "arguments": '{"a":6,"b":7}'}}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return httpx.Response(200, json={**OK_CHAT, "choices": [
                {"index": 0, "finish_reason": "tool_calls", "message": message}]})
        return sse(stream_chunks(self.usage_where)) if body.get("stream") else httpx.Response(200, json=OK_CHAT)


@pytest.fixture
def vendor(monkeypatch):
    """把课程的聊天模型类与 OpenAIEmbeddings 接到假厂商上（get_chat_model、get_embeddings 其余不变）。"""
    def install(v: Vendor) -> Vendor:
        client = httpx.Client(transport=httpx.MockTransport(v.handler))
        for chat in ("ChatOpenAI", "ReasoningChatDeepSeek"):
            monkeypatch.setattr(llm, chat, functools.partial(getattr(llm, chat), http_client=client))
        monkeypatch.setattr(llm, "OpenAIEmbeddings", functools.partial(llm.OpenAIEmbeddings, http_client=client))
        return v
    return install


def configure(monkeypatch, provider: str, *, embedding: str = "offline", **env: str) -> None:
    spec = doctor.PROVIDERS[provider]
    monkeypatch.setenv("LLM_PROVIDER", provider)
    monkeypatch.setenv("EMBEDDING_PROVIDER", embedding)
    for name in {provider, embedding} - {"offline"}:
        key_env = doctor.PROVIDERS[name].key_env
        if key_env:
            monkeypatch.setenv(key_env, FAKE_KEY)
    assert spec
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def run(capsys) -> tuple[int, str]:
    code = doctor.main()
    return code, capsys.readouterr().out


def line_of(out: str, name: str) -> str:
    [line] = [ln for ln in out.splitlines() if ln.startswith(("✓ ", "✗ ", "! ")) and ln[2:].startswith(name)]
    return line


# 每一行：提供方、额外的 .env、厂商状态码与错误体（出处见 helpers/errors.py 的注释）、报告里应有的那一行
CASES = [
    pytest.param("deepseek", {}, 401, "Authentication Fails",
                 "✗ 模型调用（deepseek）：密钥无效（401）：请检查 .env 中的 DEEPSEEK_API_KEY"
                 "（申请地址：https://platform.deepseek.com/api_keys）", id="401-deepseek-plain-text"),
    pytest.param("dashscope", {}, 401,
                 {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                            "code": "invalid_api_key"}},
                 "✗ 模型调用（dashscope）：密钥无效或与地域不匹配（401）：请检查 .env 中的 DASHSCOPE_API_KEY"
                 "（申请地址：https://bailian.console.aliyun.com/?apiKey=1）；若密钥属于新加坡，设置 "
                 "DASHSCOPE_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1（北京与新加坡的密钥不通用）",
                 id="401-dashscope-region"),
    pytest.param("moonshot", {}, 401,
                 {"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}},
                 "✗ 模型调用（moonshot）：密钥无效或与地域不匹配（401）：请检查 .env 中的 MOONSHOT_API_KEY"
                 "（申请地址：https://platform.moonshot.cn/console/api-keys）；若密钥属于国际站，设置 "
                 "MOONSHOT_BASE_URL=https://api.moonshot.ai/v1（中国站与国际站的密钥不通用）",
                 id="401-moonshot-region"),
    pytest.param("moonshot", {"MOONSHOT_BASE_URL": "https://api.moonshot.ai/v1"}, 403,
                 {"error": {"message": "permission denied", "type": "permission_denied_error"}},
                 "✗ 模型调用（moonshot）：没有权限（403）：账户可能未开通该模型，或密钥与地域不匹配；"
                 "若密钥属于中国站，设置 MOONSHOT_BASE_URL=https://api.moonshot.cn/v1（中国站与国际站的密钥不通用）",
                 id="403-moonshot-region"),
    pytest.param("moonshot", {"LLM_MODEL": "moonshot-v1-8k"}, 404,
                 {"error": {"message": "Not found the model moonshot-v1-8k or Permission denied",
                            "type": "resource_not_found_error"}},
                 "✗ 模型调用（moonshot）：模型 moonshot-v1-8k 不存在或已下线（404）：在 .env 设置 LLM_MODEL=…"
                 "（换成厂商模型列表里现有的名字）", id="404-moonshot-retired"),
    pytest.param("deepseek", {"LLM_MODEL": "deepseek-reasoner"}, 400, {"message": "Model Not Exist"},
                 "✗ 模型调用（deepseek）：模型 deepseek-reasoner 不存在或已下线（400）：在 .env 设置 LLM_MODEL=…"
                 "（换成厂商模型列表里现有的名字）", id="400-deepseek-model-not-exist"),
    pytest.param("zhipuai", {"LLM_MODEL": "glm-4-flash"}, 400,
                 {"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}},
                 "✗ 模型调用（zhipuai）：模型 glm-4-flash 不存在或已下线（400）：在 .env 设置 LLM_MODEL=…"
                 "（换成厂商模型列表里现有的名字）", id="400-zhipu-1211"),
    pytest.param("moonshot", {"LLM_MODEL": "kimi-k2.6"}, 400,
                 {"error": {"message": "invalid temperature: only 1 is allowed for this model",
                            "type": "invalid_request_error"}},
                 "✗ 模型调用（moonshot）：该模型只接受 temperature=1：设置 LLM_TEMPERATURE=1",
                 id="400-kimi-temperature"),
    pytest.param("openai", {"LLM_MODEL": "o3"}, 400,
                 {"error": {"message": "Unsupported value: 'temperature' does not support 0.0 with this model. "
                                       "Only the default (1) value is supported.",
                            "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}},
                 "✗ 模型调用（openai）：该模型只接受 temperature=1：设置 LLM_TEMPERATURE=1", id="400-o3-temperature"),
    pytest.param("zhipuai", {}, 400, {"error": {"code": "1214", "message": "temperature参数非法"}},
                 "✗ 模型调用（zhipuai）：该模型不接受 temperature={sent}（400）："
                 "在 .env 设置 LLM_TEMPERATURE={better}（厂商允许的范围内）", id="400-zhipu-temperature-range"),
    pytest.param("openai", {}, 400,
                 {"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                                       "resulted in 8227 tokens.", "type": "invalid_request_error",
                            "param": "messages", "code": "context_length_exceeded"}},
                 "✗ 模型调用（openai）：输入超出模型的上下文长度（400）：在 .env 设置 LLM_MODEL=…（上下文更长的模型），"
                 "或减少检索片段与对话历史", id="400-context-length"),
    pytest.param("deepseek", {}, 402,
                 {"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": None,
                            "code": "invalid_request_error"}},
                 "✗ 模型调用（deepseek）：账户余额不足或额度已用完（402）：请到厂商控制台充值或更换套餐，重试不会好转",
                 id="402-deepseek-balance"),
    pytest.param("openai", {}, 429,
                 {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                            "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
                 "✗ 模型调用（openai）：账户余额不足或额度已用完（429）：请到厂商控制台充值或更换套餐，重试不会好转",
                 id="429-openai-quota"),
    pytest.param("openai", {}, 429,
                 {"error": {"message": "Rate limit reached for requests", "type": "requests",
                            "code": "rate_limit_exceeded"}},
                 "✗ 模型调用（openai）：请求过于频繁或额度用完（429）：稍后再试，或检查账户余额", id="429-rate-limit"),
    pytest.param("deepseek", {}, 422,
                 {"error": {"message": "Invalid Parameters: top_k", "type": "invalid_request_error"}},
                 "✗ 模型调用（deepseek）：请求被拒绝（422）：Invalid Parameters: top_k；重试不会好转，"
                 "按提示改 .env（LLM_MODEL、LLM_TEMPERATURE），或把这份报告贴进 issue", id="422-other-parameter"),
    pytest.param("deepseek", {}, 500, {"error": {"message": "Server Error", "type": "server_error"}},
                 "✗ 模型调用（deepseek）：服务端返回错误 500：请稍后再试", id="500-retry-later"),
]


@pytest.mark.parametrize(("provider", "env", "status", "body", "expected"), CASES)
def test_each_vendor_error_is_one_chinese_line_and_exit_1(monkeypatch, capsys, vendor, provider, env, status, body,
                                                          expected):
    configure(monkeypatch, provider, **env)
    fake = vendor(Vendor(status, body))
    code, out = run(capsys)
    assert code == 1
    sent = llm.get_chat_model().temperature  # 被拒的正是课程发的温度；建议一个不同的、各家都收的值
    expected = expected.replace("{sent}", str(sent)).replace("{better}", "0.5" if sent == 0.01 else "0.01")
    assert line_of(out, f"模型调用（{provider}）") == expected
    # 探测发的就是课程的温度：get_chat_model 按厂商规则改过之后的那个值
    assert fake.bodies[0].get("temperature") == llm.get_chat_model().temperature
    assert out.splitlines()[-1].startswith(f"结论：有 1 项必须修复（✗）：{provider} 现在不能为课程服务")
    assert FAKE_KEY not in out and "s3cr3t" not in out


def test_healthy_vendor_exits_0_and_probes_like_the_course(monkeypatch, capsys, vendor):
    configure(monkeypatch, "zhipuai", embedding="zhipuai", LLM_TEMPERATURE="0.3")
    fake = vendor(Vendor())
    code, out = run(capsys)
    assert code == 0, out
    assert "✓ 模型调用（zhipuai）：vendor-model 回答正常（temperature=0.3，10 tokens）" in out
    assert "✓ 流式输出与用量（zhipuai）：流式回答正常，用量 10 tokens" in out
    assert "✓ 工具调用（zhipuai）：模型调用了 multiply" in out
    texts = doctor.probe_texts(llm.get_embeddings())
    assert f"✓ 嵌入（zhipuai）：embedding-3 返回 3 维向量（{len(texts)} 段）" in out
    chat, stream, tools, *embeds = fake.bodies
    embed = embeds[0]
    assert tools["tools"][0]["function"]["name"] == "multiply" and "tool_choice" not in tools  # 与第 3 章相同
    assert chat["temperature"] == stream["temperature"] == 0.3 and not chat.get("stream")
    assert stream["stream"] is True and stream["stream_options"] == {"include_usage": True}
    assert embed["model"] == "embedding-3" and sum((e["input"] for e in embeds), []) == texts
    assert len(embeds) == 2  # 比课程的批大小多一段：跨过一批，和第 4 章入库一样分批
    llm.get_embeddings().embed_documents(["课程自己发一次"])  # 与课程的 get_embeddings 发的编码相同
    assert embed.get("encoding_format") == fake.bodies[-1].get("encoding_format")
    assert out.splitlines()[-1].startswith("结论：离线课程可以运行")


def test_kimi_with_temperature_1_passes(monkeypatch, capsys, vendor):
    configure(monkeypatch, "moonshot", LLM_MODEL="kimi-k2.6", LLM_TEMPERATURE="1")
    fake = vendor(Vendor())
    code, out = run(capsys)
    assert fake.bodies[0]["temperature"] == 1.0
    # 设了 LLM_TEMPERATURE=1 后 Kimi 接受请求（用量放在 choices[0].usage 的情形见下一个测试）
    assert code == 0 and "✓ 模型调用（moonshot）" in out


def test_stream_usage_missing_is_a_warning_not_a_failure(monkeypatch, capsys, vendor):
    configure(monkeypatch, "moonshot", LLM_MODEL="kimi-k2.6", LLM_TEMPERATURE="1")
    vendor(Vendor(usage_where="none"))
    code, out = run(capsys)
    assert code == 0
    assert line_of(out, "流式输出与用量（moonshot）") == (
        "! 流式输出与用量（moonshot）：流式回答正常，但最后没有带回用量（usage）：课程的用量与费用统计会记成 0")


def test_embedding_provider_is_checked_too(monkeypatch, capsys, vendor):
    # 千帆 v2 嵌入只接受 encoding_format=float；openai SDK 默认请求 base64（见 helpers/errors.py 的出处）
    configure(monkeypatch, "offline", embedding="qianfan")
    vendor(Vendor(400, {"error": {"code": "invalid_argument", "message": "encoding_format 当前只支持float",
                                  "type": "invalid_request_error"}}, on="embeddings"))
    code, out = run(capsys)
    assert code == 1
    assert "✓ 模型调用（offline）" in out
    assert line_of(out, "嵌入（qianfan）") == (
        "✗ 嵌入（qianfan）：嵌入接口不接受课程请求的编码格式（400 encoding_format）："
        "暂时设置 EMBEDDING_PROVIDER=offline，并把这份报告贴进 issue")


def test_embedding_model_retired(monkeypatch, capsys, vendor):
    configure(monkeypatch, "offline", embedding="dashscope", EMBEDDING_MODEL="text-embedding-v1")
    vendor(Vendor(404, {"error": {"message": "The model `text-embedding-v1` does not exist or you do not have access "
                                             "to it.", "type": "invalid_request_error", "code": "model_not_found"}},
                  on="embeddings"))
    code, out = run(capsys)
    assert code == 1
    assert line_of(out, "嵌入（dashscope）") == (
        "✗ 嵌入（dashscope）：模型 text-embedding-v1 不存在或已下线（404）：在 .env 设置 EMBEDDING_MODEL=…"
        "（换成厂商模型列表里现有的名字）")


@pytest.mark.parametrize("provider", ["ollama", "vllm"])
def test_local_server_not_running_says_how_to_start_it(monkeypatch, capsys, vendor, provider):
    configure(monkeypatch, provider)
    vendor(Vendor(raise_exc=httpx.ConnectError))
    code, out = run(capsys)
    spec = doctor.PROVIDERS[provider]
    model = llm.default_model(provider)
    port = httpx.URL(spec.base_url).port
    start = (f"先在另一个终端运行 ollama serve，再 ollama pull {model}" if provider == "ollama" else
             f"先在另一个终端运行 vllm serve {model} --port {port}（端口要与 VLLM_BASE_URL 一致）")
    assert code == 1
    expected = f"✗ 模型调用（{provider}）：连不上本地服务 {spec.base_url}：{start}"
    assert line_of(out, f"模型调用（{provider}）") == expected


def test_timeout_is_one_line(monkeypatch, capsys, vendor):
    configure(monkeypatch, "deepseek")
    vendor(Vendor(raise_exc=httpx.ReadTimeout))
    code, out = run(capsys)
    assert code == 1
    assert line_of(out, "模型调用（deepseek）") == "✗ 模型调用（deepseek）：15 秒内没有响应：请检查网络或代理"


def test_tool_call_problems_are_warnings(monkeypatch, capsys, vendor):
    configure(monkeypatch, "deepseek")
    vendor(Vendor(calls_tools=False))
    code, out = run(capsys)
    assert code == 0
    assert line_of(out, "工具调用（deepseek）") == (
        "! 工具调用（deepseek）：模型没有发起工具调用，只回答了文字：第 3 章的工具单元格会显示这一点")


def test_vllm_without_tool_parser(monkeypatch, capsys, vendor):
    configure(monkeypatch, "vllm")
    body = {"object": "error", "message": '"auto" tool choice requires --enable-auto-tool-choice and '
                                          "--tool-call-parser to be set", "type": "BadRequestError", "code": 400}
    vendor(Vendor(400, body, on="tools"))
    code, out = run(capsys)
    assert code == 0
    assert line_of(out, "工具调用（vllm）") == (
        "! 工具调用（vllm）：该模型或服务不支持工具调用（400）：换支持工具的模型（LLM_MODEL=…）；"
        "vLLM 启动时要加 --enable-auto-tool-choice --tool-call-parser <解析器>（只影响第 3 章的工具单元格）")


def test_local_server_too_slow(monkeypatch, capsys, vendor):
    configure(monkeypatch, "ollama", LLM_MODEL="qwen3:32b")
    vendor(Vendor(raise_exc=httpx.ReadTimeout))
    code, out = run(capsys)
    assert code == 1
    assert line_of(out, "模型调用（ollama）") == (
        "✗ 模型调用（ollama）：本地服务 http://localhost:11434/v1 15 秒内没有响应：先在另一个终端运行 ollama serve，"
        "再 ollama pull qwen3:32b，或换一个更小的模型")
