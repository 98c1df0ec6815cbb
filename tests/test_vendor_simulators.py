"""每一行提供方对着它的厂商模拟器（tests/support/vendors.py）跑课程自己的函数：聊天、流式用量、嵌入、工具调用、doctor；
再对每家文档写明的每一种错误，断言 doctor 给出的那一句带修法的中文，以及设置的提供方不能为课程服务时退出码非 0。

.env 只改两处：<前缀>_BASE_URL 指向模拟器、密钥换成假密钥（假密钥从不出现在任何输出与日志里）。
"""

from __future__ import annotations

import logging
from fnmatch import fnmatch

import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from helpers import doctor
from helpers.callbacks import UsageTracker
from helpers.config import load_settings
from helpers.llm import default_model, get_chat_model, get_embeddings, get_openai_client
from helpers.providers import PROVIDERS
from tests.support.servers import serve_in_thread
from tests.support.vendors import EMBED_DIM, FAKE_KEY, REPLY, USAGE, VENDORS, Simulator

SIM = Simulator()
ROWS = sorted(name for name in PROVIDERS if name != "offline")
EMBED_ROWS = [name for name in ROWS if PROVIDERS[name].embedding_model]
WRONG_KEY = "sim-wrong-9d8c7b6a5f4e3d2c1b0a99887766"
LOCAL = {"ollama", "vllm"}


@tool
def multiply(a: float, b: float) -> float:
    """计算两个数的乘积。"""
    return a * b


@pytest.fixture(scope="module")
def root():
    with serve_in_thread(SIM.app) as base:
        yield base


@pytest.fixture
def use(root, monkeypatch):
    """把 .env 指到模拟器：LLM_PROVIDER / EMBEDDING_PROVIDER、<前缀>_BASE_URL、假密钥，不重试。"""
    SIM.reset()

    def configure(provider: str, *, embedding: str = "offline", key: str = FAKE_KEY, **env: str) -> None:
        monkeypatch.setenv("LLM_PROVIDER", provider)
        monkeypatch.setenv("EMBEDDING_PROVIDER", embedding)
        monkeypatch.setenv("LLM_MAX_RETRIES", "0")
        for name in {provider, embedding} - {"offline"}:
            spec = PROVIDERS[name]
            monkeypatch.setenv(f"{spec.env_prefix}_BASE_URL", SIM.base_url(root, name))
            if spec.key_env:
                monkeypatch.setenv(spec.key_env, key)
            if name in LOCAL:  # 本地服务只提供课程让人 pull / serve 的那个模型（提供方表里的默认名）
                SIM.state[name].served = tuple(m for m in (spec.chat_model, spec.embedding_model) if m)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
    return configure


def run_doctor(capsys) -> tuple[int, str]:
    code = doctor.main()
    return code, capsys.readouterr().out


def line_of(out: str, name: str) -> str:
    [line] = [ln for ln in out.splitlines() if ln[:2] in {"✓ ", "✗ ", "! "} and ln[2:].startswith(name)]
    return line


# ---------------------------------------------------------------- 表本身


def test_every_provider_row_has_a_simulator_and_every_rule_a_source():
    assert set(ROWS) <= set(VENDORS), "新的提供方行要在 tests/support/vendors.py 里有模拟器"
    for spec in VENDORS.values():
        for rule in spec.rules:
            assert "2026-12-01" in rule.source and rule.status >= 400, (spec.name, rule.kind)


# ---------------------------------------------------------------- 每一行：课程的正常路径


@pytest.mark.parametrize("row", ROWS)
def test_chat_invoke(use, row):
    use(row)
    reply = get_chat_model().invoke("你好")
    assert reply.content == REPLY
    assert reply.usage_metadata["total_tokens"] == USAGE["total_tokens"]


@pytest.mark.parametrize("row", ROWS)
def test_stream_usage_reaches_the_usage_tracker(use, row):
    use(row)
    tracker = UsageTracker(provider=row)
    chunks = list(get_chat_model().stream("你好", config={"callbacks": [tracker]}))
    assert "".join(str(c.content) for c in chunks) == REPLY
    assert tracker.prompt_tokens + tracker.completion_tokens == USAGE["total_tokens"], tracker.summary()


@pytest.mark.parametrize("row", EMBED_ROWS)
def test_embeddings_batch_larger_than_the_vendor_limit(use, row):
    use("offline", embedding=row)
    limit = VENDORS[row].embed_batch
    texts = [f"第 {i} 段" for i in range(limit + 1)]
    vectors = get_embeddings().embed_documents(texts)
    assert len(vectors) == len(texts) and {len(v) for v in vectors} == {EMBED_DIM}
    sent = [len(b["input"]) for b in SIM.bodies(row, "embeddings")]
    assert sum(sent) == len(texts) and max(sent) <= limit


@pytest.mark.parametrize("row", ROWS)
def test_tool_call_like_chapter_3(use, row):
    use(row)
    reply = get_chat_model().bind_tools([multiply]).invoke("请调用 multiply 计算 6 乘以 7")
    if VENDORS[row].supports_tools(default_model(row)):
        assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("multiply", {"a": 6, "b": 7})]
    else:  # 文档没写这个模型支持工具：它只回答文字，第 3 章的单元格显示这一点，不报错
        assert reply.tool_calls == [] and reply.content == REPLY


@pytest.mark.parametrize("row", [r for r in ROWS if VENDORS[r].supports_tools(default_model(r))])
def test_tool_loop_like_chapter_3_finishes(use, row):
    # 第 3 章 3.7.2 的循环：模型 → tool_calls → ToolMessage → 模型；思考模式的厂商（DeepSeek、Kimi）要求第二次请求里
    # 带着上一条助手消息的 reasoning_content，否则 400（出处见 tests/support/vendors.py 各自的 reasoning_passback 规则）
    use(row)
    chat = get_chat_model().bind_tools([multiply])
    question = HumanMessage("请调用 multiply 计算 6 乘以 7")
    first = chat.invoke([question])
    [call] = first.tool_calls
    second = chat.invoke([question, first, ToolMessage("42.0", tool_call_id=call["id"])])
    assert second.text == REPLY and not second.tool_calls  # OpenAI 带工具走 Responses API，content 是块列表
    if VENDORS[row].has("reasoning_passback"):
        sent = SIM.bodies(row, "chat")[-1]["messages"][1]
        assert sent["reasoning_content"] == first.additional_kwargs["reasoning_content"] == "先想一想。"


@pytest.mark.parametrize("row", ROWS)
def test_doctor_passes_on_a_healthy_vendor(use, capsys, caplog, row):
    caplog.set_level(logging.DEBUG)
    embedding = row if row in EMBED_ROWS else "offline"
    use(row, embedding=embedding)
    code, out = run_doctor(capsys)
    assert code == 0, out
    assert line_of(out, f"模型调用（{row}）").startswith("✓ ")
    assert line_of(out, f"流式输出与用量（{row}）") == f"✓ 流式输出与用量（{row}）：流式回答正常，用量 10 tokens"
    tools = line_of(out, f"工具调用（{row}）")
    assert tools.startswith("✓ " if VENDORS[row].supports_tools(default_model(row)) else "! ")
    assert line_of(out, f"嵌入（{embedding}）").startswith("✓ ")
    # 探测发的就是课程发的：同一个温度、同样要了流式用量
    chat, stream, *_ = SIM.bodies(row, "chat")
    assert chat.get("temperature") == stream.get("temperature") == get_chat_model().temperature
    assert stream["stream"] is True
    if embedding != "offline":  # 嵌入探测比课程的一批多送一段：请求像第 4 章入库那样分批
        sent, texts = [b["input"] for b in SIM.bodies(row, "embeddings")], doctor.probe_texts(get_embeddings())
        assert sum(sent, []) == texts and (len(sent) >= 2 or len(texts) == 2)  # 批大小 > 256 时只送 2 段
    assert FAKE_KEY not in out and FAKE_KEY not in caplog.text


# ---------------------------------------------------------------- 厂商特有的正常路径


def test_deepseek_reasoning_stays_visible_and_goes_back_after_a_tool_call(use):
    # 思考模式默认打开，调用过工具的那一轮要把 reasoning_content 传回去（api-docs.deepseek.com/guides/thinking_mode）
    use("deepseek")
    chat = get_chat_model().bind_tools([multiply])
    question = HumanMessage("请调用 multiply 计算 6 乘以 7")
    first = chat.invoke([question])
    assert first.additional_kwargs.get("reasoning_content") == "先想一想。"
    [call] = first.tool_calls
    second = chat.invoke([question, first, ToolMessage("42.0", tool_call_id=call["id"])])
    assert second.content == REPLY
    assert SIM.bodies("deepseek", "chat")[-1]["messages"][1]["reasoning_content"] == "先想一想。"


def test_openai_max_tokens_is_sent_as_max_completion_tokens(use):
    use("openai")
    assert get_chat_model(max_tokens=8).invoke("你好").content == REPLY
    body = SIM.bodies("openai", "chat")[-1]
    assert body.get("max_completion_tokens") == 8 and "max_tokens" not in body


@pytest.mark.parametrize(("row", "kind"), [(v.name, r.kind) for v in VENDORS.values() for r in v.rules
                                           if r.kind.startswith("temperature")])
def test_doctor_passes_where_the_course_adapts_the_temperature(use, capsys, row, kind):
    # 规则的例子（如 kimi-k2.6 配 LLM_TEMPERATURE=0）按课程发出去：课程按厂商规则改温度，doctor 就通过
    use(row, **VENDORS[row].rule(kind).example)
    code, out = run_doctor(capsys)
    assert code == 0, out
    assert line_of(out, f"模型调用（{row}）").startswith("✓ ")


# ---------------------------------------------------------------- 每家每种文档写明的错误 → doctor 的一句中文


def _raw_chat(row: str, **body) -> openai.APIStatusError:
    """像第 2 章的 openai SDK 单元格那样直接发请求，返回厂商拒绝时的异常。"""
    client = get_openai_client(max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=body.pop("model", default_model(row)),
                                       messages=body.pop("messages", [{"role": "user", "content": "你好"}]), **body)
    return caught.value


def _raw_embed(row: str, texts: list[str], **body) -> openai.APIStatusError:
    client = get_openai_client(row, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model=PROVIDERS[row].embedding_model, input=texts, **body)
    return caught.value


def _spec_key_line(row: str, where: str) -> str:
    spec = PROVIDERS[row]
    what = "密钥无效或与地域不匹配" if spec.regions else "密钥无效"  # 分地域的厂商：另一个地域的密钥同样是 401
    return f"✗ {where}（{row}）：{what}（401）：请检查 .env 中的 {spec.key_env}（申请地址：{spec.key_url}）"


def case_bad_key(use, capsys, row: str) -> None:
    use(row, key=WRONG_KEY)
    SIM.state[row].require_key = True  # vLLM：启动时加了 --api-key
    SIM.state[row].keys = {FAKE_KEY}
    code, out = run_doctor(capsys)
    assert code == 1
    line = line_of(out, f"模型调用（{row}）")
    assert line.startswith(_spec_key_line(row, "模型调用"))
    for _label, url in PROVIDERS[row].regions[1:]:  # 分地域的厂商：密钥与地域不匹配时该改哪个地址
        assert f"设置 {PROVIDERS[row].env_prefix}_BASE_URL={url}" in line
    assert WRONG_KEY not in out and WRONG_KEY[4:-4] not in out


def case_rate_limit(use, capsys, row: str) -> None:
    use(row)
    SIM.state[row].rate_limited = True
    code, out = run_doctor(capsys)
    assert code == 1
    assert line_of(out, f"模型调用（{row}）") == (
        f"✗ 模型调用（{row}）：请求过于频繁或额度用完（429）：稍后再试，或检查账户余额")


def case_retired_model(use, capsys, row: str) -> None:
    rule = VENDORS[row].rule("retired_model")
    use(row, **rule.example)
    code, out = run_doctor(capsys)
    model = rule.example["LLM_MODEL"]
    assert code == 1
    line = line_of(out, f"模型调用（{row}）")
    if row == "ollama":  # 本机还没 pull：说怎么 pull
        assert line == (f"✗ 模型调用（ollama）：本机的 Ollama 还没有模型 {model}（404）：运行 ollama pull {model}，"
                        "或在 .env 设置 LLM_MODEL=…（ollama list 里有的名字）")
    else:
        assert line.startswith(f"✗ 模型调用（{row}）：模型 {model} 不存在或已下线（{rule.status}）："
                               "在 .env 设置 LLM_MODEL=…（换成厂商模型列表里现有的名字")
    if VENDORS[row].models_endpoint and row != "ollama":  # 有 GET /models 的厂商：顺便列出几个现有的名字
        first = line.split("，例如 ")[1].rstrip("）").split("、")[0]
        assert any(fnmatch(first, m) for m in VENDORS[row].chat_models + SIM.state[row].served), line
    assert out.splitlines()[-1].startswith(f"结论：有 1 项必须修复（✗）：{row} 现在不能为课程服务")


def case_temperature_fixed(use, capsys, row: str) -> None:
    rule = VENDORS[row].rule("temperature_fixed")
    use(row, **rule.example)
    exc = _raw_chat(row, model=rule.example["LLM_MODEL"], temperature=0)
    assert doctor.explain(exc, load_settings()) == "该模型只接受 temperature=1：设置 LLM_TEMPERATURE=1"


def case_temperature_range(use, capsys, row: str) -> None:
    use(row)
    bad = VENDORS[row].bad_temperature()
    exc = _raw_chat(row, temperature=bad)
    line = doctor.explain(exc, load_settings())
    rejected = line.removeprefix("该模型不接受 temperature=").split("（")[0]
    suggested = float(line.split("设置 LLM_TEMPERATURE=")[1].split("（")[0])
    assert line.startswith("该模型不接受 temperature=") and str(suggested) != rejected, line
    low, high, _, _ = VENDORS[row].temperature
    assert low < suggested < high  # 建议的值落在这家文档写明的范围里（开区间也算）


def case_max_tokens(use, capsys, row: str) -> None:
    use(row)
    exc = _raw_chat(row, model="o3", max_tokens=8)
    assert doctor.explain(exc, load_settings()) == (
        "该模型不接受 max_tokens（400）：改用 max_completion_tokens（LangChain 的 ChatOpenAI 会自动改名，"
        "直接用 openai SDK 时要自己改）")


def case_tools_reasoning(use, capsys, row: str) -> None:
    use(row, LLM_MODEL="gpt-6-luna")
    exc = _raw_chat(row, model="gpt-6-luna", reasoning_effort="medium",
                    tools=[doctor.PROBE_TOOL])
    assert doctor.explain(exc, load_settings()).startswith("该模型带工具调用时要关掉推理（400 reasoning_effort）")


def case_encoding(use, capsys, row: str) -> None:
    use("offline", embedding=row)
    exc = _raw_embed(row, ["一句话"])  # openai SDK 没被告知时请求 base64
    assert doctor.explain(exc, load_settings(), embedding=True) == (
        "嵌入接口不接受课程请求的编码格式（400 encoding_format）：暂时设置 EMBEDDING_PROVIDER=offline，"
        "并把这份报告贴进 issue")


def case_batch(use, capsys, row: str) -> None:
    use("offline", embedding=row)
    exc = _raw_embed(row, ["一句话"] * (VENDORS[row].embed_batch + 1), encoding_format="float")
    assert doctor.explain(exc, load_settings(), embedding=True) == (
        "嵌入接口一次收不下这么多段文本（400）：课程的批大小超过了厂商上限；暂时设置 EMBEDDING_PROVIDER=offline，"
        "并把这份报告贴进 issue")


def case_text_length(use, capsys, row: str) -> None:
    use("offline", embedding=row)
    spec = VENDORS[row]
    size = max(spec.embed_max_chars, spec.embed_max_tokens) + 1
    exc = _raw_embed(row, ["字" * size], encoding_format="float")
    line = doctor.explain(exc, load_settings(), embedding=True)
    assert line.startswith("有一段文本超出嵌入模型的长度上限（400）：把文档切得更短"), line


def case_tool_choice(use, capsys, row: str) -> None:
    use(row)
    SIM.state[row].auto_tool_choice = False  # vllm serve 时没加 --enable-auto-tool-choice --tool-call-parser
    code, out = run_doctor(capsys)
    assert code == 0  # 只影响第 3 章的工具单元格
    assert line_of(out, f"工具调用（{row}）") == (
        f"! 工具调用（{row}）：该模型或服务不支持工具调用（400）：换支持工具的模型（LLM_MODEL=…）；"
        "vLLM 启动时要加 --enable-auto-tool-choice --tool-call-parser <解析器>（只影响第 3 章的工具单元格）")


def case_reasoning_passback(use, capsys, row: str) -> None:
    use(row)
    call = {"id": "call_1", "type": "function", "function": {"name": "multiply", "arguments": '{"a": 6, "b": 7}'}}
    messages = [{"role": "user", "content": "6 乘以 7"}, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    exc = _raw_chat(row, messages=messages, tools=[doctor.PROBE_TOOL])
    assert doctor.explain(exc, load_settings()).startswith("思考模式要求把 reasoning_content 传回去（400）")


CASES = {name.removeprefix("case_"): fn for name, fn in globals().items() if name.startswith("case_")}


@pytest.mark.parametrize(("row", "kind"), [(v.name, r.kind) for v in VENDORS.values() for r in v.rules])
def test_each_documented_error_gives_the_doctor_line_with_the_fix(use, capsys, caplog, row, kind):
    caplog.set_level(logging.DEBUG)
    CASES[kind](use, capsys, row)
    assert FAKE_KEY not in capsys.readouterr().out and FAKE_KEY not in caplog.text


@pytest.mark.parametrize(("row", "model"), [(v.name, m) for v in VENDORS.values() for m in v.retired])
def test_every_retired_model_gets_the_model_line(use, row, model):
    use(row, LLM_MODEL=model)
    with pytest.raises(openai.APIStatusError) as caught:
        get_chat_model().invoke("你好")
    line = doctor.explain(caught.value, load_settings())
    assert (f"还没有模型 {model}" if row == "ollama" else f"模型 {model} 不存在或已下线") in line, line
    assert "LLM_MODEL=" in line


def test_embedding_provider_is_checked_and_fails_the_doctor(use, capsys):
    use("offline", embedding="zhipuai", key=WRONG_KEY)
    code, out = run_doctor(capsys)
    assert code == 1
    assert "✓ 模型调用（offline）" in out
    assert line_of(out, "嵌入（zhipuai）").startswith(_spec_key_line("zhipuai", "嵌入"))


def test_embedding_provider_without_embeddings_fails_the_doctor(use, capsys):
    use("offline", embedding="deepseek")
    code, out = run_doctor(capsys)
    assert code == 1 and line_of(out, "嵌入（deepseek）").startswith("✗ 嵌入（deepseek）：DeepSeek 没有提供")


# ---------------------------------------------------------------- --strict（每周的真实检查用）


def test_strict_doctor_fails_on_a_provider_warning(use, capsys):
    use("ollama")
    SIM.state["ollama"].stream_usage = False  # v0.5.2 之前的 Ollama 流式不带用量（ogx-ai/ogx#5011）
    code, out = run_doctor(capsys)
    assert code == 0 and line_of(out, "流式输出与用量（ollama）").startswith("! ")
    assert doctor.main(["--strict"]) == 1
    assert "严格模式（--strict）：另有 1 项真实调用没有通过：流式输出与用量（ollama）" in capsys.readouterr().out


def test_strict_doctor_passes_on_a_healthy_vendor_and_rejects_unknown_arguments(use, capsys):
    use("deepseek")
    assert doctor.main(["--strict"]) == 0
    assert doctor.main(["--strcit"]) == 2 and "用法 python -m helpers.doctor [--strict]" in capsys.readouterr().out
