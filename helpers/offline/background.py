"""在后台线程里把离线服务开在本机端口上，给只认 base_url 的 SDK（如 zhipuai）用（第 2 章）。

命令行的 ``python -m helpers.offline serve`` 是另开一个进程；笔记本里不必如此：同一个内核的后台线程里跑
uvicorn，端口先由系统挑一个空闲的并占住（绑定端口 0），服务开始接受连接后才交出地址，离开 with 即停。
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from helpers.offline.app import get_app


@contextmanager
def serve_app(app: ASGIApp, *, timeout: float = 30.0, name: str = "服务") -> Iterator[str]:
    """在 127.0.0.1 的空闲端口上用后台线程运行一个 ASGI 应用，产出 http://127.0.0.1:端口，离开 with 时停止。"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # 端口 0：系统挑一个空闲端口，绑定后别的程序就抢不走
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"{name}没能启动（后台线程已退出）")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} {timeout:g} 秒内没有就绪")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def serve_in_background(*, timeout: float = 30.0) -> Iterator[str]:
    """在 127.0.0.1 的空闲端口上用后台线程运行离线服务，产出 base_url（…/v1），离开 with 时停止（第 2 章）。"""
    with serve_app(get_app(), timeout=timeout, name="离线服务") as base:
        yield base + "/v1"
