"""可靠性场景：python -m helpers.app.scenarios mixed,burst（第 7 章）。

每个场景在子进程里另起一个离线、隔离的服务（临时向量库与上传区，课程文档只读），测完即停、临时目录删掉：
  mixed          32 个问答客户端单独跑，再与 4 个上传客户端一起跑：p95 比值（目标 ≤ 2）、0 个错误
  burst          32 个并发检索的最慢一个：平时 vs 刚上传一篇之后（目标 ≤ 2 倍）
  upload-health  一个大文本上传时每 50 ms 查一次 /health（目标上传 ≤ 30 s 或说明原因拒绝、health p99 < 200 ms）
  scale          上传区预先放 10 000 个小文件：启动用时、上传 p50/p95、检索 p50、写入后的第一次检索
例：python -m helpers.app.scenarios all --json load.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from helpers.app.load import QUESTIONS, ask_once, finish, percentile_or_nan
from helpers.app.server import serve_in_subprocess
from helpers.netguard import offline_env

SCENARIOS = ("mixed", "burst", "upload-health", "scale")
_CAPS = {"mixed": 300.0, "burst": 180.0, "upload-health": 300.0, "scale": 1800.0}  # 各场景默认的总时长上限（秒）
_MAX_PHASE_REQUESTS = 5000  # 一个阶段最多发这么多请求，时长上限之外再兜一层底
_TOPICS = ["检索增强生成", "向量数据库", "提示工程", "文本切分", "模型部署", "应用评估", "智能体", "微调"]


@dataclass
class Latency:
    """一组请求的延迟分布（毫秒）与错误数（第 7 章）。"""

    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def text(self) -> str:
        """一行文字：p50 … ms、p95 … ms、最大 … ms（第 7 章）。"""
        return f"p50 {self.p50_ms:.0f} ms、p95 {self.p95_ms:.0f} ms、最大 {self.max_ms:.0f} ms"


@dataclass
class ScenarioResult:
    """一个场景的结果：指标、每项一行中文摘要、错误数与错误样例（第 7 章）。"""

    scenario: str
    seconds: float
    errors: int
    figures: dict[str, Any]
    lines: list[str]
    goals: dict[str, bool] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)


class _Tally:
    """记下每个请求的耗时与错误（非 2xx 或异常都算错误），错误样例留前几条。"""

    def __init__(self, samples: list[str] | None = None) -> None:
        self.ms: list[float] = []
        self.errors = 0
        self.samples = samples if samples is not None else []

    async def run(self, call: Awaitable[Any], keep_failed: bool = False) -> bool:
        """等 call 完成并计时；失败时记一次错误（keep_failed 时失败的耗时也计入分布）。"""
        start = time.perf_counter()
        try:
            await call
        except Exception as exc:  # 记一次错误，继续压
            self.errors += 1
            if keep_failed:
                self.ms.append((time.perf_counter() - start) * 1000)
            if len(self.samples) < 5:
                self.samples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return False
        self.ms.append((time.perf_counter() - start) * 1000)
        return True

    def stats(self) -> Latency:
        """延迟分布（第 7 章）。"""
        def q(x: float) -> float:
            return round(percentile_or_nan(self.ms, x), 1)
        return Latency(len(self.ms), self.errors, q(50), q(95), q(99),
                       round(max(self.ms), 1) if self.ms else float("nan"))


def _ok(r: httpx.Response) -> httpx.Response:
    """非 2xx 抛异常，带上状态码与响应开头。"""
    if not r.is_success:
        raise RuntimeError(f"HTTP {r.status_code}：{r.text[:200]}")
    return r


def small_markdown(tag: str) -> bytes:
    """压测上传用的一篇小 Markdown 文档（约 0.5 KB，内容随 tag 不同）（第 7 章）。"""
    topic = _TOPICS[sum(map(ord, tag)) % len(_TOPICS)]
    return (f"# 压测文档 {tag}\n\n这篇文档在压测时上传，编号 {tag}。它讲{topic}在知识库助手里的作用，"
            f"以及上传之后多快能被检索到。\n\n## 要点\n\n- {topic}要和检索、回答一起评估。\n"
            f"- 编号 {tag} 只出现在这篇文档里，检索它就能确认入库成功。\n").encode()


def large_text(megabytes: float, seed: int = 0) -> bytes:
    """约 megabytes MB 的 UTF-8 中文文本：正常的句读与分段，内容由固定种子生成（第 7 章）。"""
    rng = np.random.default_rng(seed)
    verbs = ["介绍", "比较", "说明", "总结", "讨论", "分析"]
    tails = ["的基本做法", "的常见问题", "在课程里的位置", "与评估指标的关系", "上线前要检查的事项"]
    target = int(megabytes * 1024 * 1024)
    parts: list[str] = []
    size = i = 0
    while size < target:
        sentences = [f"第 {i} 段{verbs[a]}{_TOPICS[b]}{tails[c]}，编号 {n}。"
                     for a, b, c, n in zip(rng.integers(0, len(verbs), 6), rng.integers(0, len(_TOPICS), 6),
                                           rng.integers(0, len(tails), 6), rng.integers(0, 10**6, 6))]
        para = "".join(sentences) + "\n\n"
        parts.append(para)
        size += len(para.encode())
        i += 1
    return "".join(parts).encode()


def seed_uploads(folder: Path, files: int) -> Path:
    """在上传区 folder 里写 files 个小 Markdown 文件（seed-00000.md …），返回 folder（第 7 章）。"""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"seed-{i:05d}.md").write_bytes(small_markdown(f"S{i:05d}"))
    return folder


def isolated_env(vector_db_dir: Path) -> dict[str, str]:
    """压测服务的环境：离线提供方、忽略 .env、禁外网、不设令牌，向量库在 vector_db_dir；只保留调用者的
    APP_STORE_PROCESS（=0 时比较进程内的嵌入式 Chroma）（第 7 章）。"""
    env = {k: v for k, v in offline_env().items()
           if not k.startswith(("APP_", "CHROMA_")) or k == "APP_STORE_PROCESS"}
    env.pop("MPLBACKEND", None)
    env["VECTOR_DB_DIR"] = str(vector_db_dir)
    return env


@contextmanager
def isolated_server(workdir: Path, uploads_dir: Path | None = None, corpus_dir: Path | None = None,
                    timeout: float = 300.0) -> Iterator[str]:
    """在子进程里起一个只有 API、离线、向量库与上传区都在 workdir 的服务，产出它的地址（第 7 章）。"""
    args = ["--no-ui", "--collection", "load", "--uploads-dir", str(uploads_dir or workdir / "uploads")]
    if corpus_dir is not None:
        args += ["--corpus-dir", str(corpus_dir)]
    with serve_in_subprocess(*args, env=isolated_env(workdir / "vector_db"), timeout=timeout) as base:
        yield base


def _client(base_url: str, connections: int, timeout: float, token: str | None) -> httpx.AsyncClient:
    """连 base_url 的异步客户端，连接池够 connections 个并发。"""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, headers=headers)


async def _chat(client: httpx.AsyncClient, question: str) -> None:
    await ask_once(client, question, stream=False)


async def _search(client: httpx.AsyncClient, query: str) -> None:
    if "results" not in _ok(await client.get("/api/search", params={"q": query, "k": 4})).json():
        raise ValueError("检索结果里没有 results")


async def _upload(client: httpx.AsyncClient, name: str, data: bytes) -> None:
    _ok(await client.post("/api/documents", files={"file": (name, data, "text/markdown")}))


async def _chat_phase(client: httpx.AsyncClient, clients: int, requests: int, tally: _Tally, deadline: float,
                      until: asyncio.Event | None = None) -> None:
    """clients 个客户端一起问：至少发 requests 个；给了 until 就一直问到它被设置（都不超过时长与请求上限）。"""
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while time.monotonic() < deadline and issued < _MAX_PHASE_REQUESTS and (
                issued < requests or (until is not None and not until.is_set())):
            issued += 1
            await tally.run(_chat(client, QUESTIONS[issued % len(QUESTIONS)]))

    await asyncio.gather(*(worker() for _ in range(clients)))


async def _search_round(client: httpx.AsyncClient, clients: int, tally: _Tally) -> float:
    """clients 个检索同时发出，返回最慢一个的耗时（毫秒）。"""
    before = len(tally.ms)
    await asyncio.gather(*(tally.run(_search(client, QUESTIONS[i % len(QUESTIONS)]), keep_failed=True)
                           for i in range(clients)))
    return max(tally.ms[before:], default=float("nan"))


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b and b == b and a == a else float("nan")


def _goal(ok: bool) -> str:
    return "达到" if ok else "未达到"


async def mixed(base_url: str, clients: int = 32, requests: int | None = None, uploaders: int = 4,
                docs: int = 10, max_seconds: float = 300.0, token: str | None = None) -> ScenarioResult:
    """问答单独跑 vs 与上传一起跑：chat p50/p95/最大、p95 比值、上传 p50/p95、错误数（第 7 章）。"""
    requests = requests or clients * 8
    start = time.monotonic()
    deadline = start + max_seconds
    samples: list[str] = []
    alone, together, uploads = _Tally(samples), _Tally(samples), _Tally(samples)
    async with _client(base_url, clients + uploaders, 120.0, token) as client:
        await _chat_phase(client, min(clients, 8), min(clients, 8), _Tally(), deadline)  # 热身，不计入
        await _chat_phase(client, clients, requests, alone, deadline)
        done = asyncio.Event()

        async def uploader(w: int) -> None:
            for i in range(docs):
                if time.monotonic() >= deadline:
                    return
                name = f"mixed-u{w}-{i:02d}.md"
                await uploads.run(_upload(client, name, small_markdown(f"U{w}-{i:02d}")))

        async def all_uploads() -> None:
            try:
                await asyncio.gather(*(uploader(w) for w in range(uploaders)))
            finally:
                done.set()

        await asyncio.gather(_chat_phase(client, clients, requests, together, deadline, until=done), all_uploads())
    a, t, u = alone.stats(), together.stats(), uploads.stats()
    ratio = _ratio(t.p95_ms, a.p95_ms)
    errors = a.errors + t.errors + u.errors
    goals = {"p95 比值 ≤ 2": ratio <= 2, "0 个错误": errors == 0}
    lines = [
        f"只有问答（{clients} 个客户端）：{a.count} 个请求，{a.text()}，{a.errors} 个错误",
        f"问答 + {uploaders} 个客户端上传：{t.count} 个请求，{t.text()}，{t.errors} 个错误",
        f"上传（{uploaders} × {docs} 篇小文档）：{u.count} 篇成功，p50 {u.p50_ms:.0f} ms、"
        f"p95 {u.p95_ms:.0f} ms，{u.errors} 个错误",
        f"问答 p95 比值（有上传 / 没上传）：{ratio:g}（目标 ≤ 2：{_goal(ratio <= 2)}）",
        f"错误合计：{errors}（目标 0：{_goal(errors == 0)}）",
    ]
    figures = {"clients": clients, "uploaders": uploaders, "docs_per_uploader": docs, "chat_alone": asdict(a),
               "chat_with_uploads": asdict(t), "uploads": asdict(u), "p95_ratio": ratio}
    return ScenarioResult("mixed", round(time.monotonic() - start, 1), errors, figures, lines, goals, samples)


async def burst(base_url: str, clients: int = 32, rounds: int = 5, max_seconds: float = 180.0,
                token: str | None = None) -> ScenarioResult:
    """clients 个并发检索的最慢一个：平时（各轮最慢的中位数）vs 刚上传一篇之后（中位数与最大）（第 7 章）。"""
    start = time.monotonic()
    deadline = start + max_seconds
    samples: list[str] = []
    searches, uploads = _Tally(samples), _Tally(samples)
    steady: list[float] = []
    after: list[float] = []
    async with _client(base_url, clients + 1, 120.0, token) as client:
        await _search_round(client, clients, _Tally())  # 热身：建好连接与检索快照，不计入
        for _ in range(rounds):
            if time.monotonic() >= deadline:
                break
            steady.append(await _search_round(client, clients, searches))
        for r in range(rounds):
            if time.monotonic() >= deadline:
                break
            await uploads.run(_upload(client, f"burst-{r:02d}.md", small_markdown(f"B{r:02d}")))
            after.append(await _search_round(client, clients, searches))
    base = round(float(np.median(steady)), 1) if steady else float("nan")
    after_med = round(float(np.median(after)), 1) if after else float("nan")
    after_max = round(max(after), 1) if after else float("nan")
    ratio, ratio_max = _ratio(after_med, base), _ratio(after_max, base)
    u = uploads.stats()
    errors = searches.errors + uploads.errors
    goals = {"写入后最慢 ≤ 2 倍平时": ratio <= 2, "0 个错误": errors == 0}
    lines = [
        f"平时：{clients} 个并发检索的最慢一个 {base:.0f} ms（{len(steady)} 轮的中位数）",
        f"刚上传一篇之后：最慢一个中位数 {after_med:.0f} ms、最大 {after_max:.0f} ms（{len(after)} 轮，"
        f"每轮先上传一篇，上传 p50 {u.p50_ms:.0f} ms）",
        f"写入后 / 平时：中位数 {ratio:g} 倍、最大 {ratio_max:g} 倍（目标 ≤ 2：{_goal(ratio <= 2)}）",
        f"错误合计：{errors}（检索 {searches.errors}、上传 {uploads.errors}）",
    ]
    figures = {"clients": clients, "rounds": rounds, "steady_rounds_ms": [round(x, 1) for x in steady],
               "after_write_rounds_ms": [round(x, 1) for x in after],
               "steady_ms": base, "after_write_median_ms": after_med, "after_write_max_ms": after_max,
               "ratio_median": ratio, "ratio_max": ratio_max, "uploads": asdict(u)}
    return ScenarioResult("burst", round(time.monotonic() - start, 1), errors, figures, lines, goals, samples)


async def upload_health(base_url: str, megabytes: float = 15.0, interval: float = 0.05,
                        max_seconds: float = 300.0, token: str | None = None) -> ScenarioResult:
    """一个大而合法的文本上传，同时每 interval 秒查一次 /health：上传用时与结果、health 延迟分布（第 7 章）。"""
    data = large_text(megabytes)
    start = time.monotonic()
    deadline = start + max_seconds
    samples: list[str] = []
    polls = _Tally(samples)
    done = asyncio.Event()
    outcome: dict[str, Any] = {}
    async with _client(base_url, 2, 30.0, token) as up_client, _client(base_url, 2, 30.0, token) as poller:
        _ok(await poller.get("/health"))  # 先连上，不计入

        async def poll() -> None:
            while not done.is_set() and time.monotonic() < deadline:
                t0 = time.monotonic()
                await polls.run(_get_ok(poller, "/health"), keep_failed=True)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - t0)))

        async def upload() -> None:
            t0 = time.perf_counter()
            try:
                r = await up_client.post("/api/documents", files={"file": ("large.txt", data, "text/plain")},
                                         timeout=max(1.0, deadline - time.monotonic()))
                outcome["status"] = r.status_code
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                outcome["detail"] = str(body.get("detail") or body.get("status") or "")[:200]
                outcome["chunks"] = body.get("chunks")
            except httpx.TimeoutException:
                outcome["status"], outcome["detail"] = "timeout", f"超过 {max_seconds:g} 秒上限仍未完成"
            except httpx.HTTPError as exc:
                outcome["status"], outcome["detail"] = "error", f"{type(exc).__name__}: {exc}"[:200]
            finally:
                outcome["seconds"] = round(time.perf_counter() - t0, 1)
                done.set()

        await asyncio.gather(poll(), upload())
    status, seconds = outcome["status"], outcome["seconds"]
    accepted = isinstance(status, int) and 200 <= status < 300
    refused = isinstance(status, int) and 400 <= status < 500 and bool(outcome["detail"])
    h = polls.stats()
    errors = polls.errors + (0 if accepted or refused else 1)
    if not (accepted or refused):
        samples.append(f"上传：{status} {outcome['detail']}")
    upload_ok = (accepted and seconds <= 30) or refused
    goals = {"上传 ≤ 30 s 或说明原因拒绝": upload_ok, "health p99 < 200 ms": h.p99_ms < 200, "0 个错误": errors == 0}
    verdict = "入库" if accepted else "拒绝" if refused else "失败"
    chunks = f"，{outcome['chunks']} 块" if outcome.get("chunks") else ""
    lines = [
        f"上传 {len(data) / 1024 / 1024:.1f} MB 文本：{verdict}（{status}{chunks}），用时 {seconds:.1f} s"
        f"{'：' + outcome['detail'] if outcome['detail'] and not accepted else ''}"
        f"（目标 ≤ 30 s 或说明原因拒绝：{_goal(upload_ok)}）",
        f"上传期间 /health（每 {interval * 1000:.0f} ms 一次，{h.count} 次）：p50 {h.p50_ms:.0f} ms、"
        f"p99 {h.p99_ms:.0f} ms、最大 {h.max_ms:.0f} ms，{polls.errors} 次失败（目标 p99 < 200 ms："
        f"{_goal(h.p99_ms < 200)}）",
    ]
    figures = {"upload_bytes": len(data), "upload_status": status, "upload_detail": outcome["detail"],
               "upload_chunks": outcome.get("chunks"), "upload_seconds": seconds, "health": asdict(h)}
    return ScenarioResult("upload-health", round(time.monotonic() - start, 1), errors, figures, lines, goals,
                          samples)


async def _get_ok(client: httpx.AsyncClient, path: str) -> None:
    _ok(await client.get(path))


async def _scale_measure(base_url: str, uploads: int, deadline: float, token: str | None
                         ) -> tuple[_Tally, _Tally, _Tally]:
    """scale 的测量部分：平时检索、逐个上传、每次上传后的第一次检索。"""
    samples: list[str] = []
    steady, ups, firsts = _Tally(samples), _Tally(samples), _Tally(samples)
    async with _client(base_url, 2, 120.0, token) as client:
        for i in range(3):  # 热身，不计入
            await _Tally().run(_search(client, QUESTIONS[i]))
        for i in range(20):
            if time.monotonic() < deadline:
                await steady.run(_search(client, QUESTIONS[i % len(QUESTIONS)]))
        for i in range(uploads):
            if time.monotonic() >= deadline:
                break
            await ups.run(_upload(client, f"scale-{i:02d}.md", small_markdown(f"N{i:02d}")))
            await firsts.run(_search(client, f"压测文档 N{i:02d}"))
    return steady, ups, firsts


def _time_restart(work: Path, uploads_dir: Path, corpus_dir: Path | None, timeout: float) -> float | None:
    """在同一向量库与上传区上重启一次（文件都没变），返回就绪用时；超时返回 None。"""
    t0 = time.perf_counter()
    try:
        with isolated_server(work, uploads_dir, corpus_dir, timeout=max(timeout, 1.0)):
            return round(time.perf_counter() - t0, 1)
    except RuntimeError:
        return None


def scale(files: int = 10000, uploads: int = 20, max_seconds: float = 1800.0, corpus_dir: Path | None = None,
          token: str | None = None) -> ScenarioResult:
    """上传区预放 files 个小文件再启动：启动与重启用时、上传 p50/p95、检索 p50、写入后第一次检索（第 7 章）。"""
    start = time.monotonic()
    deadline = start + max_seconds
    with tempfile.TemporaryDirectory(prefix="load-scale-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        up = seed_uploads(work / "uploads", files)
        seed_s = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        try:
            with isolated_server(work, up, corpus_dir, timeout=max_seconds) as base:
                start_s = round(time.perf_counter() - t0, 1)
                steady, ups, firsts = asyncio.run(_scale_measure(base, uploads, deadline, token))
        except RuntimeError as exc:  # 没能在时长上限内启动
            line = f"服务在 {max_seconds:g} 秒内没有启动（上传区 {files} 个文件）：{str(exc).splitlines()[0]}"
            return ScenarioResult("scale", round(time.monotonic() - start, 1), 1,
                                  {"files": files, "start_seconds": None}, [line], {"启动": False}, [str(exc)[-500:]])
        restart_s = _time_restart(work, up, corpus_dir, deadline - time.monotonic())
    s, u, f = steady.stats(), ups.stats(), firsts.stats()
    errors = s.errors + u.errors + f.errors + (restart_s is None)
    restart = f"{restart_s:.1f} s" if restart_s is not None else "没有在时长上限内就绪"
    lines = [
        f"启动（新库，同步上传区 {files} 个文件 + 文档目录）：{start_s:.1f} s（生成文件 {seed_s:.1f} s）",
        f"上传 {u.count} 篇：p50 {u.p50_ms:.0f} ms、p95 {u.p95_ms:.0f} ms，{u.errors} 个错误",
        f"平时检索 {s.count} 次：p50 {s.p50_ms:.0f} ms、最大 {s.max_ms:.0f} ms",
        f"每次上传后的第一次检索：p50 {f.p50_ms:.0f} ms、最大 {f.max_ms:.0f} ms",
        f"重启（文件都没变）：{restart}",
        f"错误合计：{errors}",
    ]
    figures = {"files": files, "seed_seconds": seed_s, "start_seconds": start_s, "restart_seconds": restart_s,
               "uploads": asdict(u), "search_steady": asdict(s), "first_search_after_write": asdict(f)}
    return ScenarioResult("scale", round(time.monotonic() - start, 1), errors, figures, lines,
                          {"0 个错误": errors == 0}, steady.samples)


def run_scenario(name: str, args: argparse.Namespace) -> ScenarioResult:
    """在自己起的隔离服务上跑一个场景，逐行打印摘要（第 7 章）。"""
    cap = args.max_seconds if args.max_seconds is not None else _CAPS[name]
    clients = int(args.clients) if args.clients else 32
    corpus = Path(args.corpus_dir) if args.corpus_dir else None
    print(f"场景 {name}：启动隔离的离线服务…", flush=True)
    load_before = os.getloadavg()[0]
    if name == "scale":
        result = scale(args.files, args.uploads, cap, corpus)
    else:
        with tempfile.TemporaryDirectory(prefix=f"load-{name}-") as tmp, \
                isolated_server(Path(tmp), corpus_dir=corpus) as base:
            if name == "mixed":
                job = mixed(base, clients, args.requests, args.uploaders, args.docs, cap)
            elif name == "burst":
                job = burst(base, clients, args.rounds, cap)
            else:
                job = upload_health(base, args.upload_mb, max_seconds=cap)
            result = asyncio.run(job)
    result.figures["machine"] = {"cpus": os.cpu_count(), "load_before": round(load_before, 2),
                                 "load_after": round(os.getloadavg()[0], 2)}
    result.figures["store_process"] = os.environ.get("APP_STORE_PROCESS", "1") != "0"
    for line in result.lines:
        print(f"  {line}", flush=True)
    for sample in result.error_samples:
        print(f"  错误样例：{sample}", file=sys.stderr)
    machine = result.figures["machine"]
    print(f"  场景 {name} 用时 {result.seconds:.1f} s（{machine['cpus']} 核，开始前 1 分钟负载 "
          f"{machine['load_before']:g}：别的进程占着 CPU 时数字偏慢）", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """命令行入口：检查参数，逐个场景起服务、测量、打印，需要时存 JSON（第 7 章）。"""
    parser = argparse.ArgumentParser(prog="python -m helpers.app.scenarios", description="知识库助手的可靠性场景")
    parser.add_argument("scenario", help=f"场景，逗号分隔或 all：{'、'.join(SCENARIOS)}")
    parser.add_argument("--clients", help="并发客户端数（默认 32）")
    parser.add_argument("--requests", type=int, help="mixed：每阶段的问答数（默认 客户端数 × 8）")
    parser.add_argument("--max-seconds", type=float,
                        help="每个场景的时长上限（秒）：默认 mixed 300、burst 180、upload-health 300、scale 1800")
    parser.add_argument("--json", help="把结果另存为 JSON 文件")
    parser.add_argument("--uploaders", type=int, default=4, help="mixed：上传客户端数（默认 4）")
    parser.add_argument("--docs", type=int, default=10, help="mixed：每个上传客户端上传的文档数（默认 10）")
    parser.add_argument("--rounds", type=int, default=5, help="burst：平时与写入后各测几轮（默认 5）")
    parser.add_argument("--upload-mb", type=float, default=15.0, help="upload-health：大文本的大小（默认 15 MB）")
    parser.add_argument("--files", type=int, default=10000, help="scale：上传区预先放的小文件数（默认 10000）")
    parser.add_argument("--uploads", type=int, default=20, help="scale：逐个上传的文档数（默认 20）")
    parser.add_argument("--corpus-dir", help="场景服务的文档目录（默认课程文档 data/knowledge_db）")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [x.strip() for x in args.scenario.split(",") if x.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        parser.error(f"场景只能是 {'、'.join(SCENARIOS)} 或 all，收到 {args.scenario!r}")
    if args.clients and not (args.clients.isdigit() and 1 <= int(args.clients) <= 256):
        parser.error("场景里的 --clients 是一个 1 到 256 之间的数")
    checks = [
        (args.requests is None or 1 <= args.requests <= 2000, "--requests 须在 1 到 2000 之间"),
        (0 <= args.uploaders <= 32 and 1 <= args.docs <= 200, "--uploaders 须在 0 到 32、--docs 在 1 到 200 之间"),
        (1 <= args.rounds <= 50, "--rounds 须在 1 到 50 之间"),
        (0 < args.upload_mb <= 200, "--upload-mb 须在 0 到 200 之间"),
        (0 <= args.files <= 50000 and 1 <= args.uploads <= 200, "--files 须在 0 到 50000、--uploads 在 1 到 200 之间"),
        (args.max_seconds is None or 0 < args.max_seconds <= 7200, "--max-seconds 须在 0 到 7200 之间"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return finish([run_scenario(name, args) for name in names], args.json, "scenarios")


if __name__ == "__main__":
    sys.exit(main())
