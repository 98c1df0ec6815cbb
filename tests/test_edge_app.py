"""知识库助手在边界上的输入与密钥：可靠性探测 F7、F8、F10、F12、F13、F17 的失败用例，每个都应是 4xx 与一句中文。"""

from __future__ import annotations

import json
import logging

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatResult

from helpers.app import AppConfig, Assistant, create_app
from helpers.app.client import AssistantClient, parse_sse
from helpers.app.server import redact_logs
from helpers.errors import AppError, describe_error, redact
from tests.support.factories import make_assistant

KEY = "sk-live-SECRET0123456789abcdefXYZ"
ZH_TOKEN = "课程口令2026"
FOREIGN = "http://localhost:18300"  # 探测用的另一个本机网页


@pytest.fixture(scope="module")
def assistant(tiny_kb, tiny_corpus, tmp_path_factory) -> Assistant:
    return make_assistant(tiny_kb, tiny_corpus, tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="module")
def client(assistant) -> TestClient:
    return TestClient(create_app(assistant, ui=False))


def upload(client: TestClient, name: str, text: str, **kw) -> httpx.Response:
    return client.post("/api/documents", files={"file": (name, text.encode("utf-8"))}, **kw)


def raw_json(body: dict) -> dict:
    """按 JSON 的 \\uXXXX 转义发出去（httpx 自己编码时不接受孤立的代理项）。"""
    return {"content": json.dumps(body).encode("ascii"), "headers": {"Content-Type": "application/json"}}


def hidden_files(assistant: Assistant) -> list[str]:
    return sorted(p.name for p in assistant.config.uploads_dir.iterdir() if p.name.startswith("."))


# ---- F13：孤立的代理项 -------------------------------------------------------------------------
def test_lone_surrogate_in_question_is_a_chinese_422(client):
    body = raw_json({"question": "\ud800什么是RAG"})  # 请求体里写成 "\ud800"，服务器解出孤立的代理项
    r = client.post("/api/chat", **body)
    assert r.status_code == 422 and "无法识别的字符" in r.json()["detail"]
    r = client.post("/api/chat/stream", **body)
    assert r.status_code == 422 and "event: error" not in r.text
    r = client.get("/api/search?q=%ED%A0%80RAG")  # 网址里的坏字节按替换字符解码：照常检索
    assert r.status_code == 200


# ---- F7：令牌 ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked(tiny_kb, tiny_corpus, tmp_path_factory) -> Assistant:
    return make_assistant(tiny_kb, tiny_corpus, tmp_path_factory.mktemp("up-zh"), token=ZH_TOKEN)


@pytest.mark.parametrize("header", [b"Bearer \xe9\xe9", "Bearer 令牌".encode(), b"Bearer \xff", b"\xe4\xbb\xa4"])
def test_non_ascii_authorization_header_is_401_not_500(client, locked, header):
    c = TestClient(create_app(locked, ui=False))
    r = c.get("/api/documents", headers={"Authorization": header})
    assert r.status_code == 401 and "未授权" in r.json()["detail"]


def test_chinese_app_token_works_for_api_client_and_login(locked):
    app = create_app(locked)
    c = TestClient(app)
    ok = {"Authorization": f"Bearer {ZH_TOKEN}".encode()}
    assert c.get("/api/documents", headers=ok).status_code == 200
    assert c.get("/api/documents", headers={"Authorization": b"Bearer wrong"}).status_code == 401
    api = AssistantClient("http://testserver", token=ZH_TOKEN, client=c)
    assert api.search("咖啡")
    assert c.post("/login", data={"username": "谁", "password": ZH_TOKEN}).status_code == 200


def test_repeated_wrong_tokens_are_throttled(locked):
    c = TestClient(create_app(locked))
    for _ in range(10):
        assert c.post("/login", data={"username": "x", "password": "猜一个"}).status_code == 400
    r = c.post("/login", data={"username": "x", "password": ZH_TOKEN})
    assert r.status_code == 429 and "秒后再试" in r.json()["detail"] and int(r.headers["retry-after"]) > 0
    assert c.get("/api/documents", headers={"Authorization": f"Bearer {ZH_TOKEN}".encode()}).status_code == 429
    assert c.get("/health").status_code == 200  # 健康检查不受影响


# ---- F10：很长的中文文件名 ------------------------------------------------------------------------
@pytest.mark.parametrize("chars", [84, 119, 300])
def test_long_chinese_file_name_is_shortened_and_reuploads(client, assistant, chars):
    name = "长" * chars + ".md"
    for status in ("新增", "更新"):  # 第二次上传要先留备份（.backup- 前缀），名字不能顶到 255 字节
        r = upload(client, name, f"长文件名测试 {chars}：{status}。")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    saved = r.json()["name"]
    assert saved.endswith(".md") and saved.startswith("长") and len(saved.encode("utf-8")) <= 200
    assert hidden_files(assistant) == []  # 没有留下 .upload-* 或 .backup-*
    assert client.delete(f"/api/documents/{saved}").status_code == 200


def test_failed_write_leaves_no_temp_file(client, assistant, monkeypatch):
    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("helpers.app.service.os.replace", disk_full)
    with pytest.raises(AppError) as info:
        assistant.upload("满了.md", "磁盘满了。".encode())
    assert info.value.status == 507 and info.value.message.startswith("磁盘已满")
    assert hidden_files(assistant) == []


# ---- F12：密钥与内部错误 ---------------------------------------------------------------------------
class EchoKeyModel(BaseChatModel):
    """像某些代理那样在报错正文里回显 Authorization 头的模型。"""

    status: int = 500

    @property
    def _llm_type(self) -> str:
        return "echo-key"

    def _generate(self, *args, **kwargs) -> ChatResult:
        request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
        response = httpx.Response(self.status, request=request)
        cls = openai.InternalServerError if self.status >= 500 else openai.BadRequestError
        raise cls(f"Error code: {self.status} - upstream rejected credentials Bearer {KEY} "
                  f"(Authorization: Bearer {KEY})", response=response, body=None)


@pytest.mark.parametrize("status", [400, 500])
def test_provider_error_echoing_the_key_never_reaches_user_or_log(tiny_kb, tiny_corpus, assistant, caplog, status):
    leaky = make_assistant(tiny_kb, tiny_corpus, assistant.config.uploads_dir, llm=EchoKeyModel(status=status))
    c = TestClient(create_app(leaky, ui=False))
    with caplog.at_level(logging.WARNING, logger="helpers.app"):
        r = c.post("/api/chat", json={"question": "星河咖啡馆几点开门？"})
        with c.stream("POST", "/api/chat/stream", json={"question": "星河咖啡馆几点开门？"}) as s:
            events = list(parse_sse(s.iter_lines()))
    assert r.status_code == 502 and f"模型服务出错（{status}）" in r.json()["detail"]
    assert events[-1][0] == "error"
    shown = r.json()["detail"] + events[-1][1]["detail"]
    assert "SECRET" not in shown and "SECRET" not in caplog.text
    assert "upstream rejected credentials" in caplog.text  # 原文（遮盖后）进了日志


def test_redact_covers_keys_tokens_and_known_values():
    text = (f"Authorization: Bearer abc.def key={KEY} {{'api_key': 'zz-123456'}} token=t0k3n&x=1 "
            f"{'a1b2' * 8}.AbCdEfGhIjKlMnOp 口令是{ZH_TOKEN}")
    out = redact(text, [ZH_TOKEN])
    for secret in ("abc.def", KEY, "zz-123456", "t0k3n", "a1b2a1b2", ZH_TOKEN):
        assert secret not in out
    assert "Authorization: Bearer ***" in out and "x=1" in out
    _, message = describe_error(RuntimeError(f"boom {KEY}"), [KEY])
    assert KEY not in message


def test_server_logs_are_redacted(caplog):
    redact_logs([ZH_TOKEN])
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("uvicorn.access").info('"GET /api/search?token=%s HTTP/1.1" 200', ZH_TOKEN)
            try:
                raise RuntimeError(f"upstream said Bearer {KEY}")
            except RuntimeError:
                logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    finally:
        redact_logs([])
    assert caplog.records and ZH_TOKEN not in caplog.text and KEY not in caplog.text
    assert "Bearer ***" in caplog.records[-1].exc_text


def test_unexpected_exception_is_one_chinese_line(assistant):
    app = create_app(assistant, ui=False)

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError(f"/srv/app/secret.py {KEY}")

    r = TestClient(app, raise_server_exceptions=False).get("/api/boom")
    assert r.status_code == 500 and "服务器内部错误" in r.json()["detail"]
    assert KEY not in r.text and "/srv" not in r.text


# ---- F17：匿名提问挤掉有名字的会话 -------------------------------------------------------------------
def test_anonymous_chats_do_not_evict_named_sessions(tiny_kb, tiny_corpus, tmp_path):
    small = Assistant(tiny_kb, corpus_dir=tiny_corpus,
                      config=AppConfig(uploads_dir=tmp_path / "up", max_sessions=3))
    c = TestClient(create_app(small, ui=False))
    assert c.post("/api/chat", json={"question": "星河咖啡馆几点开门？", "session_id": "victim"}).status_code == 200
    ids = {c.post("/api/chat", json={"question": "期末考试在哪里？"}).json()["session_id"] for _ in range(8)}
    assert len(ids) == 8
    assert len(c.get("/api/sessions/victim").json()["messages"]) == 2
    last = sorted(ids)[0]  # 匿名会话拿着返回的编号照样能接着聊
    assert c.post("/api/chat", json={"question": "它在哪里？", "session_id": last}).status_code == 200


# ---- F8：别的网页 ------------------------------------------------------------------------------
def test_other_origins_cannot_write_without_a_token(assistant):
    c = TestClient(create_app(assistant))  # 带界面：Gradio 的 CORS 也在
    foreign = {"Origin": FOREIGN}
    r = upload(c, "csrf_injected.md", "跨站写进来的内容。", headers=foreign)
    assert r.status_code == 403 and "跨站" in r.json()["detail"]
    assert "csrf_injected.md" not in assistant.uploaded_names()
    assert upload(c, "same_origin.md", "本站写进来的内容。", headers={"Origin": "http://testserver"}).status_code == 200
    assert c.delete("/api/documents/same_origin.md", headers=foreign).status_code == 403
    assert c.delete("/api/documents/same_origin.md", headers={"Origin": "null"}).status_code == 403
    assert c.post("/gradio_api/upload", files={"files": ("x.md", b"x")}, headers=foreign).status_code == 403
    preflight = c.options("/api/documents/same_origin.md",
                          headers={**foreign, "Access-Control-Request-Method": "DELETE"})
    assert "access-control-allow-origin" not in preflight.headers
    assert c.delete("/api/documents/same_origin.md").status_code == 200  # 没有 Origin 的客户端（curl、笔记本）照常


def test_allowed_origin_can_call_the_api(tiny_kb, tiny_corpus, tmp_path):
    config = AppConfig(uploads_dir=tmp_path / "up", allowed_origins=(FOREIGN,))
    c = TestClient(create_app(Assistant(tiny_kb, corpus_dir=tiny_corpus, config=config), ui=False))
    r = c.post("/api/chat", json={"question": "星河咖啡馆几点开门？"}, headers={"Origin": FOREIGN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == FOREIGN


# ---- 客户端的错永远是 4xx ----------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "url", "kw"), [
    ("POST", "/api/chat", {"content": b'{"question": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/chat", {"content": b'{"question": "\\udc00"}', "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/chat", raw_json({"question": "好", "session_id": "\ud800"})),
    ("POST", "/api/chat/stream", raw_json({"question": "\udfff"})),
    ("GET", "/api/sessions/%ED%A0%80", {}),
    ("GET", "/api/documents/%ED%A0%80.md", {}),
    ("DELETE", "/api/documents/%ED%A0%80.md", {}),
    ("POST", "/api/documents", {"content": b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
                                           b"\xed\xa0\x80.md\"\r\n\r\nx\r\n--b--\r\n",
                                "headers": {"Content-Type": "multipart/form-data; boundary=b"}}),
    ("POST", "/api/documents", {"content": b"--b\r\nbroken",
                                "headers": {"Content-Type": "multipart/form-data; boundary=b"}}),
])
def test_client_errors_are_4xx_with_chinese_detail(assistant, method, url, kw):
    c = TestClient(create_app(assistant, ui=False), raise_server_exceptions=False)
    r = c.request(method, url, **kw)
    assert 400 <= r.status_code < 500, r.text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["detail"])
