"""“另一个模型”：回环地址上的 OpenAI 兼容聊天服务，回答的措辞与离线教学模型完全不同（检查承诺 2 用）。

真实模型的回答各不相同；笔记本的单元格若依赖离线模型的措辞（如断言回答里有“不知道”），换成它就会报错。
它不模仿任何真实模型，只保证：回答是普通中文句子、随问题而变、同一问题得到同一回答；支持流式与用量。
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODEL_ID = "other-model"


def reply_for(messages: list[dict[str, Any]]) -> str:
    """按最后一条用户消息给出一句固定措辞的回答（不含“离线”“不知道”等离线模型的用语）。"""
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
    if isinstance(last, list):
        last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
    tag = hashlib.md5(str(last).encode("utf-8")).hexdigest()[:6]
    return f"好的。这是另一个模型（编号 {tag}）的回答，措辞与离线模型不同：我会尽量回答你的问题。"


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> str:
    body = {"id": "other", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def create_app() -> FastAPI:
    """/health、/v1/models 与 /v1/chat/completions（含流式、stream_options.include_usage）。"""
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "tests"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        text = reply_for(body.get("messages", []))
        model = body.get("model") or MODEL_ID
        usage = {"prompt_tokens": 20, "completion_tokens": len(text), "total_tokens": 20 + len(text)}
        if not body.get("stream"):
            return JSONResponse({
                "id": "other", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            })

        def events() -> Iterator[str]:
            yield _chunk(model, {"role": "assistant", "content": ""}, None)
            for i in range(0, len(text), 8):
                yield _chunk(model, {"content": text[i:i + 8]}, None)
            yield _chunk(model, {}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                end = {"id": "other", "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": model, "choices": [], "usage": usage}
                yield f"data: {json.dumps(end)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
