"""知识库助手的后端：FastAPI 路由，含问答、流式问答（SSE）、文档管理与检索（第 7 章）。"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO
from urllib.parse import quote, urlsplit

import anyio
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpers.app.disk import DISK_FULL_ANY, DISK_FULL_STATUS, is_disk_full, is_store_full, mark_store_full, store_dir
from helpers.app.service import BODY_TIMEOUT, AppConfig, Assistant, UploadResult, document_url, new_session_id
from helpers.app.validation import UNAUTHORIZED, BearerGuard, bearer_ok, has_bad_unicode
from helpers.errors import AppError
from helpers.rag import RagAnswer, Source

UPLOAD_PATH = "/api/documents"
FORM_OVERHEAD = 64 * 1024  # 上传表单的边界、字段名等另算 64 KB 余量
JSON_BODY_LIMIT = 64 * 1024  # 问答接口的 JSON 请求体上限：问题最多 2000 字（UTF-8 约 6 KB），再留足余量
JSON_TOO_BIG = (f"请求体超过问答接口的上限 {JSON_BODY_LIMIT // 1024} KB：问题最多 2000 字，"
                "不要把文档塞进问题里（文档请上传）")
CHAT_PATHS = ("/api/chat", "/api/chat/stream")
MCP_PATH = "/mcp"
MCP_NOT_STARTED = "MCP 端点还没启动：请用 uvicorn（或 python -m helpers.app）运行应用，测试里用 with TestClient(app)"
CROSS_SITE = "跨站请求被拒绝：别的网页不能改这个知识库；请在助手自己的页面（或用 API 客户端）操作"
UNREADABLE = "请求体无法解析：请发送 UTF-8 编码的 JSON，或格式正确的 multipart 表单"
BODY_STALLED = ("请求体停住了：{seconds:g} 秒没有收到新的数据，连接已断开；"
                "请检查网络后重新发送（上传大文件时请保持客户端一直在发送）")
INTERNAL = "服务器内部错误：请稍后重试；一直出错时请管理员查看服务器日志"
_FIELD_NAMES = {"question": "问题 question", "session_id": "会话 session_id", "q": "查询 q",
                "k": "条数 k", "file": "文件 file", "body": "请求体"}


# ---- 请求与响应的形状 -------------------------------------------------------------------
class ChatRequest(BaseModel):
    """问答请求（第 7 章）。"""

    question: str = Field(description="要问的问题（1–2000 字）", examples=["什么是检索增强生成？"])
    session_id: str | None = Field(
        default=None, description="会话编号：同一编号的多次提问共享对话历史；不传则自动生成",
        examples=["demo-1"])

    @field_validator("question", "session_id")
    @classmethod
    def _utf8_only(cls, value: str | None) -> str | None:
        """孤立的代理项（如 \\ud800）编不成 UTF-8：在这里就给 422，回显时也不会出错。"""
        if value is not None and has_bad_unicode(value):
            raise PydanticCustomError("bad_unicode", "不是合法的 Unicode 文字")
        return value


class SourceOut(BaseModel):
    """回答引用的一条资料（第 7 章）。"""

    n: int
    source: str
    page: int | None
    snippet: str
    score: float | None
    label: str
    url: str

    @classmethod
    def of(cls, source: Source) -> SourceOut:
        """由 rag.Source 生成，附上出处标签和能打开原文的链接（第 7 章）。"""
        return cls(n=source.n, source=source.source, page=source.page, snippet=source.snippet,
                   score=source.score, label=source.label(), url=document_url(source.source))


class ChatResponse(BaseModel):
    """问答结果：回答、引用的资料、是否拒答（第 7 章）。"""

    answer: str
    sources: list[SourceOut]
    refused: bool
    standalone_question: str
    session_id: str

    @classmethod
    def of(cls, answer: RagAnswer, session_id: str) -> ChatResponse:
        """由 RagAnswer 生成（第 7 章）。"""
        return cls(answer=answer.answer, sources=[SourceOut.of(s) for s in answer.sources],
                   refused=answer.refused, standalone_question=answer.standalone_question,
                   session_id=session_id)


class TokenEvent(BaseModel):
    """流式回答的一个片段：SSE 的 token 事件（第 7 章）。"""

    text: str


class ErrorOut(BaseModel):
    """出错时给用户的中文说明；问答接口还带上会话编号（第 7 章）。"""

    detail: str
    session_id: str | None = None


def sse(event: str, data: dict[str, Any]) -> str:
    """一条服务器推送事件（SSE）：event 行 + data 行（JSON）+ 空行（第 7 章）。"""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# ---- 依赖项 -------------------------------------------------------------------------------
def get_assistant(request: Request) -> Assistant:
    """依赖项：当前应用的助手（create_api 把它放在 app.state 上）（第 7 章）。"""
    return request.app.state.assistant


AssistantDep = Annotated[Assistant, Depends(get_assistant)]


def require_token(request: Request, assistant: AssistantDep) -> None:
    """依赖项：设置了访问令牌时，检查 Authorization: Bearer <令牌>（第 7 章）。"""
    token = assistant.config.token
    if not token:
        return
    if not bearer_ok(request.scope, token):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def require_token_or_login(request: Request, assistant: AssistantDep) -> None:
    """依赖项（只用于查看原文）：Bearer 令牌，或界面登录后的会话 cookie 都行（第 7 章）。

    回答里的引用是普通链接，浏览器点开时不会带 Authorization 头；界面登录过的人凭 Gradio 的会话 cookie 就能打开。
    只放行这个只读的 GET：改知识库的接口仍然只认令牌（cookie 会被别的网页顺带发出）。
    """
    logged_in = getattr(request.app.state, "ui_logged_in", None)
    if logged_in is not None and logged_in(request):
        return
    require_token(request, assistant)


@dataclass
class ChatStream:
    """一次流式回答：会话编号与还没开始的片段异步迭代器（第 7 章）。"""

    session_id: str
    pieces: AsyncIterator[str | RagAnswer]


def open_stream(req: ChatRequest, assistant: AssistantDep) -> ChatStream:
    """依赖项：在响应开始之前检查问题，不合格就抛出 AppError，客户端收到 422 而不是半截的流（第 7 章）。"""
    session_id = req.session_id or new_session_id()
    return ChatStream(session_id, assistant.astream(req.question, session_id))


# ---- 接口：每个都只是 Assistant 方法的一层薄包装 ------------------------------------------
def health(assistant: AssistantDep) -> dict[str, Any]:
    """健康检查：当前提供方、模型与知识库块数。"""
    return assistant.health()


def chat(req: ChatRequest, assistant: AssistantDep) -> ChatResponse | JSONResponse:
    """回答一个问题，返回回答与引用的资料。"""
    session_id = req.session_id or new_session_id()
    try:
        answer = assistant.ask(req.question, session_id)
    except Exception as exc:  # 模型出错：告诉用户，历史不受影响
        status, message = assistant.explain_failure(exc)
        return JSONResponse(ErrorOut(detail=message, session_id=session_id).model_dump(),
                            status_code=status)
    return ChatResponse.of(answer, session_id)


async def chat_stream(stream: Annotated[ChatStream, Depends(open_stream)],
                      assistant: AssistantDep) -> AsyncIterator[ServerSentEvent]:
    """流式回答（SSE）：先推送 token 事件，最后推送带出处的 done 事件。"""
    # 异步生成器：不占线程，也不阻塞事件循环；客户端断开时 FastAPI 取消它，模型的流式请求随之关闭（不再白白生成、计费）
    try:
        async for piece in stream.pieces:
            if isinstance(piece, RagAnswer):
                yield ServerSentEvent(event="done", data=ChatResponse.of(piece, stream.session_id))
            elif piece:
                yield ServerSentEvent(event="token", data=TokenEvent(text=piece))
    except Exception as exc:  # 生成中途出错：推送 error 事件，而不是让连接断掉
        _, message = assistant.explain_failure(exc)
        yield ServerSentEvent(event="error", data=ErrorOut(detail=message, session_id=stream.session_id))


def session(session_id: str, assistant: AssistantDep) -> dict[str, Any]:
    """某个会话的历史消息。"""
    return {"session_id": session_id, "messages": assistant.session_messages(session_id)}


def clear_session(session_id: str, assistant: AssistantDep) -> dict[str, Any]:
    """清空某个会话的历史。"""
    assistant.clear_session(session_id)
    return {"session_id": session_id, "cleared": True}


async def upload(assistant: AssistantDep,
                 file: UploadFile = File(description="PDF、Word、PPT、Excel/CSV、网页、字幕、Markdown 或 TXT 文件")
                 ) -> UploadResult:
    """上传一个文档并入库，返回入库报告。"""
    limit = assistant.config.max_upload_bytes
    data = await file.read(limit + 1)  # 多读一个字节就知道是否超限（表单余量之内的超限文件走到这里）
    if len(data) > limit:
        raise AppError(too_big(assistant.config), 413)
    return await run_in_threadpool(assistant.upload, file.filename or "", data)


def documents(assistant: AssistantDep) -> dict[str, Any]:
    """知识库里的全部文档。"""
    docs = assistant.documents()
    return {"documents": docs, "count": len(docs)}


def _read_blocks(handle: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """分块读一个已打开的文件，读完关掉。"""
    with handle:
        while block := handle.read(size):
            yield block


def document(name: str, assistant: AssistantDep) -> StreamingResponse:
    """下载（查看）某个文档的原文件。"""
    path = assistant.document_path(name)
    media = {".pdf": "application/pdf", ".md": "text/markdown; charset=utf-8",
             ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
             ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             ".csv": "text/csv; charset=utf-8"}.get(
        path.suffix.lower(), "text/plain; charset=utf-8")  # .html 也按纯文本给：上传的网页里的脚本不能在本站运行
    # 先打开再响应：文件在这之后被删（有人同时删除这个文档），打开的句柄照样读完；没打开成就是 404，不是 500
    # （FileResponse 到发送时才按路径打开，删除恰好夹在中间时连接会断掉）
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise AppError(f"没有找到文档 {name!r}：它刚被删除", 404) from None
    quoted = quote(path.name)
    disposition = (f'inline; filename="{path.name}"' if quoted == path.name
                   else f"inline; filename*=utf-8''{quoted}")
    headers = {"Content-Length": str(os.fstat(handle.fileno()).st_size), "Content-Disposition": disposition}
    return StreamingResponse(_read_blocks(handle), media_type=media, headers=headers)


def delete_document(name: str, assistant: AssistantDep) -> dict[str, Any]:
    """删除一个上传的文档（课程自带的文档不能删）。"""
    return assistant.delete(name)


def search(assistant: AssistantDep, q: str = Query(description="查询内容"),
           k: int = Query(4, description="返回条数（1–50）")) -> dict[str, Any]:
    """直接检索知识库（不经过大模型）。"""
    return {"query": q, "results": assistant.search(q, k)}


# ---- 错误处理与上传大小 -------------------------------------------------------------------
def too_big(config: AppConfig) -> str:
    """上传超限时的中文说明（第 7 章）。"""
    return f"文件过大：上限 {config.max_upload_mb:g} MB"


def _validation_message(exc: RequestValidationError) -> str:
    """把 FastAPI 的英文校验错误翻成一句中文。"""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        name = _FIELD_NAMES.get(loc[-1] if loc else "body", loc[-1] if loc else "请求体")
        kind = err.get("type", "")
        if kind == "missing":
            parts.append(f"缺少{name}")
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            parts.append(f"{name} 的类型不对")
        elif kind == "bad_unicode":
            parts.append(f"{name} 里有无法识别的字符（如孤立的代理项 \\ud800）：请删掉乱码后重试")
        elif kind == "json_invalid":
            parts.append("请求体不是合法的 JSON")
        else:
            parts.append(f"{name} 不合法")
    return "请求格式不对：" + "；".join(parts)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """没料到的异常 → 500 与一句中文；原文只进服务器日志（uvicorn 记下，经 RedactingFilter 遮盖密钥）（第 7 章）。"""
    if is_disk_full(exc):  # 上传之外的写入（如删除文档）碰上磁盘满：507 与下一步，而不是 500
        if is_store_full(exc):  # 向量库自己报的：本进程重启前不再写它，否则下一次写入会卡死整个服务
            mark_store_full(store_dir(get_assistant(request).kb.client))
        return JSONResponse({"detail": DISK_FULL_ANY}, status_code=DISK_FULL_STATUS)
    return JSONResponse({"detail": INTERNAL}, status_code=500)


async def app_error(_: Request, exc: AppError) -> JSONResponse:
    """AppError → 它的状态码与中文说明（第 7 章）。"""
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """请求格式不对 → 422 与一句中文（第 7 章）。"""
    return JSONResponse({"detail": _validation_message(exc)}, status_code=422)


async def unreadable_body(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """请求体解析不了（如不是 UTF-8 的 JSON、坏掉的表单）→ 400 与一句中文（第 7 章）。"""
    detail = exc.detail if any("\u4e00" <= ch <= "\u9fff" for ch in str(exc.detail)) else UNREADABLE
    return JSONResponse({"detail": detail}, status_code=400, headers=exc.headers)


async def body_too_large(request: Request, _: StarletteHTTPException) -> JSONResponse:
    """边收边数超过 max_body_size（如没有 Content-Length 的分块上传）→ 413 与中文说明（第 7 章）。"""
    detail = JSON_TOO_BIG if request.url.path in CHAT_PATHS else too_big(get_assistant(request).config)
    return JSONResponse({"detail": detail}, status_code=413)


class UploadSizeLimit:
    """ASGI 中间件：POST 请求声明的 Content-Length 已超过该接口的上限时直接回 413（中文），一个字节也不收（第 7 章）。

    按收到的字节计数交给 FastAPI 的 max_body_size（starlette 的 RequestBodyLimitMiddleware）；但 starlette 1.10
    对声明就超限的请求总是自己回英文纯文本 "Content Too Large"，不经过异常处理，所以这一种情况在这里先答。
    """

    def __init__(self, app: ASGIApp, limits: dict[str, tuple[int, str]]) -> None:
        self.app, self.limits = app, limits  # 路径 → (字节上限, 中文说明)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.limits:
            limit, message = self.limits[scope["path"]]
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > limit:
                await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyStalled(StarletteHTTPException):
    """请求体停住了：超过 BodyIdleTimeout 的间隔没有收到新数据（第 7 章）。"""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, BODY_STALLED.format(seconds=seconds), headers={"Connection": "close"})


class BodyIdleTimeout:
    """ASGI 中间件：收请求体时相邻两段数据间隔超过 timeout 秒就回 408（中文）并断开连接（第 7 章）。

    只管收请求体：整个请求体收完、或响应已经开始（如 SSE）之后，receive 原样放行，等客户端断开多久都行。
    手写这一小段：uvicorn 只有连接之间的空闲超时（timeout_keep_alive），请求体收到一半停住时它会一直等下去。
    """

    def __init__(self, app: ASGIApp, timeout: float = BODY_TIMEOUT) -> None:
        self.app, self.timeout = app, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        waiting = True  # 请求体还没收完、响应也还没开始

        async def timed_receive() -> Message:
            nonlocal waiting
            if not waiting:
                return await receive()
            with anyio.move_on_after(self.timeout) as deadline:
                message = await receive()
            if deadline.cancelled_caught:
                raise BodyStalled(self.timeout)
            if message["type"] != "http.request" or not message.get("more_body", False):
                waiting = False
            return message

        async def watched_send(message: Message) -> None:
            nonlocal waiting
            if message["type"] == "http.response.start":
                waiting = False
            await send(message)

        try:
            await self.app(scope, timed_receive, watched_send)
        except BodyStalled as exc:  # 应用自己没接住（如挂载的子应用）：响应还没开始就在这里答
            if not waiting:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=408, headers=exc.headers)(scope, receive, send)


def _same_origin(origin: str, headers: Headers, allowed: Iterable[str]) -> bool:
    """请求的 Origin 是否就是本站（Host 或反向代理给的 X-Forwarded-Host），或在允许名单里。"""
    if origin in allowed:
        return True
    netloc = urlsplit(origin).netloc.lower()
    hosts = {headers.get("host", "").lower(), headers.get("x-forwarded-host", "").lower()}
    return bool(netloc) and netloc in hosts


class OriginGuard:
    """ASGI 中间件：别的网页（跨站）发来的写请求（POST、DELETE……）一律 403，没设令牌时也改不了知识库（第 7 章）。

    手写这一小段：CORS 只管浏览器能否读响应，拦不住"简单请求"本身；现成的 CSRF 库要求每个客户端带令牌 cookie。
    """

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app, self.allowed = app, frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not _same_origin(origin, headers, self.allowed):
                await JSONResponse({"detail": CROSS_SITE}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LoginThrottle:
    """ASGI 中间件：同一地址 window 秒内输错令牌 max_failures 次（API 401、登录 400）后暂时一律 429（第 7 章）。

    手写这一小段：现成的限流库（如 slowapi）数的是全部请求，这里只数输错令牌的那些，也要管到 Gradio 的 /login。
    """

    def __init__(self, app: ASGIApp, max_failures: int = 10, window: float = 60.0) -> None:
        self.app, self.max_failures, self.window = app, max_failures, window
        self.failures: dict[str, deque[float]] = {}

    @staticmethod
    def _login(scope: Scope) -> bool:
        return scope["method"] == "POST" and scope["path"].endswith("/login")

    @staticmethod
    def _guarded(scope: Scope) -> bool:
        """要令牌的路径：/api/ 下的接口与第 8 章的 MCP 端点。"""
        return scope["path"].startswith("/api/") or scope["path"] == MCP_PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self._guarded(scope) or self._login(scope)):
            await self.app(scope, receive, send)
            return
        who = (scope.get("client") or ("?",))[0]
        now = time.monotonic()
        recent = self.failures.get(who, deque())
        while recent and recent[0] < now - self.window:
            recent.popleft()
        if len(recent) >= self.max_failures:
            wait = int(recent[0] + self.window - now) + 1
            await JSONResponse({"detail": f"令牌输错次数太多：请 {wait} 秒后再试"}, status_code=429,
                               headers={"Retry-After": str(wait)})(scope, receive, send)
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status and (status[0] == 401 or (status[0] == 400 and self._login(scope))):
            if len(self.failures) > 10_000:  # 地址太多时从头清：只为挡住连续猜测，不必记得很久
                self.failures.clear()
            recent.append(now)
            self.failures[who] = recent


class McpEndpoint:
    """ASGI 应用：/mcp 上的 MCP 服务（streamable HTTP），与 API 同一个知识库、同一条令牌规则（第 8 章）。

    FastMCP 的会话管理器（session_manager.run()）每个实例只能运行一次，要在应用的生命周期里运行：
    所以每次应用启动（lifespan）都新建一个 MCP 服务，停止时关掉；还没启动时请求得到 503。
    """

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.manager: Any = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """应用生命周期内运行 MCP 会话管理器（第 8 章）。"""
        # 用到时才导入：只用 TestClient（不跑 lifespan）的测试与笔记本不必导入 mcp 的 SDK
        from mcp.server.transport_security import TransportSecuritySettings  # noqa: PLC0415

        from helpers.mcp.server import build_server  # noqa: PLC0415

        # 无状态：多个工作进程（--workers）时请求落到哪个进程都行；Host/Origin 由 API 的 OriginGuard 与令牌把关，
        # 不用 SDK 只许本机 Host 的检查（助手可能监听在 0.0.0.0 或反向代理之后）
        server = build_server(self.assistant, stateless=True,
                              transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        server.streamable_http_app()  # 建出会话管理器
        async with server.session_manager.run():
            self.manager = server.session_manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await BearerGuard(self._dispatch, self.assistant.config.token)(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.manager is None:
            await JSONResponse({"detail": MCP_NOT_STARTED}, status_code=503)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


# ---- 组装 -----------------------------------------------------------------------------------
def create_api(assistant: Assistant, *, mcp: bool = True) -> FastAPI:
    """创建后端应用：全部接口都只是 Assistant 方法的一层薄包装；mcp=True 时 /mcp 上另有 MCP 端点（第 8 章）。"""
    endpoint = McpEndpoint(assistant) if mcp else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if endpoint is None:
            yield
            return
        async with endpoint.running():
            yield

    app = FastAPI(
        title="个人知识库助手 API",
        version="1.0",
        description="LLM Universe 第 7 章：基于检索增强生成的知识库问答接口。"
                    "设置了 APP_TOKEN 时，/api 下的接口与 /mcp（第 8 章的 MCP 端点）需要请求头 "
                    "Authorization: Bearer <令牌>。",
        exception_handlers={AppError: app_error, RequestValidationError: bad_request, 400: unreadable_body,
                            413: body_too_large, Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.assistant = assistant
    config = assistant.config
    # 界面与 API 同源，不需要跨域；自己配了 CORSMiddleware，Gradio 就不再放行其他本机来源（只放 allowed_origins）
    app.add_middleware(CORSMiddleware, allow_origins=list(config.allowed_origins),
                       allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(OriginGuard, allowed=config.allowed_origins)
    if config.token:
        app.add_middleware(LoginThrottle)
    body_limit = assistant.config.max_upload_bytes + FORM_OVERHEAD
    limits = {UPLOAD_PATH: (body_limit, too_big(assistant.config)),
              **{path: (JSON_BODY_LIMIT, JSON_TOO_BIG) for path in CHAT_PATHS}}
    app.add_middleware(BodyIdleTimeout, timeout=config.body_timeout)
    app.add_middleware(UploadSizeLimit, limits=limits)
    # 接口逐条登记在应用本身上，不经过 include_router：FastAPI 0.165 把包含进来的 APIRouter 整个作为一项放进
    # app.routes（第 7 章的笔记本逐条列出 app.routes），而上传接口的 max_body_size 又随这个助手的设置而变
    guarded = [Depends(require_token)]
    app.add_api_route("/health", health, methods=["GET"], tags=["状态"])
    app.add_api_route("/api/chat", chat, methods=["POST"], response_model=ChatResponse,
                      max_body_size=JSON_BODY_LIMIT, dependencies=guarded, tags=["问答"])
    app.add_api_route("/api/chat/stream", chat_stream, methods=["POST"], response_class=EventSourceResponse,
                      max_body_size=JSON_BODY_LIMIT, dependencies=guarded, tags=["问答"],
                      response_description="token 事件若干，最后一个 done 事件（或 error 事件）")
    app.add_api_route("/api/sessions/{session_id}", session, methods=["GET"], dependencies=guarded, tags=["问答"])
    app.add_api_route("/api/sessions/{session_id}", clear_session, methods=["DELETE"], dependencies=guarded,
                      tags=["问答"])
    app.add_api_route(UPLOAD_PATH, upload, methods=["POST"], max_body_size=body_limit, dependencies=guarded,
                      tags=["文档"])
    app.add_api_route(UPLOAD_PATH, documents, methods=["GET"], dependencies=guarded, tags=["文档"])
    app.add_api_route(UPLOAD_PATH + "/{name:path}", document, methods=["GET"],
                      dependencies=[Depends(require_token_or_login)],
                      tags=["文档"])
    app.add_api_route(UPLOAD_PATH + "/{name:path}", delete_document, methods=["DELETE"], dependencies=guarded,
                      tags=["文档"])
    app.add_api_route("/api/search", search, methods=["GET"], dependencies=guarded, tags=["检索"])
    if endpoint is not None:  # 原样交给 MCP 的 ASGI 应用（它自己处理 GET/POST/DELETE），不进 OpenAPI 文档
        app.router.add_route(MCP_PATH, endpoint, include_in_schema=False)
    return app
