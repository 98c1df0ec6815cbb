"""知识库助手的后端：FastAPI 路由，含问答、流式问答（SSE）、文档管理与检索（第 7 章）。"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from helpers.app.service import AppError, Assistant, answer_dict, describe_error
from helpers.rag import RagAnswer

_FIELD_NAMES = {"question": "问题 question", "session_id": "会话 session_id", "q": "查询 q",
                "k": "条数 k", "file": "文件 file", "body": "请求体"}


class ChatRequest(BaseModel):
    """问答请求（第 7 章）。"""

    question: str = Field(description="要问的问题（1–2000 字）", examples=["什么是检索增强生成？"])
    session_id: str | None = Field(
        default=None, description="会话编号：同一编号的多次提问共享对话历史；不传则自动生成",
        examples=["demo-1"])


class SourceOut(BaseModel):
    """回答引用的一条资料（第 7 章）。"""

    n: int
    source: str
    page: int | None
    snippet: str
    score: float | None
    label: str
    url: str


class ChatResponse(BaseModel):
    """问答结果：回答、引用的资料、是否拒答（第 7 章）。"""

    answer: str
    sources: list[SourceOut]
    refused: bool
    standalone_question: str
    session_id: str


def sse(event: str, data: dict[str, Any]) -> str:
    """一条服务器推送事件（SSE）：event 行 + data 行（JSON）+ 空行（第 7 章）。"""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


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
        elif kind == "json_invalid":
            parts.append("请求体不是合法的 JSON")
        else:
            parts.append(f"{name} 不合法")
    return "请求格式不对：" + "；".join(parts)


class UploadSizeLimit:
    """ASGI 中间件：上传请求的 Content-Length 超过上限时直接回 413，不必先把整个文件收下来（第 7 章）。"""

    def __init__(self, app: Any, path: str, limit: int, message: str) -> None:
        self.app, self.path, self.limit, self.message = app, path, limit, message

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit:
                await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_api(assistant: Assistant) -> FastAPI:
    """创建后端应用：全部接口都只是 Assistant 方法的一层薄包装（第 7 章）。"""
    app = FastAPI(
        title="个人知识库助手 API",
        version="1.0",
        description="LLM Universe 第 7 章：基于检索增强生成的知识库问答接口。"
                    "设置了 APP_TOKEN 时，/api 下的接口需要请求头 Authorization: Bearer <令牌>。",
    )
    app.state.assistant = assistant
    too_big = f"文件过大：上限 {assistant.config.max_upload_mb:g} MB"
    # 表单的边界、字段名等另算 64 KB 余量；没有 Content-Length 的分块上传由下面的接口按字节数检查
    app.add_middleware(UploadSizeLimit, path="/api/documents",
                       limit=assistant.config.max_upload_bytes + 64 * 1024, message=too_big)

    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    def require_token(request: Request) -> None:
        """设置了访问令牌时，检查 Authorization: Bearer <令牌>。"""
        token = assistant.config.token
        if not token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), token):
            raise HTTPException(401, "未授权：请在请求头中加入 Authorization: Bearer <APP_TOKEN>",
                                headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(require_token)]

    @app.get("/health", tags=["状态"])
    def health() -> dict[str, Any]:
        """健康检查：当前提供方、模型与知识库块数。"""
        return assistant.health()

    @app.post("/api/chat", response_model=ChatResponse, dependencies=guarded, tags=["问答"])
    def chat(req: ChatRequest) -> Any:
        """回答一个问题，返回回答与引用的资料。"""
        session_id = req.session_id or uuid.uuid4().hex
        try:
            answer = assistant.ask(req.question, session_id)
        except Exception as exc:  # 模型出错：告诉用户，历史不受影响
            status, message = describe_error(exc)
            return JSONResponse({"detail": message, "session_id": session_id}, status_code=status)
        return answer_dict(answer, session_id)

    @app.post("/api/chat/stream", dependencies=guarded, tags=["问答"],
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "token 事件若干，最后一个 done 事件（或 error 事件）"}})
    def chat_stream(req: ChatRequest) -> StreamingResponse:
        """流式回答（SSE）：先推送 token 事件，最后推送带出处的 done 事件。"""
        session_id = req.session_id or uuid.uuid4().hex
        pieces = assistant.stream(req.question, session_id)  # 问题不合法时这里就抛出 AppError

        def events() -> Iterator[str]:
            try:
                for piece in pieces:
                    if isinstance(piece, RagAnswer):
                        yield sse("done", answer_dict(piece, session_id))
                    elif piece:
                        yield sse("token", {"text": piece})
            except Exception as exc:
                _, message = describe_error(exc)
                yield sse("error", {"detail": message, "session_id": session_id})

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # 让 Nginx 不要缓冲
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @app.get("/api/sessions/{session_id}", dependencies=guarded, tags=["问答"])
    def session(session_id: str) -> dict[str, Any]:
        """某个会话的历史消息。"""
        return {"session_id": session_id, "messages": assistant.session_messages(session_id)}

    @app.delete("/api/sessions/{session_id}", dependencies=guarded, tags=["问答"])
    def clear_session(session_id: str) -> dict[str, Any]:
        """清空某个会话的历史。"""
        assistant.clear_session(session_id)
        return {"session_id": session_id, "cleared": True}

    @app.post("/api/documents", dependencies=guarded, tags=["文档"])
    async def upload(file: UploadFile = File(description="PDF、Markdown 或 TXT 文件")) -> dict[str, Any]:
        """上传一个文档并入库，返回入库报告。"""
        limit = assistant.config.max_upload_bytes
        data = await file.read(limit + 1)  # 多读一个字节就知道是否超限
        if len(data) > limit:
            raise AppError(too_big, 413)
        result = await run_in_threadpool(assistant.upload, file.filename or "", data)
        return result.to_dict()

    @app.get("/api/documents", dependencies=guarded, tags=["文档"])
    def documents() -> dict[str, Any]:
        """知识库里的全部文档。"""
        docs = assistant.documents()
        return {"documents": docs, "count": len(docs)}

    @app.get("/api/documents/{name:path}", dependencies=guarded, tags=["文档"])
    def document(name: str) -> FileResponse:
        """下载（查看）某个文档的原文件。"""
        path = assistant.document_path(name)
        media = {".pdf": "application/pdf", ".md": "text/markdown; charset=utf-8"}.get(
            path.suffix, "text/plain; charset=utf-8")
        return FileResponse(path, media_type=media, content_disposition_type="inline",
                            filename=path.name)

    @app.delete("/api/documents/{name:path}", dependencies=guarded, tags=["文档"])
    def delete_document(name: str) -> dict[str, Any]:
        """删除一个上传的文档（课程自带的文档不能删）。"""
        return assistant.delete(name)

    @app.get("/api/search", dependencies=guarded, tags=["检索"])
    def search(q: str = Query(description="查询内容"),
               k: int = Query(4, description="返回条数（1–50）")) -> dict[str, Any]:
        """直接检索知识库（不经过大模型）。"""
        return {"query": q, "results": assistant.search(q, k)}

    return app
