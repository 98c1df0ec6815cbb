"""测试用的服务进程工具：空闲端口、等服务就绪、停子进程、在后台线程里跑一个应用。

free_port、wait_until_up、stop_process 也是 helpers.app.server.serve_in_subprocess（压测自己起服务时用）
要用的，只在那里定义一份，这里转出来；serve_in_thread 在 helpers.offline.background.serve_app 之上再等就绪路径。
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from helpers.app.server import free_port, serve_in_subprocess, stop_process, wait_until_up
from helpers.offline.background import serve_app

__all__ = ["free_port", "nginx_main_conf", "nginx_or_skip", "serve_in_subprocess", "serve_in_thread", "stop_process",
           "wait_until_up"]

NO_NGINX = "没有找到 nginx：运行 apt-get install nginx-light（或 nginx）"


def nginx_main_conf(folder: Path, include: Path, extra: str = "") -> Path:
    """包住一份 server 配置的最小 nginx.conf：pid、日志与临时目录都在 folder 里（不用 root 的路径）。"""
    main = folder / "nginx.conf"
    main.write_text(f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
                    f"http {{\n  access_log off;\n  client_body_temp_path {folder}/body;\n"
                    f"  proxy_temp_path {folder}/proxy;\n{extra}  include {include};\n}}\n", encoding="utf-8")
    return main


def nginx_or_skip() -> str:
    """本机的 nginx；没有时跳过并说明怎么装，CI（CI=true）里算失败。"""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(NO_NGINX)
    pytest.skip(NO_NGINX)


@contextmanager
def serve_in_thread(app: FastAPI, timeout: float = 60.0, ready: str = "/health") -> Iterator[str]:
    """在后台线程里用 uvicorn 跑一个应用，ready 路径应答 200 后产出 http://127.0.0.1:端口，退出 with 时停止。"""
    with serve_app(app, timeout=timeout) as base:
        wait_until_up(base + ready, timeout)
        yield base
