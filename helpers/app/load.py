"""本机压测：python -m helpers.app.load --clients 8,32 --requests 64（第 7 章）。

不给 --url 时先在子进程里启动一个只有 API 的服务（本机空闲端口），测完即停。
只连回环地址；请求数与总时长都有上限。可靠性场景（边上传边提问、写入后的检索……）在 helpers.app.scenarios。
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np

from helpers.app.client import parse_sse
from helpers.app.server import serve_in_subprocess

QUESTIONS = [
    "什么是检索增强生成？",
    "向量数据库有什么作用？",
    "如何评估一个 RAG 应用？",
    "提示工程有哪些基本原则？",
    "Transformer 的自注意力是什么？",
    "怎样部署大模型应用？",
    "文本为什么要切分成小块？",
    "LangChain 的链是什么？",
]
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class LoadResult:
    """一轮压测的结果（第 7 章）。"""

    clients: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    throughput_rps: float
    first_token_p50_ms: float | None = None
    answering_peak: int | None = None  # 经界面压测时：服务端同一时刻最多在回答几个（看得出是不是排着队一个个答）

    def line(self) -> str:
        """一行中文摘要（第 7 章）。"""
        ttft = (f"，首字 p50 {self.first_token_p50_ms:.0f} ms"
                if self.first_token_p50_ms is not None else "")
        peak = f"，服务端同一时刻最多在答 {self.answering_peak} 个" if self.answering_peak is not None else ""
        return (f"并发 {self.clients:>3}：{self.requests} 个请求，{self.errors} 个错误，"
                f"延迟 p50 {self.p50_ms:.0f} ms、p95 {self.p95_ms:.0f} ms、最大 {self.max_ms:.0f} ms"
                f"{ttft}，吞吐 {self.throughput_rps:.1f} 请求/秒{peak}")


def percentile_or_nan(values: list[float], q: float) -> float:
    """第 q 百分位数（线性插值）；没有数据时为 nan（第 7 章）。"""
    return float(np.percentile(values, q)) if values else float("nan")


def summarize(clients: int, requests: int, errors: int, latencies: list[float], firsts: list[float], wall: float,
              **extra: Any) -> LoadResult:
    """一轮压测的统计：延迟（秒）换成毫秒的 p50/p95/最大、吞吐、首字 p50（第 7 章）。"""
    ms = sorted(x * 1000 for x in latencies)
    return LoadResult(
        clients=clients, requests=requests, errors=errors,
        p50_ms=round(percentile_or_nan(ms, 50), 1), p95_ms=round(percentile_or_nan(ms, 95), 1),
        max_ms=round(max(ms) if ms else float("nan"), 1),
        throughput_rps=round(len(latencies) / wall, 2) if wall else 0.0,
        first_token_p50_ms=round(percentile_or_nan(sorted(x * 1000 for x in firsts), 50), 1) if firsts else None,
        **extra,
    )


async def ask_once(client: httpx.AsyncClient, question: str, stream: bool
               ) -> tuple[float, float | None]:
    """发一个问答请求，返回 (总耗时, 首字耗时)；失败抛异常（第 7 章）。"""
    start = time.perf_counter()
    body = {"question": question}
    if not stream:
        r = await client.post("/api/chat", json=body)
        r.raise_for_status()
        if not r.json().get("answer"):
            raise ValueError("回答为空")
        return time.perf_counter() - start, None
    first = None
    lines = []
    async with client.stream("POST", "/api/chat/stream", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if first is None and line.startswith("event: token"):
                first = time.perf_counter() - start  # 首字时间：第一个 token 事件到达
            lines.append(line)
    events = [event for event, _ in parse_sse(lines)]
    if "error" in events or events[-1:] != ["done"]:
        raise ValueError(f"流式回答没有正常结束：{events[-1:]}")
    return time.perf_counter() - start, first


async def run_level(base_url: str, clients: int, requests: int, stream: bool = False,
                    timeout: float = 120.0, token: str | None = None) -> LoadResult:
    """用 clients 个并发客户端发 requests 个问答请求，统计延迟与吞吐（第 7 章）。"""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    firsts: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits,
                                 headers=headers) as client:
        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    total, first = await ask_once(client, QUESTIONS[i % len(QUESTIONS)], stream)
                    latencies.append(total)
                    if first is not None:
                        firsts.append(first)
                except Exception as exc:  # 记一次错误，继续压
                    errors += 1
                    print(f"  错误：{type(exc).__name__}: {exc}", file=sys.stderr)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start

    return summarize(clients, requests, errors, latencies, firsts, wall)


def ui_level(base_url: str, clients: int, requests: int, token: str | None = None) -> LoadResult:
    """经界面压测：走浏览器同一条路（Gradio 的排队与 /respond 流式输出，用 gradio_client），统计延迟、首字，
    以及服务端同一时刻最多在回答几个（每 20 ms 读一次 /health 的 chats_answering）——界面若一次只答一个，
    这个数就是 1（第 7 章）。"""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    queue = list(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    firsts: list[float] = []
    errors = 0
    answering = [0]
    done = threading.Event()

    def sample() -> None:  # 服务端的计数：排队等着的不算，正在检索、生成的才算
        with httpx.Client(base_url=base_url, timeout=5) as http:
            while not done.is_set():
                try:
                    answering.append(int(http.get("/health").json().get("chats_answering", 0)))
                except (httpx.HTTPError, ValueError):
                    pass
                done.wait(0.02)

    def worker() -> None:
        nonlocal errors
        client = Client(base_url + "/", auth=("user", token) if token else None, verbose=False)
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
            start, first = time.perf_counter(), None
            try:
                job = client.submit(QUESTIONS[i % len(QUESTIONS)], [], f"load-{i}", api_name="/respond")
                for _update in job:  # 每一段流式输出到达一次
                    first = first or time.perf_counter()
                _, history = job.result()
                if not history or history[-1]["role"] != "assistant":
                    raise ValueError("界面没有给出回答")
                end = time.perf_counter()
                with lock:
                    latencies.append(end - start)
                    firsts.append((first or end) - start)
            except Exception as exc:  # 记一次错误，继续压
                with lock:
                    errors += 1
                print(f"  错误：{type(exc).__name__}: {exc}", file=sys.stderr)

    started = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            for future in [pool.submit(worker) for _ in range(clients)]:
                future.result()
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    return summarize(clients, requests, errors, latencies, firsts, wall, answering_peak=max(answering))


def run(base_url: str, levels: list[int], requests: int, stream: bool = False,
        token: str | None = None, max_seconds: float = 600.0, ui: bool = False) -> list[LoadResult]:
    """按并发数逐级压测；总时长超过 max_seconds 就不再开始下一级。"""
    host = urlparse(base_url).hostname
    if host not in _LOOPBACK:
        raise ValueError(f"压测只允许本机地址（127.0.0.1 / localhost），收到 {host!r}")
    results = []
    start = time.monotonic()
    for clients in levels:
        if time.monotonic() - start > max_seconds:
            print(f"已用时超过 {max_seconds:g} 秒，跳过并发 {clients}", file=sys.stderr)
            break
        # 先热身：每个进程的首个请求要加载分词词典、建 BM25 索引，不计入结果
        warm = min(clients, 8)
        if ui:
            ui_level(base_url, warm, warm, token)
            result = ui_level(base_url, clients, requests, token)
        else:
            asyncio.run(run_level(base_url, warm, warm, stream, token=token))
            result = asyncio.run(run_level(base_url, clients, requests, stream, token=token))
        print(result.line(), flush=True)
        results.append(result)
    return results


# ---- 可靠性场景（issue 16）：mixed、burst、upload-health、scale ----------------------------------
def main(argv: list[str] | None = None) -> int:
    """命令行入口：默认自己起服务、压 8 与 32 并发，各 64 个请求（第 7 章）。"""
    parser = argparse.ArgumentParser(prog="python -m helpers.app.load", description="知识库助手本机压测")
    parser.add_argument("--clients", default="8,32", help="并发客户端数，逗号分隔（默认 8,32）")
    parser.add_argument("--requests", type=int, default=64, help="每一级的请求总数（默认 64，上限 2000）")
    parser.add_argument("--url", help="压测已运行的服务（只允许本机地址）；不给则自动启动")
    parser.add_argument("--stream", action="store_true", help="压流式接口，并统计首字时间")
    parser.add_argument("--ui", action="store_true",
                        help="经界面压测（Gradio 的排队与流式输出，和浏览器同一条路），并统计同时在输出的回答数")
    parser.add_argument("--workers", type=int, default=1, help="自动启动服务时的进程数")
    parser.add_argument("--token", help="服务设置了 APP_TOKEN 时填写")
    parser.add_argument("--max-seconds", type=float, default=600, help="总时长上限（秒）")
    parser.add_argument("--json", help="把结果另存为 JSON 文件")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.clients.split(",") if x.strip()]
    if not levels or min(levels) < 1 or max(levels) > 256:
        parser.error("--clients 每一项须在 1 到 256 之间")
    if not 1 <= args.requests <= 2000:
        parser.error("--requests 须在 1 到 2000 之间")

    if args.ui and (args.stream or args.workers > 1):
        parser.error("--ui 走界面：不能与 --stream 或 --workers 大于 1 同用（界面只能单进程，见第 7 章 7.8 节）")

    def go(base: str) -> list[LoadResult]:
        mode = "界面 /gradio_api（/respond）" if args.ui else "流式 /api/chat/stream" if args.stream else "/api/chat"
        print(f"压测 {mode}：每级 {args.requests} 个请求", flush=True)
        return run(base, levels, args.requests, args.stream, args.token, args.max_seconds, ui=args.ui)

    if args.url:
        results = go(args.url.rstrip("/"))
    else:
        what = "界面与 API" if args.ui else "只有 API"
        print(f"启动服务（{args.workers} 个进程，{what}）…", flush=True)
        flags = ([] if args.ui else ["--no-ui"]) + ["--workers", str(args.workers)]
        with serve_in_subprocess(*flags) as base:
            results = go(base)
    return finish(results, args.json, "results")


def finish(results: list[Any], json_path: str | None, key: str) -> int:
    """命令行的收尾：给了 json_path 就把结果存成 {key: [...]}；有错误时退出码为 1（第 7 章）。"""
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({key: [asdict(r) for r in results]}, f, ensure_ascii=False, indent=1)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
