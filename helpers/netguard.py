"""测试用的断网保护：只允许连接本机（回环地址与 Unix 套接字）（测试约定，见 README）。

为什么手写：pytest-socket 只管 pytest 进程，而 nbval 的内核是另一个进程，两边要用同一套规则。
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping

ENV_VAR = "LLM_UNIVERSE_NO_NETWORK"
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_getaddrinfo = socket.getaddrinfo


class NetworkBlockedError(ConnectionRefusedError):
    """离线测试中试图访问外网（第 2 章）。"""


def _is_local(host: object) -> bool:
    if host in {"localhost", "", None}:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host).endswith(".localhost")


def _check(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local(host):
        raise NetworkBlockedError(f"离线模式禁止访问外网：{address}（只允许本机回环地址）")


def _connect(self: socket.socket, address) -> None:
    _check(self, address)
    return _original_connect(self, address)


def _connect_ex(self: socket.socket, address) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        raise NetworkBlockedError(f"离线模式禁止解析外部域名：{host}")
    return _original_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    """打开断网保护（幂等）（测试约定）。"""
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]


def offline_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """pytest 与笔记本重跑共用的离线环境：去掉密钥与提供方设置、忽略 .env、禁止外网、固定哈希种子（测试约定）。"""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items()
           if not (k.endswith("_API_KEY") or k.endswith("_BASE_URL") or k.startswith("LLM_") or k == "CHROMA_HOST")}
    env.update({
        "LLM_UNIVERSE_IGNORE_DOTENV": "1", ENV_VAR: "1",
        "LLM_PROVIDER": "offline", "EMBEDDING_PROVIDER": "offline",
        "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    })
    return env


def install_if_requested() -> bool:
    """环境变量 LLM_UNIVERSE_NO_NETWORK=1 时打开断网保护（测试约定）。"""
    if os.environ.get(ENV_VAR) == "1":
        install()
        return True
    return False
