"""调用知识库助手 API 的小客户端：普通问答、流式问答（解析 SSE）、上传与检索（第 7 章）。"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """把 SSE 文本行解析成 (事件名, JSON 数据)；空行表示一个事件结束（第 7 章）。"""
    event, data = "message", []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue  # 注释行（心跳）
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, json.loads("\n".join(data))


class ApiError(RuntimeError):
    """API 返回了错误：status 是状态码，detail 是中文说明（第 7 章）。"""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}：{detail}")
        self.status = status
        self.detail = detail


class AssistantClient:
    """知识库助手的 Python 客户端，用 httpx 访问 HTTP 接口（第 7 章）。"""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 120.0,
                 client: httpx.Client | None = None) -> None:
        # 按 UTF-8 字节发送：httpx 默认只收 ASCII 的请求头，中文令牌也要能用
        headers = {"Authorization": f"Bearer {token}".encode()} if token else {}
        self.http = client or httpx.Client(base_url=base_url, timeout=timeout)
        self.http.headers.update(headers)

    def __enter__(self) -> AssistantClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """关闭连接（第 7 章）。"""
        self.http.close()

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, str(detail))
        return response.json()

    def health(self) -> dict[str, Any]:
        """GET /health（第 7 章）。"""
        return self._check(self.http.get("/health"))

    def chat(self, question: str, session_id: str | None = None) -> dict[str, Any]:
        """POST /api/chat：一次拿到完整回答（第 7 章）。"""
        return self._check(self.http.post("/api/chat", json={"question": question,
                                                               "session_id": session_id}))

    def stream(self, question: str, session_id: str | None = None) -> Iterator[tuple[str, Any]]:
        """POST /api/chat/stream：逐个产出 ("token", {"text"}) 事件，最后是 "done" 或 "error"（第 7 章）。"""
        body = {"question": question, "session_id": session_id}
        with self.http.stream("POST", "/api/chat/stream", json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            yield from parse_sse(response.iter_lines())

    def upload(self, path: str | Path, name: str | None = None) -> dict[str, Any]:
        """POST /api/documents：上传一个文件并入库（第 7 章）。"""
        path = Path(path)
        files = {"file": (name or path.name, path.read_bytes())}
        return self._check(self.http.post("/api/documents", files=files))

    def documents(self) -> list[dict[str, Any]]:
        """GET /api/documents。"""
        return self._check(self.http.get("/api/documents"))["documents"]

    def delete(self, name: str) -> dict[str, Any]:
        """DELETE /api/documents/{name}（第 7 章）。"""
        return self._check(self.http.delete(f"/api/documents/{name}"))

    def search(self, query: str, k: int = 4) -> list[dict[str, Any]]:
        """GET /api/search。"""
        return self._check(self.http.get("/api/search", params={"q": query, "k": k}))["results"]
