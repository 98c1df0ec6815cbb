"""课程知识库的 MCP 服务（第 8 章）：用官方 MCP 客户端经 stdio、streamable HTTP 与助手的 /mcp 驱动它。"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from filelock import FileLock
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

from helpers.app import create_app
from helpers.app.server import store_lock
from helpers.config import PROJECT_ROOT, load_settings
from helpers.mcp import BearerGuard, build_server, client_config, desktop_config
from helpers.mcp.__main__ import main as mcp_main, sync_with_lock
from helpers.offline.background import serve_app
from tests.support.corpus import PLACES, make_pdf, write_corpus
from tests.support.factories import make_assistant, small_kb
from tests.support.servers import free_port, stop_process, wait_until_up

COLLECTION = "mcp-test"
TOKEN = "mcp-token-42"
QUESTION = "星河咖啡馆的招牌饮品是什么？"
TIMINGS: dict[str, float] = {}  # 测得的时间：本文件的测试跑完后打印（pytest -s 可见）


@pytest.fixture(scope="module", autouse=True)
def print_timings() -> Any:
    yield
    for name, seconds in TIMINGS.items():
        print(f"\n{name}: {seconds:.2f} s", end="")


@pytest.fixture(scope="module")
def kb_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """子进程用的环境：测试进程的离线设置，加上临时的向量库、文档目录（小语料 + 两页 PDF）与上传区。"""
    root = tmp_path_factory.mktemp("mcp")
    corpus = write_corpus(root / "corpus", PLACES)
    make_pdf(corpus / "manual.pdf", ["青藤植物园的开放时间是每天八点到十八点。", "植物园的门票是成人三十元。"])
    return {**os.environ, "VECTOR_DB_DIR": str(root / "db"), "APP_CORPUS_DIR": str(corpus),
            "APP_UPLOADS_DIR": str(root / "uploads"), "APP_COLLECTION": COLLECTION}


def _params(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "helpers.mcp", *args], env=env,
                                 cwd=str(PROJECT_ROOT))


def _chunks(result: Any) -> list[dict[str, Any]]:
    assert not result.isError, result.content
    return result.structuredContent["result"]


def _error(result: Any) -> str:
    assert result.isError
    return result.content[0].text


async def _stdio_scenario(env: dict[str, str]) -> list[dict[str, Any]]:
    start = time.perf_counter()
    async with stdio_client(_params(env)) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        TIMINGS["stdio 冷启动（建库）到第一次 tools/list"] = time.perf_counter() - start
        assert init.serverInfo.name == "course-kb"
        assert set(tools) == {"search_knowledge", "list_documents"}
        schema = tools["search_knowledge"].inputSchema
        assert schema["required"] == ["query"] and schema["properties"]["k"]["type"] == "integer"
        assert (schema["properties"]["k"]["minimum"], schema["properties"]["k"]["maximum"]) == (1, 50)
        assert tools["search_knowledge"].annotations.readOnlyHint  # 只读：客户端可以不经确认就调用
        assert "检索" in tools["search_knowledge"].description

        t0 = time.perf_counter()
        found = _chunks(await session.call_tool("search_knowledge", {"query": QUESTION, "k": 3}))
        TIMINGS["一次 search_knowledge（stdio）"] = time.perf_counter() - t0
        assert found[0]["source"] == "coffee.md" and "桂花拿铁" in found[0]["text"]
        assert len(found) == 3 and all(isinstance(c["score"], float) for c in found)
        pdf = _chunks(await session.call_tool("search_knowledge", {"query": "植物园的门票多少钱？", "k": 1}))
        assert pdf[0]["source"] == "manual.pdf" and pdf[0]["page"] == 1  # 第 2 页（页码从 0 数）

        docs = _chunks(await session.call_tool("list_documents", {}))
        assert [d["name"] for d in docs] == ["coffee.md", "garden.md", "manual.pdf", "notes.txt"]
        assert all(d["chunks"] >= 1 and d["uploaded"] is False for d in docs)

        resources = {r.name: str(r.uri) for r in (await session.list_resources()).resources}
        assert resources["coffee.md"] == "kb://documents/coffee.md"
        coffee = (await session.read_resource(resources["coffee.md"])).contents[0]
        assert coffee.text.startswith("# 星河咖啡馆") and coffee.mimeType == "text/markdown"
        manual = (await session.read_resource(resources["manual.pdf"])).contents[0].text
        assert "## 第 2 页" in manual and "门票是成人三十元" in manual
        templates = (await session.list_resource_templates()).resourceTemplates
        assert [t.uriTemplate for t in templates] == ["kb://documents/{name}"]

        # 参数不对：错误结果（isError）带一句中文，会话照常
        assert "不能为空" in _error(await session.call_tool("search_knowledge", {"query": "  "}))
        assert "1 到 50" in _error(await session.call_tool("search_knowledge", {"query": "咖啡", "k": 0}))
        assert "整数" in _error(await session.call_tool("search_knowledge", {"query": "咖啡", "k": "abc"}))
        assert "缺少" in _error(await session.call_tool("search_knowledge", {}))
        assert "没有名为 'drop_table' 的工具" in _error(await session.call_tool("drop_table", {}))
        for uri, words in [("kb://documents/..%2F..%2Fetc%2Fpasswd", "没有找到文档"),
                           ("kb://documents/missing.md", "没有找到文档"), ("file:///etc/passwd", "没有这个资源")]:
            with pytest.raises(McpError, match=words):
                await session.read_resource(uri)
        return _chunks(await session.call_tool("search_knowledge", {"query": QUESTION, "k": 1}))


def test_stdio_server_with_the_official_client(kb_env):
    after_errors = asyncio.run(_stdio_scenario(kb_env))  # 一连串错误之后，同一个会话照常检索
    assert after_errors[0]["source"] == "coffee.md"


def test_stdout_carries_only_protocol_messages_on_a_warm_start(kb_env):
    """知识库已建好时再启动：标准输出每一行都是 JSON-RPC 消息（提示、进度条、jieba 的日志都在标准错误）。"""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "helpers.mcp"], env=kb_env, cwd=PROJECT_ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            encoding="utf-8")
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        TIMINGS["stdio 热启动（库已建好）到第一次 tools/list"] = time.perf_counter() - start
        rest, err = proc.communicate(timeout=30)  # 关上标准输入：服务应自己退出
    finally:
        if proc.poll() is None:
            stop_process(proc)
    assert proc.returncode == 0, err[-2000:]
    replies = [json.loads(line) for line in [*lines, *rest.splitlines()] if line.strip()]
    assert [r.get("id") for r in replies] == [1, 2]
    assert {t["name"] for t in replies[1]["result"]["tools"]} == {"search_knowledge", "list_documents"}
    assert "库中现有" in err  # 同步报告写在标准错误


async def _http_scenario(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    async with streamablehttp_client(url, headers=headers) as (read, write, _), ClientSession(read, write) as s:
        await s.initialize()
        assert {t.name for t in (await s.list_tools()).tools} == {"search_knowledge", "list_documents"}
        assert "1 到 50" in _error(await s.call_tool("search_knowledge", {"query": "咖啡", "k": 99}))
        return _chunks(await s.call_tool("search_knowledge", {"query": QUESTION, "k": 2}))


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "MCP 服务进程已退出"
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError("MCP 服务没有就绪")


def test_streamable_http_on_loopback(kb_env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "helpers.mcp", "--http", "--port", str(port)],
                            env=kb_env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc)
        found = asyncio.run(_http_scenario(f"http://127.0.0.1:{port}/mcp"))
        assert found[0]["source"] == "coffee.md"
        # SDK 的防 DNS 重绑定检查：别的网站（Origin 不是本机）发来的请求被拒
        r = httpx.post(f"http://127.0.0.1:{port}/mcp", json={}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
    finally:
        stop_process(proc)


def test_help_is_in_chinese(capsys):
    with pytest.raises(SystemExit) as exit_info:
        mcp_main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "课程知识库的 MCP 服务" in out and "显示这段帮助并退出" in out


def test_building_the_server_leaves_the_root_logger_alone(tiny_kb, tiny_corpus, tmp_path):
    """FastMCP() 会调 logging.basicConfig：笔记本里建服务不该因此多出一个往标准错误打日志的处理器。"""
    root = logging.getLogger()
    saved, level, added = list(root.handlers), root.level, []
    for handler in saved:  # 像新开的笔记本内核那样：根日志还没有处理器（pytest 自己装了几个，先拿掉）
        root.removeHandler(handler)
    try:
        build_server(make_assistant(tiny_kb, tiny_corpus, tmp_path))
        added = list(root.handlers)
    finally:
        for handler in added:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
    assert added == []


def test_non_loopback_host_needs_a_token(monkeypatch, capsys):
    monkeypatch.delenv("APP_TOKEN", raising=False)
    assert mcp_main(["--http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "APP_TOKEN" in err and "拒绝监听" in err


def test_sync_takes_the_app_store_lock_and_skips_while_the_app_holds_it(tiny_corpus, tmp_path):
    settings = load_settings(vector_db_dir=tmp_path / "db")
    assistant = make_assistant(small_kb("lock", settings=settings), tiny_corpus, tmp_path / "up")
    held = store_lock(tmp_path / "db")  # 助手进程（python -m helpers.app）拿的就是这把锁
    try:
        assert "跳过同步" in sync_with_lock(assistant, settings)
        assert assistant.kb.count() == 0
    finally:
        held.release()
    assert "新增 3" in sync_with_lock(assistant, settings)
    free = FileLock(str(tmp_path / "db.lock"))
    free.acquire(timeout=0)  # 同步完就放开了：助手随后照常能启动
    free.release()
    assert assistant.kb.count() >= 3


@pytest.fixture
def token_app(tiny_kb, tiny_corpus, tmp_path):
    assistant = make_assistant(tiny_kb, tiny_corpus, tmp_path / "uploads", token=TOKEN)
    with serve_app(create_app(assistant, ui=False)) as base:
        yield assistant, base


def test_app_exposes_mcp_with_the_api_token_rule(token_app):
    assistant, base = token_app
    bare = httpx.post(base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                      headers={"Accept": "application/json, text/event-stream"})
    assert bare.status_code == 401 and "Authorization: Bearer" in bare.json()["detail"]
    wrong = httpx.post(base + "/mcp", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    cross = httpx.post(base + "/mcp", json={}, headers={"Authorization": f"Bearer {TOKEN}",
                                                         "Origin": "http://evil.example"})
    assert cross.status_code == 403  # 与 API 同一个 OriginGuard
    auth = {"Authorization": f"Bearer {TOKEN}"}
    found = asyncio.run(_http_scenario(base + "/mcp", auth))
    assert found[0]["source"] == "coffee.md"

    assistant.upload("moon.md", "月光书店的店猫名叫芝麻。\n".encode())  # 服务启动之后上传的文档也能读

    async def read_upload() -> str:
        async with streamablehttp_client(base + "/mcp", headers=auth) as (read, write, _), \
                ClientSession(read, write) as s:
            await s.initialize()
            names = {r.name for r in (await s.list_resources()).resources}
            assert "moon.md" in names
            return (await s.read_resource("kb://documents/moon.md")).contents[0].text

    assert "芝麻" in asyncio.run(read_upload())


def test_app_counts_wrong_mcp_tokens_like_the_api(token_app):
    _, base = token_app
    codes = [httpx.post(base + "/mcp", json={}, headers={"Authorization": "Bearer guess"}).status_code
             for _ in range(11)]
    assert codes == [401] * 10 + [429]  # LoginThrottle：输错 10 次后暂时一律 429


def test_cli_http_app_requires_the_token_when_set(tiny_kb, tiny_corpus, tmp_path):
    """python -m helpers.mcp --http 设置了 APP_TOKEN 时的那一层（BearerGuard），在本进程里起服务来测。"""
    server = build_server(make_assistant(tiny_kb, tiny_corpus, tmp_path))
    with serve_app(BearerGuard(server.streamable_http_app(), TOKEN)) as base:
        assert httpx.post(base + "/mcp", json={}).status_code == 401
        found = asyncio.run(_http_scenario(base + "/mcp", {"Authorization": f"Bearer {TOKEN}"}))
    assert found[0]["source"] == "coffee.md"


def test_app_mcp_before_startup_says_so(tiny_kb, tiny_corpus, tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(make_assistant(tiny_kb, tiny_corpus, tmp_path), ui=False)
    client = TestClient(app)  # 没有 with：不跑 lifespan
    r = client.post("/mcp", json={})
    assert r.status_code == 503 and "MCP 端点还没启动" in r.json()["detail"]


def test_client_configs_pass_the_environment_and_need_no_keys(kb_env):
    conn = client_config("kb", env=kb_env)["kb"]
    assert conn["command"] == sys.executable and conn["args"] == ["-m", "helpers.mcp"]
    assert conn["env"]["VECTOR_DB_DIR"] == kb_env["VECTOR_DB_DIR"]  # 不传 env，子进程会读开发者的 .env
    desk = desktop_config()["mcpServers"]["course-kb"]
    assert desk == {"command": sys.executable, "args": ["-m", "helpers.mcp"]}  # 不把密钥抄进客户端配置
    assert desktop_config(vscode=True)["servers"]["course-kb"]["type"] == "stdio"


@pytest.mark.slow
def test_langchain_mcp_adapters_loads_and_calls_the_search_tool(kb_env):
    from langchain_mcp_adapters.client import MultiServerMCPClient

    async def run() -> Any:
        client = MultiServerMCPClient(client_config("course-kb", env=kb_env))
        tools = {t.name: t for t in await client.get_tools()}
        assert set(tools) == {"search_knowledge", "list_documents"}
        t0 = time.perf_counter()
        result = await tools["search_knowledge"].ainvoke({"query": QUESTION, "k": 2})
        TIMINGS["langchain 工具调用一次（每次新起子进程）"] = time.perf_counter() - t0
        return result

    result = asyncio.run(run())
    text = json.dumps(result, ensure_ascii=False, default=str)
    assert "coffee.md" in text and "桂花拿铁" in text


@pytest.fixture
def chroma_port(tmp_path):
    cli = Path(sys.executable).parent / "chroma"
    if not cli.exists():
        pytest.skip("没有找到 chroma 命令行，跳过服务器模式")
    port = free_port()
    proc = subprocess.Popen([str(cli), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/v2/heartbeat", 90, alive=lambda: proc.poll() is None)
        yield port
    finally:
        stop_process(proc, timeout=10)


@pytest.mark.slow
def test_stdio_server_against_a_chroma_server(kb_env, chroma_port, tmp_path):
    env = {**kb_env, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(chroma_port),
           "VECTOR_DB_DIR": str(tmp_path / "unused")}

    async def run() -> list[dict[str, Any]]:
        async with stdio_client(_params(env)) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            return _chunks(await s.call_tool("search_knowledge", {"query": QUESTION, "k": 1}))

    assert asyncio.run(run())[0]["source"] == "coffee.md"
    assert not (tmp_path / "unused").exists()  # 库在 Chroma 服务那边，本机没有建嵌入式库
