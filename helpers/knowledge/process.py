"""把嵌入式 Chroma 放进一个子进程：助手进程只转发调用，写库时不再被 Chroma 占住 GIL（第 7 章）。

chromadb 1.5 的嵌入式 add 写完之前不放 GIL（chroma-core/chroma#3873 只给读放开了，2026-12-01 核对）：在助手进程里
写一批 256 块，其余线程（/health、聊天的流式输出）都要停 0.2–0.4 秒。放进子进程后，助手进程只在管道上等结果，
等的时候 GIL 是放开的。子进程就是这个库唯一的写入方（"一个库一个写入进程"）：

- 用 subprocess 启动 `python -m helpers.knowledge.process`，不用 multiprocessing 的 spawn（spawn 会在子进程里重新
  导入 `python -m helpers.app` 的主模块，连 Gradio 一起，多花几秒与两百多兆内存）；
- 调用经 multiprocessing.connection 传递（Linux/macOS 是 Unix 套接字，Windows 是命名管道），带一次性的口令；
- 助手进程退出或被 kill -9，连接一断子进程就退出；子进程另拿一把锁（库目录旁的 .process.lock），上一个子进程还在
  写完最后一批时，新的要等它退出才打开库。
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

# 这个文件也是子进程的脚本（runpy 按路径运行，不导入 helpers 包）：模块顶层只导入标准库，子进程只多导入 chromadb

# 允许转发的方法：客户端与集合上课程、langchain_chroma 用到的那些
CLIENT_METHODS = frozenset({"get_or_create_collection", "get_collection", "create_collection", "delete_collection",
                            "list_collections", "count_collections", "heartbeat"})
COLLECTION_METHODS = frozenset({"add", "upsert", "update", "get", "query", "delete", "count", "peek", "modify"})
_RETURNS_COLLECTION = frozenset({"get_or_create_collection", "get_collection", "create_collection"})
LOCK_WAIT = 60.0  # 新的子进程最多等上一个子进程多少秒
_BOOT = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


class StoreProcessError(RuntimeError):
    """子进程里的异常无法原样传回时，用它带回类型名与消息（第 7 章）。"""


class StoreProcessGone(StoreProcessError):
    """向量库子进程不在了（被杀、崩溃）：写入做不了，要重启助手（第 7 章）。"""


def _portable(exc: BaseException) -> BaseException:
    """能经 pickle 原样传回的异常就原样传，否则换成 StoreProcessError（保留类型名与消息）。"""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if str(back) == str(exc):
            return exc
    except Exception:  # 有的异常类的 __init__ 参数与 args 对不上，反序列化会失败
        pass
    return StoreProcessError(f"{type(exc).__name__}: {exc}")


def _chain(exc: BaseException) -> list[BaseException]:
    """异常与它的 __cause__/__context__ 链（磁盘已满、库文件损坏的判断要看整条链），每个都换成能传回的。"""
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(out) < 8:
        seen.add(id(cur))
        out.append(_portable(cur))
        cur = cur.__cause__ or cur.__context__
    return out


def _relink(chain: list[BaseException]) -> BaseException:
    """把传回来的异常链重新接上：第一个是抛出的异常，其余依次是它的 __cause__。"""
    for outer, inner in zip(chain, chain[1:]):
        outer.__cause__ = inner
    return chain[0]


def _describe(collection: Any) -> dict[str, Any]:
    """集合的静态信息：助手进程里的代理对象据此回答 name、id、metadata、configuration。"""
    return {"name": collection.name, "id": collection.id, "metadata": collection.metadata,
            "configuration": collection.configuration}


# ---------------- 子进程 ----------------

def _result(value: Any, cache: dict[str, Any], method: str) -> Any:
    """返回值里的集合换成描述（集合对象本身留在子进程里）。"""
    if method in _RETURNS_COLLECTION:
        cache[value.name] = value
        return ("collection", _describe(value))
    if method == "list_collections":
        return [("collection", _describe(c)) for c in value]
    return value


def _dispatch(client: Any, cache: dict[str, Any], target: str | None, method: str, args: tuple,
              kwargs: dict) -> Any:
    """在子进程里执行一次调用：target 为 None 时调客户端的方法，否则调那个集合的方法。"""
    if target is None:
        if method not in CLIENT_METHODS:
            raise StoreProcessError(f"不转发客户端方法 {method}")
        if method == "delete_collection":
            cache.pop(kwargs.get("name", args[0] if args else ""), None)
        return _result(getattr(client, method)(*args, **kwargs), cache, method)
    if method not in COLLECTION_METHODS:
        raise StoreProcessError(f"不转发集合方法 {method}")
    collection = cache.get(target) or cache.setdefault(target, client.get_collection(target))
    value = getattr(collection, method)(*args, **kwargs)
    return ("collection", _describe(collection)) if method == "modify" else value


def serve(path: str, authkey: bytes) -> None:
    """子进程的主循环：等助手进程连上，打开库，逐个执行调用；连接断开就退出（第 7 章）。"""
    from multiprocessing.connection import Listener

    from filelock import FileLock, Timeout

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C 只停助手进程；子进程等连接断开再退出，不会写到一半
    with Listener(authkey=authkey) as listener:
        print(json.dumps({"address": listener.address}), flush=True)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # 之后的输出都去标准错误：助手进程只读了第一行
        conn = listener.accept()
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        lock = FileLock(str(Path(path).with_name(Path(path).name + ".process.lock")))
        lock.acquire(timeout=LOCK_WAIT)
        # 与 collection.make_client 的嵌入式分支相同（不上报统计）；这里不导入它，子进程就不必导入整个 helpers
        client = chromadb.PersistentClient(path=path, settings=ChromaSettings(anonymized_telemetry=False))
    except Timeout:
        conn.send((False, [StoreProcessError(f"上一个向量库进程 {LOCK_WAIT:.0f} 秒内没有退出：稍后再启动")]))
        return
    except BaseException as exc:  # 库文件损坏等：原样告诉助手进程，由它给出中文说明
        conn.send((False, _chain(exc)))
        return
    conn.send((True, None))
    cache: dict[str, Any] = {}
    with lock:
        while True:
            try:
                target, method, args, kwargs = conn.recv()
            except (EOFError, OSError):  # 助手进程退出（或被杀）了
                return
            try:
                reply = (True, _dispatch(client, cache, target, method, args, kwargs))
            except BaseException as exc:
                reply = (False, _chain(exc))
            try:
                conn.send(reply)
            except (EOFError, OSError):
                return
            except Exception as exc:  # 结果无法序列化：告诉对方，而不是让它一直等
                conn.send((False, [StoreProcessError(f"结果无法传回：{type(exc).__name__}: {exc}")]))


# ---------------- 助手进程 ----------------

class StoreProcess:
    """子进程里的嵌入式 Chroma 与通往它的连接；relay 转发一次调用并等结果（等的时候不占 GIL）（第 7 章）。"""

    def __init__(self, path: str | Path) -> None:
        from multiprocessing.connection import Client

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        authkey = secrets.token_bytes(32)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # 按文件路径运行本模块（不用 -m：那会先导入 helpers.knowledge 包，多花三秒）；-c 让 sys.path[0] 不是本目录，
        # 否则这里的 load.py、index.py 会遮住同名的第三方模块
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"path": str(self.path), "authkey": authkey.hex()}).encode() + b"\n")
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        if not line:
            raise StoreProcessError(f"向量库进程没能启动（退出码 {self.proc.wait()}）：看上面的报错")
        self.proc.stdout.close()
        address = json.loads(line)["address"]
        self.conn = Client(address, authkey=authkey)
        self._lock = threading.Lock()
        self._opened = False  # 子进程导入 chromadb、打开库要几秒：不在这里等，第一次调用时才等它的结果

    def _wait_open(self) -> None:
        """等子进程报告打开库的结果；库文件损坏等错误在这里换成中文说明。"""
        ok, value = self._receive()
        if not ok:
            from helpers.knowledge.collection import corrupt_store_error

            exc = _relink(value)
            raise corrupt_store_error(exc, self.path) or exc
        self._opened = True

    def _receive(self) -> tuple[bool, Any]:
        try:
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            code = self.proc.poll()
            raise StoreProcessGone(f"向量库进程意外退出（退出码 {code}）：请重启助手") from exc

    def relay(self, target: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
        """在子进程里执行 client.method(…)（target 为 None）或集合 target 的 method(…)（第 7 章）。"""
        with self._lock:
            if not self._opened:
                self._wait_open()
            try:
                self.conn.send((target, method, args, kwargs))
            except (EOFError, OSError) as exc:
                raise StoreProcessGone("向量库进程意外退出：请重启助手") from exc
            ok, value = self._receive()
        if not ok:
            raise _relink(value)
        return value

    def close(self) -> None:
        """断开连接，等子进程写完当前一批后退出（第 7 章）。"""
        with self._lock:
            try:
                self.conn.close()
            except (AttributeError, OSError):
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ProcessCollection:
    """子进程里一个集合的代理：方法原样转发，name/id/metadata/configuration 是打开时的快照（第 7 章）。"""

    def __init__(self, store: StoreProcess, info: dict[str, Any]) -> None:
        self._store = store
        self._set(info)

    def _set(self, info: dict[str, Any]) -> None:
        self.name, self.id = info["name"], info["id"]
        self.metadata, self.configuration = info["metadata"], info["configuration"]

    def __getattr__(self, method: str) -> Any:
        if method not in COLLECTION_METHODS:
            raise AttributeError(method)

        def forward(*args: Any, **kwargs: Any) -> Any:
            value = self._store.relay(self.name, method, *args, **kwargs)
            if method == "modify":
                self._set(value[1])
                return None
            return value

        return forward

    def __repr__(self) -> str:
        return f"ProcessCollection(name={self.name!r})"


class ProcessClient:
    """与 chromadb 客户端同样用法的代理：课程与 langchain_chroma 用到的方法都转发给子进程（第 7 章）。"""

    def __init__(self, path: str | Path) -> None:
        self.store = StoreProcess(path)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "collection":
            return ProcessCollection(self.store, value[1])
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        return value

    def __getattr__(self, method: str) -> Any:
        if method not in CLIENT_METHODS:
            raise AttributeError(method)
        return lambda *args, **kwargs: self._wrap(self.store.relay(None, method, *args, **kwargs))

    def get_settings(self) -> Any:
        """与嵌入式客户端一样的设置：库目录在本机磁盘上（磁盘空间检查据此找目录）（第 7 章）。"""
        from chromadb.config import Settings as ChromaSettings

        return ChromaSettings(is_persistent=True, persist_directory=str(self.store.path),
                              anonymized_telemetry=False)

    def close(self) -> None:
        """停掉子进程（第 7 章）。"""
        self.store.close()


def _main() -> None:
    """子进程入口：从标准输入读库目录与口令。"""
    try:
        job = json.loads(sys.stdin.readline())
        serve(job["path"], bytes.fromhex(job["authkey"]))
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    _main()
