"""嵌入式 Chroma 放进子进程（helpers.knowledge.process）：结果与进程内一样，报错原样传回，助手进程死了子进程也退出。"""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import time

import httpx
import psutil
import pytest
from chromadb.errors import NotFoundError

from helpers.app.disk import is_disk_full
from helpers.app.scenarios import isolated_env
from helpers.app.server import serve_in_subprocess
from helpers.app.settings import store_process_on
from helpers.config import ConfigError
from helpers.errors import StoreCorruptError
from helpers.knowledge import KnowledgeBase
from helpers.knowledge.process import ProcessClient, StoreProcessError, _chain, _relink
from tests.support.corpus import PLACES, write_corpus
from tests.support.factories import SMALL_CHUNKS

QUESTIONS = ["星河咖啡馆的招牌饮品是什么？", "银杏的树龄有多少年", "期末考试在哪个教室"]


def _is_store_child(proc: psutil.Process) -> bool:
    try:
        return any(part.endswith("process.py") for part in proc.cmdline())
    except psutil.Error:
        return False


def _gone(pid: int, timeout: float = 20.0) -> bool:
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


@pytest.fixture
def process_client(tmp_path):
    client = ProcessClient(tmp_path / "proc-db")
    yield client
    client.close()


def test_knowledge_base_through_the_child_matches_in_process(tmp_path, process_client):
    corpus = write_corpus(tmp_path / "docs", PLACES)
    inside = KnowledgeBase("same", persist_dir=tmp_path / "db", **SMALL_CHUNKS)
    child = KnowledgeBase("same", client=process_client, **SMALL_CHUNKS)
    for kb in (inside, child):
        assert kb.ingest(corpus).failed == []
    assert child.count() == inside.count() >= 3
    assert child.source_counts() == inside.source_counts()
    for q in QUESTIONS:  # 混合检索（内存副本）与向量检索（Chroma 的 HNSW）都与进程内一样
        assert [d.id for d, *_ in child.hybrid(q, k=3)] == [d.id for d, *_ in inside.hybrid(q, k=3)]
        assert [d.id for d, _ in child.dense(q, k=3)] == [d.id for d, _ in inside.dense(q, k=3)]
    assert child.delete_source("notes.txt") > 0  # 写入后内存副本跟着变
    assert "notes.txt" not in child.sources()
    assert all(d.metadata["file"] != "notes.txt" for d, *_ in child.hybrid("期末考试在哪个教室", k=5))


def test_errors_come_back_with_their_type_and_message(process_client):
    with pytest.raises(NotFoundError, match="does not exist"):
        process_client.get_collection("no-such-collection")
    assert process_client.heartbeat() > 0  # 报错之后连接照常可用


def test_the_exception_chain_survives_the_trip():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("Error in compaction") from inner
    except RuntimeError as exc:
        back = _relink(_chain(exc))
    assert str(back) == "Error in compaction" and is_disk_full(back)  # 磁盘已满要看整条链

    class Odd(Exception):
        def __init__(self, a: str, b: str) -> None:
            super().__init__(f"{a}/{b}")

    (odd,) = _chain(Odd("x", "y"))  # 反序列化不了的异常：换成 StoreProcessError，类型名与消息还在
    assert isinstance(odd, StoreProcessError) and str(odd) == "Odd: x/y"


def test_a_corrupt_store_gives_the_rebuild_line(tmp_path):
    db = tmp_path / "broken"
    db.mkdir()
    (db / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    client = ProcessClient(db)
    try:
        with pytest.raises(StoreCorruptError, match="向量库文件损坏.*--rebuild"):
            client.heartbeat()
    finally:
        client.close()


@pytest.mark.slow
def test_the_child_exits_when_its_app_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from helpers.knowledge.process import ProcessClient
        client = ProcessClient({str(tmp_path / "db")!r})
        client.heartbeat()
        print(client.store.proc.pid, flush=True)
        time.sleep(120)
    """)
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(app.stdout.readline())
        assert psutil.pid_exists(child)
        app.kill()  # kill -9：来不及做任何清理
        app.wait()
        assert _gone(child), "助手进程被杀后，向量库子进程没有退出"
    finally:
        app.kill()


def test_the_setting_accepts_only_one_or_zero():
    assert store_process_on({}) is True
    assert store_process_on({"APP_STORE_PROCESS": "0"}) is False
    with pytest.raises(ConfigError, match="APP_STORE_PROCESS"):
        store_process_on({"APP_STORE_PROCESS": "yes please"})


@pytest.mark.slow
@pytest.mark.parametrize("separate", [True, False])
def test_the_server_runs_chroma_in_a_child_and_stops_it(tmp_path, separate):
    env = isolated_env(tmp_path / "vector_db") | {"APP_STORE_PROCESS": "1" if separate else "0"}
    me = psutil.Process()
    with serve_in_subprocess("--no-ui", "--uploads-dir", str(tmp_path / "uploads"),
                             "--corpus-dir", str(write_corpus(tmp_path / "docs", PLACES)), env=env) as base:
        children = [p for p in me.children(recursive=True) if _is_store_child(p)]
        assert len(children) == (1 if separate else 0)
        with httpx.Client(base_url=base, timeout=60) as http:
            health = http.get("/health").json()
            assert health["documents"] == 3
            assert health["vector_store"] == ("chroma-embedded（子进程）" if separate else "chroma-embedded")
            up = http.post("/api/documents", files={"file": ("tea.md", "# 茶馆\n\n老舍茶馆的大碗茶两元一碗。".encode(),
                                                              "text/markdown")})
            assert up.status_code == 200, up.text
            assert http.get("/health").json()["documents"] == 4
    assert all(_gone(p.pid) for p in children), "服务停止后向量库子进程还在"
    again = ProcessClient(tmp_path / "vector_db")  # 锁都放开了：马上就能再打开这个库
    try:
        start = time.monotonic()
        assert again.list_collections()[0].count() > 0
        assert time.monotonic() - start < 30
    finally:
        again.close()
