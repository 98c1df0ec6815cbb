"""知识库助手碰上磁盘满与慢吞吞的客户端：可靠性探测 F3（磁盘满）与 F9（分块上传、停住的请求体）的失败用例。

磁盘满都是模拟的（改 shutil.disk_usage、让写临时文件抛 ENOSPC、让 Chroma 报 database or disk is full），
用户应看到 507 与一句中文，上传区不留临时文件，旧版本与库里的块原样保留，腾出空间后照常上传。
请求体的用例跑真的 uvicorn（后台线程），用原始套接字发分块上传与停住的请求体。
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import starlette.formparsers
from chromadb.errors import InternalError
from fastapi.testclient import TestClient

from helpers.app import Assistant, create_app, disk, sync_knowledge_base
from helpers.app.api import BodyIdleTimeout
from helpers.app.disk import MB, ensure_free_space, is_disk_full
from tests.support.factories import make_assistant
from tests.support.servers import serve_in_thread

OLD = "# 值班表\n\n周一由林老师值班，地点在三号楼。\n"
NEW = "# 值班表\n\n周一改由陈老师值班，地点在图书馆。\n"
CHROMA_FULL = "Error executing plan: Internal error: error returned from database: database or disk is full (code: 13)"


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    """每个测试像一个新进程：没有"碰上过磁盘满"的库。"""
    disk._FULL_STORES.clear()
    yield
    disk._FULL_STORES.clear()


@pytest.fixture
def assistant(tiny_kb, tiny_corpus, tmp_path) -> Iterator[Assistant]:
    a = make_assistant(tiny_kb, tiny_corpus, tmp_path / "uploads")
    yield a
    disk._FULL_STORES.clear()  # 像重启之后那样清理
    for name in a.uploaded_names():  # 模块共用一个库：把这个测试上传的文档删掉
        a.delete(name)


@pytest.fixture
def client(assistant) -> TestClient:
    return TestClient(create_app(assistant, ui=False), raise_server_exceptions=False)


def upload(client: TestClient, name: str, text: str) -> httpx.Response:
    return client.post("/api/documents", files={"file": (name, text.encode("utf-8"))})


def hidden_files(assistant: Assistant) -> list[str]:
    up = assistant.config.uploads_dir
    return sorted(p.name for p in up.iterdir() if p.name.startswith(".")) if up.is_dir() else []


def assert_disk_full(r: httpx.Response) -> str:
    detail = r.json()["detail"]
    assert r.status_code == 507 and detail.startswith("磁盘已满：") and "请清理磁盘空间" in detail, r.text
    return detail


def assert_old_version_kept(client: TestClient, assistant: Assistant, chunks: int) -> None:
    assert hidden_files(assistant) == []
    assert (assistant.config.uploads_dir / "值班.md").read_text(encoding="utf-8") == OLD
    assert assistant.kb.count() == chunks
    hits = client.get("/api/search", params={"q": "周一谁值班", "k": 8}).json()["results"]
    texts = " ".join(h["snippet"] for h in hits if h["source"] == "值班.md")
    assert "林老师" in texts and "陈老师" not in texts


# ---- F3：磁盘满 ------------------------------------------------------------------------------------
def test_short_disk_is_refused_before_anything_is_written(client, assistant, monkeypatch):
    assert upload(client, "值班.md", OLD).status_code == 200
    chunks = assistant.kb.count()
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10 * MB))
    ingested: list[object] = []
    monkeypatch.setattr(assistant.kb, "ingest", lambda *a, **k: ingested.append(a))
    detail = assert_disk_full(upload(client, "值班.md", NEW))
    assert "只剩 10.0 MB" in detail and "文件没有保存" in detail and "已有文档不受影响" in detail
    assert ingested == []  # 没碰 Chroma（探测 F3：写满后再写入会卡死整个服务）
    monkeypatch.undo()
    assert_old_version_kept(client, assistant, chunks)
    r = upload(client, "值班.md", NEW)  # 腾出空间之后
    assert r.status_code == 200 and r.json()["status"] == "更新"


def test_reserve_and_factor_come_from_the_config(client, assistant, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=60 * MB))
    assert upload(client, "a.md", OLD).status_code == 200  # 默认：50 MB 余量 + 文件大小 × 12，60 MB 够了
    assistant.config.min_free_mb = 100
    assert_disk_full(upload(client, "b.md", OLD))
    assistant.config.min_free_mb, assistant.config.space_factor = 1, 20 * 1024 * 1024  # 每字节算 20 MB
    assert_disk_full(upload(client, "c.md", "xyz"))
    assert assistant.uploaded_names() == ["a.md"]


def test_enospc_writing_the_temp_file_is_507_and_leaves_nothing(client, assistant, monkeypatch):
    assert upload(client, "值班.md", OLD).status_code == 200
    chunks = assistant.kb.count()
    real_fdopen = os.fdopen

    class FullFile:
        """写到一半磁盘满了：前一半落盘，然后 ENOSPC。"""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullFile(real_fdopen(fd, *a, **k)))
    detail = assert_disk_full(upload(client, "值班.md", NEW))
    assert "写不进上传区" in detail and "文件没有保存" in detail
    assert_disk_full(upload(client, "新文档.md", NEW))
    monkeypatch.undo()
    assert_old_version_kept(client, assistant, chunks)
    assert "新文档.md" not in assistant.uploaded_names()
    assert upload(client, "新文档.md", NEW).status_code == 200


def test_chroma_disk_full_during_ingest_keeps_the_file_and_stops_writes_until_restart(
        client, assistant, tiny_corpus, monkeypatch):
    """Chroma 写新块时报 database or disk is full：文件换回旧版本，不再写库（回滚的写入会卡死），重启后同步对齐。"""
    assert upload(client, "值班.md", OLD).status_code == 200
    chunks = assistant.kb.count()
    collection_type = type(assistant.kb.collection)
    real_add = collection_type.add
    calls = []

    def add_once_full(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise InternalError(CHROMA_FULL)
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(collection_type, "add", add_once_full)
    detail = assert_disk_full(upload(client, "值班.md", NEW))
    assert "写入向量库时磁盘满了" in detail and "重启助手" in detail and "问答、检索照常" in detail
    assert len(calls) == 1  # 没有再写库
    assert (assistant.config.uploads_dir / "值班.md").read_text(encoding="utf-8") == OLD
    assert hidden_files(assistant) == []
    detail = assert_disk_full(upload(client, "其他.md", NEW))  # 重启之前一律 507，不碰 Chroma
    assert "重启" in detail and len(calls) == 1
    assert client.post("/api/chat", json={"question": "周一谁值班？"}).status_code == 200
    monkeypatch.undo()
    disk._FULL_STORES.clear()  # 重启：新进程、启动时同步
    sync_knowledge_base(assistant.kb, tiny_corpus, assistant.config.uploads_dir)
    assert_old_version_kept(client, assistant, chunks)
    assert upload(client, "值班.md", NEW).status_code == 200


def test_chroma_disk_full_from_ingest_itself_is_507(client, assistant, monkeypatch):
    chunks = assistant.kb.count()

    def full(*args, **kwargs):
        raise InternalError(CHROMA_FULL)

    monkeypatch.setattr(assistant.kb, "ingest", full)
    assert_disk_full(upload(client, "新文档.md", NEW))
    assert assistant.uploaded_names() == [] and hidden_files(assistant) == []
    assert assistant.kb.count() == chunks
    monkeypatch.undo()
    disk._FULL_STORES.clear()
    assert upload(client, "新文档.md", NEW).status_code == 200


def test_unrecognised_store_error_on_a_nearly_full_disk_counts_as_disk_full(client, assistant, monkeypatch):
    """写满时 Chroma 有时只报 "Error in compaction"：磁盘所剩无几就按磁盘满答 507，而不是 500。"""
    real = shutil.disk_usage

    def compaction_error(*args, **kwargs):
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=MB // 2))
        raise InternalError("Error in compaction: Failed to apply logs to the metadata segment")

    monkeypatch.setattr(assistant.kb, "ingest", compaction_error)
    assert "重启助手" in assert_disk_full(upload(client, "新文档.md", NEW))
    assert assistant.uploaded_names() == [] and hidden_files(assistant) == []


def test_other_store_errors_still_roll_back_and_give_500(client, assistant, monkeypatch):
    assert upload(client, "值班.md", OLD).status_code == 200
    chunks = assistant.kb.count()
    real = assistant.kb.ingest
    calls = []

    def broken_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(assistant.kb, "ingest", broken_once)
    r = upload(client, "值班.md", NEW)
    assert r.status_code == 500 and "服务器内部错误" in r.json()["detail"]
    assert len(calls) == 2  # 回滚：旧版本重新入库
    monkeypatch.undo()
    assert_old_version_kept(client, assistant, chunks)


def test_disk_full_outside_upload_is_507_not_500(client, assistant, monkeypatch):
    assert upload(client, "值班.md", OLD).status_code == 200

    def full(name):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(assistant.kb, "delete_source", full)
    r = client.delete("/api/documents/值班.md")
    assert r.status_code == 507 and r.json()["detail"].startswith("磁盘已满：")
    monkeypatch.undo()
    assert "重启" in assert_disk_full(upload(client, "新文档.md", NEW))  # 库报过磁盘满：重启前不再写


@pytest.mark.parametrize("exc, full", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (InternalError(CHROMA_FULL), True),
    (sqlite3.OperationalError("database or disk is full"), True),
    (RuntimeError("wrapped"), False),
    (OSError(errno.EACCES, "Permission denied"), False),
    (InternalError("database disk image is malformed (code: 11)"), False),
])
def test_is_disk_full(exc, full):
    assert is_disk_full(exc) is full


def test_disk_full_is_found_through_the_cause_chain():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("写入失败") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)


def test_free_space_is_counted_once_per_disk(tmp_path, monkeypatch):
    """上传区与向量库在同一个磁盘：文件与向量库的需求加在一起，余量只算一次。"""
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100 * MB, 0, 63 * MB))
    ensure_free_space("a.md", MB, tmp_path / "up", tmp_path / "db", factor=12, min_free_mb=50)  # 50 + 1 + 12
    with pytest.raises(Exception, match="只剩 63.0 MB.*至少要 64.0 MB"):
        ensure_free_space("a.md", MB, tmp_path / "up", tmp_path / "db", factor=13, min_free_mb=50)
    ensure_free_space("a.md", MB, tmp_path / "up", None, factor=13, min_free_mb=50)  # Chroma 服务：库不在本机


# ---- F9：分块上传与停住的请求体（真的 uvicorn） ------------------------------------------------------
TIMEOUT = 0.5


@pytest.fixture
def server(assistant) -> Iterator[str]:
    assistant.config.body_timeout = TIMEOUT
    with serve_in_thread(create_app(assistant, ui=False), timeout=30) as base:
        yield base


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_response(sock: socket.socket, wait: float = 10.0) -> tuple[int, str, bool]:
    """读一个响应（按 Content-Length）：(状态码, 响应体, 服务器随后是否关掉了连接)。"""
    sock.settimeout(wait)
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    sock.settimeout(1.0)
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False
    return int(head.split()[1]), body.decode("utf-8"), closed


def test_chunked_oversize_upload_is_stopped_at_the_limit(server, assistant, monkeypatch):
    """没有 Content-Length 的分块上传：收到上限（1 MB + 表单余量）就回 413，不把整个文件先收进临时文件。"""
    spooled: list[int] = []

    class Spool(starlette.formparsers.SpooledTemporaryFile):
        def write(self, data):
            spooled.append(len(data))
            return super().write(data)

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Spool)
    sock = connect(server)
    sock.sendall(b"POST /api/documents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: multipart/form-data; boundary=B\r\n\r\n")
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.md"\r\n\r\n'
    sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
    block, sent, started = b"a" * (256 * 1024), 0, time.monotonic()
    with sock:
        while sent < 60 * MB and not select.select([sock], [], [], 0)[0]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
        status, body, _ = read_response(sock)
    assert status == 413 and "文件过大" in body
    assert sent < 8 * MB and time.monotonic() - started < 5  # 没等 60 MB 发完（套接字缓冲还能吞几 MB）
    assert 0 < sum(spooled) <= assistant.config.max_upload_bytes + 64 * 1024
    assert hidden_files(assistant) == []


@pytest.mark.parametrize("path, body", [
    ("/api/documents", b'--B\r\nContent-Disposition: form-data; name="file"; filename="s.md"\r\n\r\n' + b"x" * 1024),
    ("/api/chat", b'{"question": "'),
])
def test_stalled_body_gets_408_within_the_timeout(server, path, body):
    sock = connect(server)
    started = time.monotonic()
    with sock:
        kind = "multipart/form-data; boundary=B" if path == "/api/documents" else "application/json"
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                     f"Content-Length: 5000\r\n\r\n".encode() + body)
        status, detail, closed = read_response(sock)
    assert status == 408 and "请求体停住了" in detail and "重新发送" in detail
    assert closed  # 服务器不再等这个请求体，连接已断开
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 3
    assert httpx.get(server + "/health").status_code == 200


def test_slow_but_moving_upload_succeeds(server, assistant):
    """每段之间的间隔都短于超时，总时长超过超时好几倍：照常入库。"""

    def slow() -> Iterator[bytes]:
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="slow.md"\r\n\r\n'
        for line in [OLD] * 6:
            time.sleep(TIMEOUT / 3)
            yield line.encode("utf-8")
        yield b"\r\n--B--\r\n"

    started = time.monotonic()
    r = httpx.post(server + "/api/documents", content=slow(), timeout=30,
                   headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 200 and r.json()["name"] == "slow.md"
    assert time.monotonic() - started > 2 * TIMEOUT
    assert "slow.md" in assistant.uploaded_names()


def test_timeout_covers_only_the_request_body():
    """请求体收完或响应开始之后，receive 等多久都行（SSE、流式回答等客户端断开）。"""
    events: list[str] = []

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        message = await receive()  # 等客户端断开，比超时久
        events.append(message["type"])

    messages = [{"type": "http.request", "body": b"x", "more_body": True},
                {"type": "http.request", "body": b"y", "more_body": False}]
    sent: list[dict] = []

    async def receive():
        if messages:
            await anyio.sleep(0.02)
            return messages.pop(0)
        await anyio.sleep(0.3)  # 超时的三倍
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    guarded = BodyIdleTimeout(app, timeout=0.1)
    anyio.run(guarded, {"type": "http", "method": "POST", "path": "/", "headers": []}, receive, send)
    assert events == ["http.disconnect"] and sent[0]["status"] == 200


def test_stall_inside_a_mounted_app_still_gets_408():
    """应用自己没接住超时（如挂载的 Gradio 子应用吞不掉的异常）：中间件照样回 408。"""

    async def app(scope, receive, send):
        await receive()
        await receive()

    async def receive():
        await anyio.sleep(1)
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    anyio.run(BodyIdleTimeout(app, timeout=0.05), scope, receive, send)
    assert sent[0]["status"] == 408 and "请求体停住了".encode() in sent[1]["body"]


def test_gradio_upload_still_works_with_the_body_timeout(tiny_kb, tiny_corpus, tmp_path):
    a = make_assistant(tiny_kb, tiny_corpus, tmp_path / "up")
    a.config.body_timeout = TIMEOUT
    c = TestClient(create_app(a))
    r = c.post("/gradio_api/upload", files={"files": ("g.md", OLD.encode("utf-8"))})
    assert r.status_code == 200 and Path(r.json()[0]).name == "g.md"
