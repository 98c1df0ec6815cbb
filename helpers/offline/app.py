"""离线 OpenAI 兼容服务：/v1/models、/v1/chat/completions、/v1/embeddings（第 2 章）。

可以用请求头 X-Offline-Fault 模拟故障，教学错误处理：
  401 / 403 / 429 / 500 / 503：直接返回该状态码（OpenAI 格式的错误体）；
  429*2#标签：同一标签的前 2 次请求返回 429，之后正常（演示重试）；
  timeout 或 timeout:秒数：服务端拖延后才回答（默认 10 秒），用来触发客户端超时。
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
from collections import Counter
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from helpers.offline import embeddings as emb
from helpers.offline.engine import MODEL_ID, forced_tool, respond
from helpers.text import count_tokens

FAULT_HEADER = "x-offline-fault"
_FAULT_RE = re.compile(r"^(?P<code>\d{3}|timeout)(?::(?P<secs>[\d.]+))?(?:\*(?P<times>\d+))?(?:#.*)?$")
_ERROR_TEXT = {
    401: ("Incorrect API key provided（模拟：密钥无效）", "invalid_request_error", "invalid_api_key"),
    403: ("Permission denied（模拟：无权访问该模型）", "permission_error", "permission_denied"),
    429: ("Rate limit reached（模拟：请求过于频繁，请稍后重试）", "rate_limit_error", "rate_limit_exceeded"),
    500: ("The server had an error（模拟：服务端错误）", "server_error", "server_error"),
    503: ("The engine is overloaded（模拟：服务过载）", "server_error", "overloaded"),
}


def _error(status: int, message: str, etype: str, code: str | None = None, headers=None) -> JSONResponse:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _stable_id(prefix: str, payload: Any) -> str:
    digest = hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    return f"{prefix}-{digest[:24]}"


def create_app() -> FastAPI:
    """创建离线 OpenAI 兼容应用。"""
    app = FastAPI(title="LLM Universe 离线教学模型", version="1.0")
    fault_counts: Counter[str] = Counter()
    lock = threading.Lock()

    async def check_fault(request: Request) -> JSONResponse | None:
        spec = request.headers.get(FAULT_HEADER, "").strip()
        if not spec:
            return None
        m = _FAULT_RE.match(spec)
        if not m:
            return _error(400, f"无法识别的 X-Offline-Fault：{spec!r}", "invalid_request_error")
        if m.group("times"):
            with lock:
                fault_counts[spec] += 1
                if fault_counts[spec] > int(m.group("times")):
                    return None
        code = m.group("code")
        if code == "timeout":
            await asyncio.sleep(float(m.group("secs") or 10))
            return None
        status = int(code)
        message, etype, ecode = _ERROR_TEXT.get(status, (f"模拟错误 {status}", "api_error", None))
        headers = {"retry-after-ms": "200"} if status == 429 else None
        return _error(status, message, etype, ecode, headers)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "llm-universe-offline"},
            {"id": emb.MODEL_NAME, "object": "model", "created": 0, "owned_by": "llm-universe-offline"},
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        fault = await check_fault(request)
        if fault is not None:
            return fault
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "请求体不是合法的 JSON", "invalid_request_error")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages 必须是非空列表", "invalid_request_error", "invalid_messages")
        tools, tool_choice = body.get("tools"), body.get("tool_choice")
        forced = forced_tool(tool_choice)
        if forced is not None and not tools:  # 与 OpenAI 一样：强制调用工具却没给工具，是请求写错了
            return _error(400, "tool_choice 要求调用工具，但请求里没有 tools", "invalid_request_error",
                          "invalid_tool_choice")
        if forced and forced not in {(t.get("function") or t).get("name") for t in tools if isinstance(t, dict)}:
            return _error(400, f"tool_choice 指定的工具 {forced!r} 不在 tools 里", "invalid_request_error",
                          "invalid_tool_choice")
        reply = respond(
            messages,
            tools=tools if tool_choice != "none" else None,
            tool_choice=tool_choice,
            response_format=body.get("response_format"),
            temperature=float(body.get("temperature") or 0.0),
            seed=body.get("seed"),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        )
        model = body.get("model") or MODEL_ID
        cid = _stable_id("chatcmpl", body)
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        if not body.get("stream"):
            return {
                "id": cid, "object": "chat.completion", "created": 0, "model": model,
                "system_fingerprint": "offline",
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason,
                             "logprobs": None}],
                "usage": usage,
            }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _stream(cid, model, reply, usage, include_usage), media_type="text/event-stream"
        )

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        fault = await check_fault(request)
        if fault is not None:
            return fault
        body = await request.json()
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            return _error(400, "离线嵌入只接受字符串或字符串列表（不接受 token 数组）", "invalid_request_error")
        vectors = emb.embed_texts(inputs)
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        for i, vec in enumerate(vectors):
            value: Any = (
                base64.b64encode(vec.astype(np.float32).tobytes()).decode() if as_b64 else vec.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(count_tokens(t) for t in inputs)
        return {
            "object": "list", "data": data, "model": body.get("model") or emb.MODEL_NAME,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return app


async def _stream(cid: str, model: str, reply, usage: dict[str, int], include_usage: bool):
    """把回答切成小段，按 OpenAI 的 SSE 格式逐段发送。"""

    def chunk(delta: dict[str, Any], finish: str | None = None, with_usage=None) -> str:
        payload = {
            "id": cid, "object": "chat.completion.chunk", "created": 0, "model": model,
            "system_fingerprint": "offline",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if with_usage is not None:
            payload["choices"] = []
            payload["usage"] = with_usage
        return "data: " + json.dumps(payload, ensure_ascii=False) + "\n\n"

    yield chunk({"role": "assistant", "content": ""})
    if reply.tool_calls:
        calls = [dict(c, index=i) for i, c in enumerate(reply.tool_calls)]
        yield chunk({"tool_calls": calls})
    text = reply.content
    for start in range(0, len(text), 4):
        yield chunk({"content": text[start : start + 4]})
        await asyncio.sleep(0)
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield chunk({}, None, usage)
    yield "data: [DONE]\n\n"


_APP: FastAPI | None = None
_APP_LOCK = threading.Lock()


def get_app() -> FastAPI:
    """进程内共享的离线应用（故障计数在同一进程内保持）（第 2 章）。"""
    global _APP
    with _APP_LOCK:
        if _APP is None:
            _APP = create_app()
        return _APP


