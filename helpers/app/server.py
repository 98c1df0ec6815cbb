"""启动知识库助手：python -m helpers.app [--host 127.0.0.1] [--port 7860]（第 7 章）。

设置（命令行参数优先，其次是环境变量，再次是项目根目录的 .env）：
  LLM_PROVIDER 等      模型提供方，见 .env.example
  CHROMA_HOST/PORT     连 Chroma 服务（多人共享一个知识库）；不设则用嵌入式 Chroma
  APP_TOKEN            访问令牌：API 要求 Authorization: Bearer <令牌>，界面要求登录
  APP_UPLOADS_DIR      上传区目录（默认 data/uploads）
  APP_MAX_UPLOAD_MB    上传大小上限（默认 20）
  APP_COLLECTION       知识库集合名（默认 assistant）
  APP_CORPUS_DIR       文档目录（默认课程的 data/knowledge_db）
  APP_ALLOWED_ORIGINS  允许跨站调用 API 的网页来源，逗号分隔（默认没有：只有本站页面能改知识库）
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from helpers.app import create_app
from helpers.app.service import (
    Assistant,
    open_knowledge_base,
    rebuild_knowledge_base,
    sync_knowledge_base,
)
from helpers.app.settings import (  # noqa: F401  测试与旧代码从这里导入它们
    StoreBusyError,
    collection_from_env,
    config_from_env,
    corpus_from_env,
    store_lock,
    store_process_on,
)
from helpers.config import PROJECT_ROOT, ConfigError, load_settings
from helpers.errors import RedactingFilter, StoreCorruptError
from helpers.knowledge.process import ProcessClient

# 多进程（--workers N）时 uvicorn 在新进程里按导入路径调用 app_from_env，命令行参数只能经环境变量传过去；
# 只有这种情况才改 os.environ（见 main）。APP_KB_SYNCED=1 表示主进程已同步过知识库，APP_UI=0 表示不挂界面
_ENV_SYNCED = "APP_KB_SYNCED"
_ENV_UI = "APP_UI"
_LOGGERS = ("helpers.app", "uvicorn", "uvicorn.error", "uvicorn.access")


def _close_with(held: ExitStack, kb: Any) -> None:
    """知识库的客户端若是向量库子进程，服务停止时先停掉它（写入锁在它之后才放开）。"""
    if isinstance(kb.client, ProcessClient):
        held.callback(kb.client.close)


_OPTION_ENV = {"uploads_dir": "APP_UPLOADS_DIR", "max_upload_mb": "APP_MAX_UPLOAD_MB",
               "collection": "APP_COLLECTION", "corpus_dir": "APP_CORPUS_DIR"}


def app_from_env() -> FastAPI:
    """uvicorn 的工厂函数：uvicorn --factory helpers.app.server:app_from_env（第 7 章）。"""
    settings = load_settings()
    config = config_from_env(settings.app_token)
    assistant = Assistant.from_settings(  # 直接用 uvicorn 启动时在这里同步知识库
        settings, config, collection=collection_from_env(), corpus_dir=corpus_from_env(),
        sync=os.environ.get(_ENV_SYNCED) != "1")
    return _serving_app(assistant, ui=os.environ.get(_ENV_UI, "1") != "0")


def redact_logs(secrets: list[str]) -> None:
    """给助手与 uvicorn 的日志装上 RedactingFilter：密钥、令牌、Authorization 不会写进日志（第 7 章）。"""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
            logger.removeFilter(old)
        logger.addFilter(RedactingFilter(secrets))


def log_to_stderr() -> None:
    """助手的日志（回答失败的原因、启动时恢复与隔离的文件，已遮盖密钥）写到服务的标准错误（第 7 章）。"""
    app_log = logging.getLogger("helpers.app")
    if not any(isinstance(h, logging.StreamHandler) for h in app_log.handlers):
        app_log.addHandler(logging.StreamHandler())


def _serving_app(assistant: Assistant, ui: bool) -> FastAPI:
    """组装一个进程要服务的应用，并在它开始接请求之前预热。"""
    redact_logs(assistant.secrets())
    log_to_stderr()
    app = create_app(assistant, ui=ui)
    assistant.warm_up()
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """命令行参数（第 7 章）。"""
    parser = argparse.ArgumentParser(prog="python -m helpers.app", description="个人知识库助手")
    parser.add_argument("--host", default="127.0.0.1", help="监听地址（默认只允许本机访问）")
    parser.add_argument("--port", type=int, default=7860, help="端口（默认 7860）")
    parser.add_argument("--workers", type=int, default=1,
                        help="进程数；大于 1 时要用 Chroma 服务（CHROMA_HOST）并加 --no-ui（界面只能单进程）")
    parser.add_argument("--uploads-dir", help="上传区目录（默认 data/uploads）")
    parser.add_argument("--max-upload-mb", type=float, help="上传大小上限（默认 20）")
    parser.add_argument("--collection", help="知识库集合名（默认 assistant）")
    parser.add_argument("--corpus-dir", help="文档目录（默认课程文档 data/knowledge_db）")
    parser.add_argument("--no-ui", action="store_true", help="只启动 API，不挂 Gradio 界面")
    parser.add_argument("--log-level", default="warning", help="uvicorn 日志级别")
    parser.add_argument("--rebuild", action="store_true",
                        help="向量库损坏时用：旧目录改名保留，从课程文档与上传区重新入库后再启动")
    return parser.parse_args(argv)


def cli_overrides(args: argparse.Namespace) -> dict[str, str]:
    """命令行里给出的设置，按环境变量名排好：{"APP_UPLOADS_DIR": …}（第 7 章）。"""
    values = {name: getattr(args, option) for option, name in _OPTION_ENV.items()}
    return {name: str(value) for name, value in values.items() if value not in (None, "")}


def main(argv: list[str] | None = None) -> int:
    """按参数启动 uvicorn（第 7 章）。"""
    args = parse_args(argv)
    # 服务停了（或启动失败）时依次：停掉向量库子进程（它写完手上这一批），再放开嵌入式向量库的写入锁
    with ExitStack() as held:
        return _start(args, held)


# Gradio 的排队（queue/join、queue/data）与登录令牌都存在各自进程的内存里：多进程时同一个浏览器的请求落到别的进程，
# 就是 "Session not found" 或随机的 401（gradio-app/gradio#9332、#10487；#10487 到 2026-12-01 仍未解决）
UI_NEEDS_ONE_PROCESS = ("界面（Gradio）不能多进程运行：它的排队与登录状态只在各自进程里，请求落到别的进程就会报 "
                        "Session not found 或随机 401。多进程请加 --no-ui 只开 API，界面另起一个单进程的助手；"
                        "或者去掉 --workers")


def _start(args: argparse.Namespace, held: ExitStack) -> int:
    overrides = cli_overrides(args)
    if args.workers > 1 and not args.no_ui:
        print(UI_NEEDS_ONE_PROCESS, file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if not settings.chroma_host:
            if args.workers > 1:
                print(f"嵌入式 Chroma 同时只能有一个进程写入，--workers {args.workers} 会让几个进程写坏同一个库："
                      "多进程请先启动 Chroma 服务并设置 CHROMA_HOST（见第 4 章 4.8 节），或去掉 --workers",
                      file=sys.stderr)
                return 2
            held.callback(store_lock(Path(settings.vector_db_dir)).release)
        separate = not settings.chroma_host and store_process_on(overrides)
        config = config_from_env(settings.app_token, overrides)
        log_to_stderr()  # 启动同步时恢复、隔离了哪些文件，写到标准错误
        corpus = corpus_from_env(overrides)
        collection = collection_from_env(overrides)
        if args.rebuild:
            print("重建知识库（文档目录 + 上传区）…", flush=True)
            kb, report, kept = rebuild_knowledge_base(settings, collection=collection, corpus_dir=corpus,
                                                      uploads_dir=config.uploads_dir, store_process=separate)
            _close_with(held, kb)
            if kept is not None:
                print(f"旧的向量库目录已改名保留为 {kept}（确认新库没问题后可以删掉）", flush=True)
        else:
            kb = open_knowledge_base(settings, collection=collection, store_process=separate)
            _close_with(held, kb)
            print("同步知识库（文档目录 + 上传区）…", flush=True)
            report = sync_knowledge_base(kb, corpus, config.uploads_dir)
    except (ConfigError, ValueError) as exc:
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    except (StoreCorruptError, StoreBusyError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(report.summary(), flush=True)
    for failed in report.failed:
        print(f"  {failed}", flush=True)
    if args.host not in {"127.0.0.1", "localhost", "::1"} and not settings.app_token:
        print("提醒：监听在非本机地址却没有设置 APP_TOKEN，任何人都能访问并上传文档。", file=sys.stderr)
    if args.workers > 1:
        print("提醒：多进程时每个进程各有一份会话历史（同一会话的请求可能落到不同进程）；"
              + ("" if settings.chroma_host else "多进程写嵌入式 Chroma 可能互相覆盖，请设置 CHROMA_HOST。"),
              file=sys.stderr)
    where = f"http://{args.host}:{args.port}"
    print(f"个人知识库助手：界面 {where}/ · 接口文档 {where}/docs（Ctrl+C 停止）", flush=True)
    serve = {"host": args.host, "port": args.port, "log_level": args.log_level}
    if args.workers == 1:  # 单进程：直接用已同步的知识库组装应用
        assistant = Assistant(kb, settings=settings, config=config, corpus_dir=corpus)
        uvicorn.run(_serving_app(assistant, ui=not args.no_ui), **serve)
        return 0
    os.environ.update(overrides)  # 多进程：设置经环境变量传给各个工作进程（见文件开头的说明）
    os.environ.update({_ENV_SYNCED: "1", _ENV_UI: "0" if args.no_ui else "1"})
    uvicorn.run("helpers.app.server:app_from_env", factory=True, workers=args.workers, **serve)
    return 0


# ---- 在子进程里启动服务：python -m helpers.app.load 自己起服务时用（测试经 tests/support/servers.py 复用） ----
def free_port() -> int:
    """向系统要一个本机空闲端口（第 7 章）。"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 120.0, alive: Callable[[], bool] | None = None) -> None:
    """反复请求 url 直到返回 200；超过 timeout 秒仍未就绪就报错（第 7 章）。"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError("服务进程已退出，没能启动")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"服务在 {timeout:g} 秒内没有就绪：{url}")


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """先请子进程退出，timeout 秒后还在就强制结束（第 7 章）。"""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serve_in_subprocess(*args: str, env: dict[str, str] | None = None,
                        timeout: float = 300.0) -> Iterator[str]:
    """用 sys.executable -m helpers.app 在子进程里启动服务，退出 with 时停止（第 7 章）。"""
    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "helpers.app", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(base + "/health", timeout, alive=lambda: proc.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"{exc}\n服务输出：\n{tail}") from None
        yield base
    finally:
        stop_process(proc)
        log.close()
