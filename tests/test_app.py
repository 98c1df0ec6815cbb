"""知识库助手的接口测试：TestClient 与真实 uvicorn（本机空闲端口）两条路都走一遍。"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import shlex
import socket
from pathlib import Path

import httpx
import pytest
from fastapi.sse import format_sse_event
from fastapi.testclient import TestClient
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage

from helpers.app import (
    Assistant,
    SessionStore,
    create_app,
    load,
    sanitize_filename,
    sse,
)
from helpers.app.client import ApiError, AssistantClient, parse_sse
from helpers.app.server import cli_overrides, collection_from_env, config_from_env, corpus_from_env, parse_args
from helpers.app.validation import AppError, validate_document_name, validate_question
from helpers.config import PROJECT_ROOT, ConfigError
from helpers.llm import get_chat_model
from tests.support.factories import make_assistant
from tests.support.servers import serve_in_subprocess, serve_in_thread

TOKEN = "test-token-123"


# ---- 测试用的助手（小语料 tiny_corpus、知识库 tiny_kb 来自 conftest.py） --------------------------
@pytest.fixture(scope="module")
def assistant(tiny_kb, tiny_corpus, tmp_path_factory) -> Assistant:
    return make_assistant(tiny_kb, tiny_corpus, tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="module")
def client(assistant) -> TestClient:
    return TestClient(create_app(assistant))


def upload(client: TestClient, name: str, data: bytes | str, **kw) -> httpx.Response:
    body = data.encode("utf-8") if isinstance(data, str) else data
    return client.post("/api/documents", files={"file": (name, body)}, **kw)


# ---- 基本功能 -----------------------------------------------------------------------
def test_health_reports_provider_model_and_chunks(client):
    h = client.get("/health").json()
    assert h["status"] == "ok"
    assert h["provider"] == "offline" and "offline" in h["model"]
    assert h["chunks"] >= 3 and h["documents"] == 3
    assert h["vector_store"] == "chroma-embedded"


def test_chat_answers_with_sources(client):
    r = client.post("/api/chat", json={"question": "星河咖啡馆的招牌饮品是什么？"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "桂花拿铁" in body["answer"] and not body["refused"]
    assert body["sources"][0]["source"] == "coffee.md"
    assert body["sources"][0]["url"] == "/api/documents/coffee.md"
    assert body["session_id"]  # 没传就自动生成


def test_unanswerable_question_is_refused(client):
    body = client.post("/api/chat", json={"question": "火星上的天气预报是什么？"}).json()
    assert body["refused"] and body["sources"] == []


def test_session_history_is_kept(client):
    sid = "history-1"
    client.post("/api/chat", json={"question": "青藤植物园最古老的树是什么？", "session_id": sid})
    r = client.post("/api/chat", json={"question": "它的树龄多大？", "session_id": sid})
    assert "青藤植物园" in r.json()["standalone_question"]  # 追问结合了上一轮
    assert "800" in r.json()["answer"]
    messages = client.get(f"/api/sessions/{sid}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    client.delete(f"/api/sessions/{sid}")
    assert client.get(f"/api/sessions/{sid}").json()["messages"] == []


def test_stream_sends_tokens_then_sources(client):
    with client.stream("POST", "/api/chat/stream",
                       json={"question": "期末考试在哪里？", "session_id": "s-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        events = list(parse_sse(r.iter_lines()))
    names = [e for e, _ in events]
    assert names.count("token") >= 2 and names[-1] == "done" and "error" not in names
    done = events[-1][1]
    assert "".join(d["text"] for e, d in events if e == "token") == done["answer"]
    assert "302" in done["answer"] and done["sources"][0]["source"] == "notes.txt"


def test_parse_sse_handles_comments_and_multiline_data():
    lines = [": 心跳", "event: token", 'data: {"text":', 'data: "你好"}', "", "data: {}", ""]
    assert list(parse_sse(lines)) == [("token", {"text": "你好"}), ("message", {})]


def test_stream_wire_format(client):
    """FastAPI 的 SSE：每个事件是 event 行 + 一行 JSON（中文不转义）+ 空行，客户端的 parse_sse 读得懂。"""
    with client.stream("POST", "/api/chat/stream", json={"question": "星河咖啡馆几点开门？"}) as r:
        raw = r.read().decode("utf-8")
    assert raw.startswith("event: token\ndata: {") and raw.endswith("\n\n")
    blocks = raw.strip("\n").split("\n\n")
    assert all(len(b.splitlines()) == 2 for b in blocks)  # 片段里的换行不会打乱事件边界
    assert "event: done" in blocks[-1] and "星河咖啡馆" in blocks[-1]
    done = list(parse_sse(raw.splitlines()))[-1]
    assert done[0] == "done" and set(done[1]) == {"answer", "sources", "refused", "standalone_question",
                                                  "session_id"}
    assert set(done[1]["sources"][0]) == {"n", "source", "page", "snippet", "score", "label", "url"}


def test_sse_teaching_helper_matches_fastapi():
    """第 7 章讲的 sse() 与 FastAPI 自己的编码给出同一个事件。"""
    data = {"text": "你好\n世界", "n": 1}
    text = sse("token", data)
    assert text == 'event: token\ndata: {"text": "你好\\n世界", "n": 1}\n\n'
    fastapi_bytes = format_sse_event(event="token", data_str=json.dumps(data, ensure_ascii=False))
    assert list(parse_sse(text.splitlines())) == list(parse_sse(fastapi_bytes.decode().splitlines()))
    assert list(parse_sse(text.splitlines())) == [("token", data)]


def test_routes_are_listed_on_the_app(client):
    """接口直接登记在应用上：app.routes 逐条列出它们（第 7 章的笔记本就是这样列的）。"""
    routes = [(sorted(r.methods), r.path, r.endpoint.__doc__.strip()) for r in client.app.routes
              if getattr(r, "path", "").startswith(("/api", "/health"))]
    assert [path for _, path, _ in routes] == [
        "/health", "/api/chat", "/api/chat/stream", "/api/sessions/{session_id}", "/api/sessions/{session_id}",
        "/api/documents", "/api/documents", "/api/documents/{name:path}", "/api/documents/{name:path}",
        "/api/search"]
    assert routes[2] == (["POST"], "/api/chat/stream",
                         "流式回答（SSE）：先推送 token 事件，最后推送带出处的 done 事件。")


def test_upload_list_search_download_delete(client):
    r = upload(client, "moon.md", "月光书店的店猫名叫芝麻，是一只橘猫。\n")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] and report["name"] == "moon.md" and report["status"] == "新增"
    assert report["chunks"] >= 1
    assert report["report"] and any("moon.md" in line for line in report["report"])

    docs = {d["name"]: d for d in client.get("/api/documents").json()["documents"]}
    assert docs["moon.md"]["uploaded"] and not docs["coffee.md"]["uploaded"]

    hits = client.get("/api/search", params={"q": "月光书店的店猫叫什么", "k": 2}).json()["results"]
    assert len(hits) <= 2 and hits[0]["source"] == "moon.md"
    answer = client.post("/api/chat", json={"question": "月光书店的店猫叫什么名字？"}).json()
    assert "芝麻" in answer["answer"] and answer["sources"][0]["source"] == "moon.md"

    original = client.get("/api/documents/moon.md")
    assert original.status_code == 200 and "芝麻" in original.text

    r = client.delete("/api/documents/moon.md")
    assert r.status_code == 200 and r.json()["deleted"]
    assert "moon.md" not in [d["name"] for d in client.get("/api/documents").json()["documents"]]
    hits = client.get("/api/search", params={"q": "月光书店的店猫叫什么", "k": 4}).json()["results"]
    assert all(h["source"] != "moon.md" for h in hits)
    assert client.get("/api/documents/moon.md").status_code == 404


def test_reupload_replaces_old_version(client):
    assert upload(client, "version.md", "版本测试：暗号是苹果。\n").json()["status"] == "新增"
    assert upload(client, "version.md", "版本测试：暗号是香蕉。\n").json()["status"] == "更新"
    assert upload(client, "version.md", "版本测试：暗号是香蕉。\n").json()["status"] == "跳过"
    hits = client.get("/api/search", params={"q": "版本测试的暗号", "k": 5}).json()["results"]
    texts = [h["snippet"] for h in hits if h["source"] == "version.md"]
    assert texts and all("香蕉" in t and "苹果" not in t for t in texts)
    client.delete("/api/documents/version.md")


def test_docs_and_openapi_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/api/chat", "/api/chat/stream", "/api/documents", "/api/search"} <= set(paths)


def test_ui_is_mounted_at_root(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    config = client.get("/config").json()
    assert config["title"] == "个人知识库助手"


# ---- 错误输入 ---------------------------------------------------------------------------
@pytest.mark.parametrize("body, message", [
    ({"question": ""}, "问题不能为空"),
    ({"question": "   \n "}, "问题不能为空"),
    ({"question": "问" * 2001}, "问题太长"),
    ({}, "缺少问题"),
    ({"question": 123}, "类型不对"),
    ({"question": "你好", "session_id": "../../etc"}, "session_id 格式不对"),
])
def test_bad_questions_rejected_in_chinese(client, body, message):
    for path in ("/api/chat", "/api/chat/stream"):
        r = client.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert message in r.json()["detail"]


def test_invalid_json_rejected(client):
    r = client.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]


def test_question_at_limit_is_accepted(client):
    assert client.post("/api/chat", json={"question": "咖啡" * 1000}).status_code == 200


@pytest.mark.parametrize("params, message", [
    ({"q": ""}, "问题不能为空"), ({"q": "咖啡", "k": 0}, "k 必须"), ({"q": "咖啡", "k": "x"}, "类型不对"),
    ({}, "缺少查询"),
])
def test_bad_search_rejected(client, params, message):
    r = client.get("/api/search", params=params)
    assert r.status_code == 422 and message in r.json()["detail"]


@pytest.mark.parametrize("name, saved", [
    ("../../evil.md", "evil.md"),
    ("/etc/evil2.md", "evil2.md"),
    ("C:\\Users\\a\\evil3.md", "evil3.md"),
    ("..\\..\\evil4.md", "evil4.md"),
    ("笔记 (1).md", "笔记 (1).md"),
    ("a;rm -rf $HOME.txt", "a_rm -rf _HOME.txt"),
])
def test_upload_names_are_sanitised(client, assistant, name, saved):
    r = upload(client, name, f"文件名测试 {saved}。\n")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == saved
    uploads = assistant.config.uploads_dir
    assert (uploads / saved).is_file()
    assert not (uploads.parent / "evil.md").exists() and not Path("/etc/evil2.md").exists()
    assert client.delete(f"/api/documents/{saved}").status_code == 200


@pytest.mark.parametrize("name, status, message", [
    ("../../etc/passwd", 415, "没有扩展名"),
    ("virus.exe", 415, "不支持的文件类型 .exe"),
    ("bad\x00name.md", 400, "控制字符"),
    ("", 400, ""),
    (".md", 415, ""),
])
def test_bad_upload_names_rejected(name, status, message):
    with pytest.raises(AppError) as err:
        sanitize_filename(name)
    assert err.value.status == status and message in err.value.message


def test_bad_upload_type_over_http(client):
    r = upload(client, "virus.exe", b"MZ\x90\x00")
    assert r.status_code == 415 and "只接受" in r.json()["detail"]


def test_oversized_and_empty_uploads_rejected(client, assistant):
    r = upload(client, "big.txt", "大" * (assistant.config.max_upload_bytes // 3 + 10))
    assert r.status_code == 413 and "文件过大" in r.json()["detail"]
    r = upload(client, "huge.txt", b"x" * (3 * assistant.config.max_upload_bytes))  # 中间件直接拒绝
    assert r.status_code == 413 and "文件过大" in r.json()["detail"]
    r = upload(client, "empty.md", b"")
    assert r.status_code == 400 and "空" in r.json()["detail"]
    assert not any(p.name in {"big.txt", "huge.txt", "empty.md"} for p in assistant.config.uploads_dir.iterdir())


def multipart(name: str, data: bytes, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    """手写一个 multipart 上传体（好把它分块发送，不带 Content-Length）。"""
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_oversized_upload_without_content_length(client, assistant):
    """分块上传没有 Content-Length：边收边数，超过上限就 413（中文），不必收完整个文件。"""
    body, headers = multipart("chunked.txt", b"x" * (3 * assistant.config.max_upload_bytes))

    def chunks():
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    r = client.post("/api/documents", content=chunks(), headers=headers)
    assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
    assert r.status_code == 413 and r.json() == {"detail": "文件过大：上限 1 MB"}
    assert not (assistant.config.uploads_dir / "chunked.txt").exists()
    small, headers = multipart("chunked-ok.md", "分块上传的小文件。\n".encode())
    r = client.post("/api/documents", content=iter([small[:10], small[10:]]), headers=headers)
    assert r.status_code == 200, r.text
    assert client.delete("/api/documents/chunked-ok.md").status_code == 200


def test_declared_oversize_rejected_before_reading(assistant):
    """Content-Length 已超过上限：不读请求体就回 413 与中文说明。"""
    app = create_app(assistant, ui=False)
    length = str(3 * assistant.config.max_upload_bytes).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/documents", "raw_path": b"/api/documents", "root_path": "",
             "query_string": b"", "server": ("test", 80), "client": ("test", 1),
             "headers": [(b"content-length", length), (b"content-type", b"multipart/form-data; boundary=x")]}
    sent: list[dict] = []

    async def receive() -> dict:
        raise AssertionError("不该读取请求体")

    async def send(message: dict) -> None:
        sent.append(message)

    async def call() -> None:
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(call())
    assert sent[0]["status"] == 413
    assert json.loads(b"".join(m.get("body", b"") for m in sent[1:])) == {"detail": "文件过大：上限 1 MB"}


def test_corrupt_upload_leaves_store_intact(client, assistant):
    before = client.get("/health").json()["chunks"]
    for name, data in [("broken.pdf", b"%PDF-1.7\n garbage garbage"), ("fake.pdf", b"not a pdf"),
                       ("binary.txt", b"\x00\x01\x02\xff\xfe" * 50)]:
        r = upload(client, name, data)
        assert r.status_code == 422, r.text
        assert name in r.json()["detail"]
    assert client.get("/health").json()["chunks"] == before
    assert sorted(p.name for p in assistant.config.uploads_dir.iterdir()) == []
    answer = client.post("/api/chat", json={"question": "星河咖啡馆的招牌饮品是什么？"}).json()
    assert "桂花拿铁" in answer["answer"]


def test_upload_warns_about_injected_instructions_but_keeps_the_document(client):
    note = (PROJECT_ROOT / "data" / "injection" / "malicious_note.md").read_text(encoding="utf-8")  # 第 5 章的反面教材
    r = upload(client, "note.md", note)
    assert r.status_code == 200, r.text
    [warning] = r.json()["warnings"]
    assert "疑似提示注入" in warning and "忽略以上所有指令" in warning and "已照常入库" in warning
    plain = upload(client, "plain.md", "月光书店每周三晚上有读书会。\n")
    assert plain.status_code == 200 and plain.json()["warnings"] == []
    for name in ("note.md", "plain.md"):
        assert client.delete(f"/api/documents/{name}").status_code == 200


def test_upload_cannot_shadow_course_document(client):
    r = upload(client, "coffee.md", "冒名顶替的内容。\n")
    assert r.status_code == 409 and "同名" in r.json()["detail"]
    assert "桂花拿铁" in client.get("/api/documents/coffee.md").text


def test_delete_rules(client):
    r = client.delete("/api/documents/coffee.md")
    assert r.status_code == 403 and "课程自带" in r.json()["detail"]
    assert client.delete("/api/documents/nothing.md").status_code == 404
    assert client.delete("/api/documents/../coffee.md").status_code in (400, 404)
    assert client.get("/api/documents/../../etc/passwd").status_code in (400, 404)
    assert client.get("/api/documents/%2e%2e/%2e%2e/etc/passwd").status_code in (400, 404)


# ---- 模型出错 -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faulty(tiny_kb, tiny_corpus, assistant) -> TestClient:
    """同一个知识库与会话存储，但模型每次都返回 500（离线服务的故障模拟）。"""
    llm = get_chat_model(default_headers={"X-Offline-Fault": "500"}, max_retries=0)
    broken = make_assistant(tiny_kb, tiny_corpus, assistant.config.uploads_dir, llm=llm,
                            history_store=assistant.history)
    return TestClient(create_app(broken, ui=False))


def test_provider_error_keeps_history(client, faulty):
    sid = "fault-1"
    assert client.post("/api/chat", json={"question": "星河咖啡馆几点开门？",
                                          "session_id": sid}).status_code == 200
    r = faulty.post("/api/chat", json={"question": "星河咖啡馆几点打烊？", "session_id": sid})
    assert r.status_code == 502
    assert "模型服务出错（500）" in r.json()["detail"] and "对话记录已保留" in r.json()["detail"]
    with faulty.stream("POST", "/api/chat/stream",
                       json={"question": "星河咖啡馆几点打烊？", "session_id": sid}) as s:
        events = list(parse_sse(s.iter_lines()))
    assert events[-1][0] == "error" and "500" in events[-1][1]["detail"]
    messages = client.get(f"/api/sessions/{sid}").json()["messages"]
    assert len(messages) == 2 and "七点" in messages[1]["content"]
    # 模型恢复后同一会话照常继续
    r = client.post("/api/chat", json={"question": "星河咖啡馆几点打烊？", "session_id": sid})
    assert r.status_code == 200 and "十点" in r.json()["answer"]


# ---- 访问令牌 -------------------------------------------------------------------------------
def test_token_required_when_configured(tiny_kb, tiny_corpus, tmp_path):
    locked = make_assistant(tiny_kb, tiny_corpus, tmp_path / "up", token=TOKEN)
    c = TestClient(create_app(locked, ui=False))
    assert c.get("/health").status_code == 200  # 健康检查不需要令牌
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        r = c.post("/api/chat", json={"question": "咖啡"}, headers=headers)
        assert r.status_code == 401 and "未授权" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/documents").status_code == 401
    assert upload(c, "x.md", "内容").status_code == 401
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert c.post("/api/chat", json={"question": "咖啡"}, headers=ok).status_code == 200
    assert c.get("/api/search", params={"q": "咖啡"}, headers=ok).status_code == 200


def test_ui_requires_login_with_token(tiny_kb, tiny_corpus, tmp_path):
    c = TestClient(create_app(make_assistant(tiny_kb, tiny_corpus, tmp_path / "up", token=TOKEN)))
    assert c.get("/config").status_code == 401  # 界面的配置与事件接口都要先登录
    assert c.post("/login", data={"username": "谁都行", "password": "wrong"}).status_code == 400
    assert c.post("/login", data={"username": "谁都行", "password": TOKEN}).status_code == 200
    assert c.get("/config").json()["title"] == "个人知识库助手"


def test_citation_links_open_after_ui_login_but_writes_still_need_the_token(tiny_kb, tiny_corpus, tmp_path):
    """回答里的引用是普通链接（浏览器不带 Authorization 头）：界面登录后能打开；改库的接口仍然只认令牌。"""
    c = TestClient(create_app(make_assistant(tiny_kb, tiny_corpus, tmp_path / "up", token=TOKEN)))
    assert c.get("/api/documents/coffee.md").status_code == 401  # 没登录
    assert c.post("/login", data={"username": "谁都行", "password": TOKEN}).status_code == 200
    r = c.get("/api/documents/coffee.md")  # 带着登录后的会话 cookie
    assert r.status_code == 200 and "桂花拿铁" in r.text
    assert c.delete("/api/documents/coffee.md").status_code == 401
    assert c.post("/api/chat", json={"question": "咖啡"}).status_code == 401
    assert c.get("/api/documents").status_code == 401  # 只放行打开某一篇原文
    c.cookies.clear()
    assert c.get("/api/documents/coffee.md").status_code == 401


class CountCalls(BaseCallbackHandler):
    """数一数聊天模型被调用了几次（调用失败也算）。"""

    def __init__(self) -> None:
        self.calls = 0

    def on_chat_model_start(self, *args, **kwargs) -> None:
        self.calls += 1


def test_warm_up_does_not_call_the_model(tiny_kb, tiny_corpus, tmp_path):
    counter = CountCalls()
    broken = get_chat_model(default_headers={"X-Offline-Fault": "500"}, max_retries=0, callbacks=[counter])
    assistant = make_assistant(tiny_kb, tiny_corpus, tmp_path / "up", llm=broken)
    assistant.warm_up()  # 模型坏了也能预热：只检索
    assert counter.calls == 0
    with pytest.raises(Exception, match="500"):  # 计数器本身有效：真正提问时模型被调用了
        assistant.ask("星河咖啡馆几点开门？")
    assert counter.calls >= 1


def test_validate_question_unit():
    assert validate_question("  你好 ") == "你好"
    with pytest.raises(AppError):
        validate_question(None)


def test_validate_document_name_unit():
    assert validate_document_name("笔记 (1).md") == "笔记 (1).md"
    assert validate_document_name("sub/dir.md") == "sub/dir.md"  # 课程文档可以在子目录里
    with pytest.raises(AppError, match="控制字符"):
        validate_document_name("bad\x00.md")
    for name in ("sub/dir.md", "..\\evil.md", "bad\x00.md"):
        with pytest.raises(AppError, match="只能删除上传区里的文件") as err:
            validate_document_name(name, deleting=True)
        assert err.value.status == 400


def test_session_store_is_bounded():
    store = SessionStore(max_sessions=3, max_messages=4)
    for i in range(5):
        store.add_messages(f"s{i}", [HumanMessage(str(j)) for j in range(6)])
    assert store.messages("s0") == [] and len(store.messages("s4")) == 4


# ---- 真实的 uvicorn 服务 ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tiny_kb, tiny_corpus, tmp_path_factory):
    app = create_app(make_assistant(tiny_kb, tiny_corpus, tmp_path_factory.mktemp("up-real"), token=TOKEN))
    with serve_in_thread(app) as base:
        yield base


@pytest.mark.slow
def test_real_server_end_to_end(server, tmp_path):
    with AssistantClient(server, token=TOKEN) as api:
        assert api.health()["status"] == "ok"
        assert "桂花拿铁" in api.chat("星河咖啡馆的招牌饮品是什么？")["answer"]
        events = list(api.stream("青藤植物园最古老的树是什么？"))
        assert events[0][0] == "token" and events[-1][0] == "done"
        assert events[-1][1]["sources"][0]["source"] == "garden.md"
        doc = tmp_path / "lake.md"
        doc.write_text("镜湖公园的游船每小时租金 60 元。\n", encoding="utf-8")
        assert api.upload(doc)["ok"]
        assert api.search("镜湖公园游船租金", k=1)[0]["source"] == "lake.md"
        assert "lake.md" in [d["name"] for d in api.documents()]
        api.delete("lake.md")
        with pytest.raises(ApiError) as err:
            api.chat("")
        assert err.value.status == 422
    with pytest.raises(ApiError) as err:
        AssistantClient(server).documents()
    assert err.value.status == 401
    assert httpx.get(server + "/").status_code in (200, 401)  # 界面要求登录


@pytest.mark.slow
def test_real_server_concurrent_requests(server):
    questions = {
        "星河咖啡馆的招牌饮品是什么？": ("coffee.md", "桂花拿铁"),
        "青藤植物园最古老的树是什么？": ("garden.md", "银杏"),
        "期末考试在哪里？": ("notes.txt", "302"),
    }
    jobs = [q for q in questions for _ in range(6)]

    def ask(question: str) -> tuple[str, dict]:
        with AssistantClient(server, token=TOKEN) as api:
            if len(question) % 2:
                return question, list(api.stream(question))[-1][1]
            return question, api.chat(question)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(ask, jobs))
    assert len(results) == len(jobs)
    for question, body in results:
        source, fact = questions[question]
        assert fact in body["answer"] and body["sources"][0]["source"] == source


# ---- 命令行、镜像与"不打电话回家" ----------------------------------------------------------
@pytest.mark.slow
def test_cli_starts_api_and_ui(tiny_corpus, tmp_path):
    """python -m helpers.app 在子进程里启动（小文档目录、临时向量库），然后停止。"""
    env = {**os.environ, "VECTOR_DB_DIR": str(tmp_path / "db")}
    args = ("--corpus-dir", str(tiny_corpus), "--uploads-dir", str(tmp_path / "up"), "--collection", "cli-test")
    with serve_in_subprocess(*args, env=env, timeout=180) as base:
        health = httpx.get(base + "/health").json()
        assert health["documents"] == 3 and health["provider"] == "offline"
        with AssistantClient(base) as api:
            assert "银杏" in api.chat("青藤植物园最古老的树是什么？")["answer"]
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_app_makes_no_external_connections(assistant, monkeypatch):
    """建应用、打开界面、问答、上传：只连本机（Gradio 的统计上报已关闭）。"""
    seen: list[object] = []
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        seen.append(address)
        return real_connect(self, address)

    def lookup(host, *args, **kwargs):
        seen.append(host)
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    c = TestClient(create_app(assistant))
    assert c.get("/").status_code == 200 and c.get("/config").status_code == 200
    assert c.post("/api/chat", json={"question": "星河咖啡馆几点开门？"}).status_code == 200
    hosts = {a[0] if isinstance(a, tuple) else a for a in seen}
    assert hosts <= {"127.0.0.1", "localhost", "::1"}, hosts


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("APP_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("APP_UPLOADS_DIR", "data/my-uploads")
    monkeypatch.setenv("APP_CORPUS_DIR", str(tmp_path))
    config = config_from_env("t")
    assert config.max_upload_bytes == 5 * 1024 * 1024 and config.token == "t"
    assert config.uploads_dir == PROJECT_ROOT / "data" / "my-uploads"  # 相对路径从项目根目录算
    assert corpus_from_env() == tmp_path
    monkeypatch.setenv("APP_MAX_UPLOAD_MB", "二十")
    with pytest.raises(ConfigError, match="不是数字"):
        config_from_env()
    monkeypatch.setenv("APP_CORPUS_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="不是一个目录"):
        corpus_from_env()


def test_allowed_origins_from_environment(monkeypatch):
    assert config_from_env().allowed_origins == ()  # 默认：只有本站页面能改知识库
    monkeypatch.setenv("APP_ALLOWED_ORIGINS", " http://localhost:5173/ , https://kb.example.edu ")
    assert config_from_env().allowed_origins == ("http://localhost:5173", "https://kb.example.edu")
    monkeypatch.setenv("APP_ALLOWED_ORIGINS", "localhost:5173")
    with pytest.raises(ConfigError, match="不是网页来源"):
        config_from_env()


def test_cli_settings_override_environment(monkeypatch, tmp_path):
    """命令行参数优先于环境变量；多进程时同样的值经环境变量传给工作进程。"""
    args = parse_args(["--uploads-dir", "data/cli-uploads", "--max-upload-mb", "3", "--corpus-dir", str(tmp_path)])
    overrides = cli_overrides(args)
    assert overrides == {"APP_UPLOADS_DIR": "data/cli-uploads", "APP_MAX_UPLOAD_MB": "3.0",
                         "APP_CORPUS_DIR": str(tmp_path)}
    monkeypatch.setenv("APP_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("APP_COLLECTION", "from-env")
    config = config_from_env("t", overrides)
    assert config.max_upload_mb == 3 and config.uploads_dir == PROJECT_ROOT / "data" / "cli-uploads"
    assert corpus_from_env(overrides) == tmp_path and collection_from_env(overrides) == "from-env"
    assert collection_from_env({"APP_COLLECTION": "from-cli"}) == "from-cli"
    assert config_from_env().max_upload_mb == 5  # 没有命令行参数时读环境变量
    assert cli_overrides(parse_args([])) == {}


def test_app_dockerfile_runs_the_cli():
    """镜像的 CMD 就是 python -m helpers.app：参数能被解析，COPY 的文件都存在。"""
    dockerfile = PROJECT_ROOT / "docker" / "app.Dockerfile"
    lines = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8")).splitlines()
    steps = [line.split(" ", 1) for line in lines if line.strip() and not line.startswith("#")]
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd[:3] == ["python", "-m", "helpers.app"]
    args = parse_args(cmd[3:])
    assert (args.host, args.port) == ("0.0.0.0", 7860)
    for word, rest in steps:
        if word == "COPY":
            sources = [s for s in shlex.split(rest) if not s.startswith("--")][:-1]
            assert all((PROJECT_ROOT / s).exists() for s in sources), rest


@pytest.mark.slow
def test_load_test_against_real_server(server, capsys):
    results = load.run(server, levels=[4], requests=12, token=TOKEN)
    assert len(results) == 1 and results[0].errors == 0 and results[0].requests == 12
    assert 0 < results[0].p50_ms <= results[0].p95_ms <= results[0].max_ms
    assert "并发   4：12 个请求，0 个错误" in capsys.readouterr().out
    streamed = load.run(server, levels=[2], requests=4, stream=True, token=TOKEN)
    assert streamed[0].errors == 0 and streamed[0].first_token_p50_ms is not None
    with pytest.raises(ValueError, match="只允许本机地址"):
        load.run("http://example.com", levels=[1], requests=1)
