"""流式回答不阻塞、不泄漏（可靠性探测 F2）：客户端中途断开，上游模型的流式请求随之关闭；
流式回答进行时 /health 照常秒回。

上游是回环地址上一个很慢的 OpenAI 兼容服务（每 50 毫秒一小段，共 200 段），记下发了几段、连接何时被关。
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from langchain_openai import ChatOpenAI

from helpers.app import create_api
from tests.support.factories import make_assistant
from tests.support.servers import serve_in_thread

CHUNKS, GAP = 200, 0.05  # 全部发完要 10 秒


class SlowModel:
    """很慢的上游：/v1/chat/completions 流式发 CHUNKS 段；记下每个请求发了几段、是否被客户端关掉。"""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.closed: list[bool] = []
        self.lock = threading.Lock()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> StreamingResponse:
            await request.json()
            with self.lock:
                n = len(self.sent)
                self.sent.append(0)
                self.closed.append(False)

            async def events() -> AsyncIterator[str]:
                try:
                    for i in range(CHUNKS):
                        body = {"id": "slow", "object": "chat.completion.chunk", "created": 0, "model": "slow",
                                "choices": [{"index": 0, "delta": {"content": f"第{i}段"}, "finish_reason": None}]}
                        yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
                        self.sent[n] += 1
                        await asyncio.sleep(GAP)
                    yield "data: [DONE]\n\n"
                except asyncio.CancelledError:  # 客户端（助手）关掉了连接
                    self.closed[n] = True
                    raise

            return StreamingResponse(events(), media_type="text/event-stream")

        return app


@pytest.fixture(scope="module")
def slow() -> Any:
    model = SlowModel()
    with serve_in_thread(model.app()) as base:
        yield model, base


def _assistant(base: str, tiny_kb: Any, tiny_corpus: Path, uploads: Path) -> Any:
    llm = ChatOpenAI(model="slow", base_url=base + "/v1", api_key="sk-test", max_retries=0, timeout=30)
    return make_assistant(tiny_kb, tiny_corpus, uploads, llm=llm)


def test_disconnect_closes_the_upstream_stream(slow: Any, tiny_kb: Any, tiny_corpus: Path, tmp_path: Path) -> None:
    model, upstream = slow
    before = len(model.sent)
    app = create_api(_assistant(upstream, tiny_kb, tiny_corpus, tmp_path / "up"), mcp=False)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(3):  # 三个客户端各读到第一个 token 就走
            with client.stream("POST", "/api/chat/stream", json={"question": "星河咖啡馆的招牌饮品是什么？"}) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("event: token"):
                        break
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(model.closed[before:]):
            time.sleep(0.05)
        mine = slice(before, None)
        assert len(model.sent[mine]) == 3
        assert all(model.closed[mine]), f"上游连接没有随客户端断开而关闭：{model.closed[mine]}"
        assert max(model.sent[mine]) < CHUNKS // 2, f"断开后上游还在生成：{model.sent[mine]}"
        # 助手还活着：之后的请求照常
        assert client.get("/health").status_code == 200


def test_health_answers_while_streams_run(slow: Any, tiny_kb: Any, tiny_corpus: Path, tmp_path: Path) -> None:
    model, upstream = slow
    app = create_api(_assistant(upstream, tiny_kb, tiny_corpus, tmp_path / "up"), mcp=False)
    with serve_in_thread(app) as base:
        async def run() -> list[float]:
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                async def reader() -> None:  # 读 1 秒就走
                    async with client.stream("POST", "/api/chat/stream", json={"question": "植物园里最老的树？"}) as r:
                        stop = time.monotonic() + 1.0
                        async for _ in r.aiter_lines():
                            if time.monotonic() > stop:
                                break

                readers = [asyncio.create_task(reader()) for _ in range(8)]
                await asyncio.sleep(0.3)
                waits = []
                for _ in range(10):
                    start = time.perf_counter()
                    assert (await client.get("/health")).status_code == 200
                    waits.append(time.perf_counter() - start)
                    await asyncio.sleep(0.1)
                await asyncio.gather(*readers)
                return waits

        waits = asyncio.run(run())
    assert max(waits) < 1.0, f"流式回答进行时 /health 等了 {max(waits):.2f} 秒"
