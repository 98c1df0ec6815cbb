"""服务器模式：同一个 KnowledgeBase 连到真实的 `chroma run`（全班共用一个知识库的做法）。"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.config import load_settings
from tests.support.corpus import write_corpus
from tests.support.factories import small_kb
from tests.support.servers import free_port, stop_process, wait_until_up

pytestmark = pytest.mark.slow  # 要启动一个真实的 chroma 服务：集成测试


def _chroma_cli() -> str | None:
    local = Path(sys.executable).parent / "chroma"
    return str(local) if local.exists() else shutil.which("chroma")


@pytest.fixture
def chroma_server(tmp_path):
    cli = _chroma_cli()
    if cli is None:
        pytest.skip("没有找到 chroma 命令行（chromadb 没装好？），跳过服务器模式测试")
    port = free_port()
    proc = subprocess.Popen(
        [cli, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_until_up(f"http://127.0.0.1:{port}/api/v2/heartbeat", 90, alive=lambda: proc.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"chroma run 没能启动：{exc}")
        yield port
    finally:
        stop_process(proc, timeout=10)


def test_same_code_against_chroma_server(chroma_server, tmp_path):
    settings = load_settings(chroma_host="127.0.0.1", chroma_port=chroma_server)
    kb = small_kb("server", settings=settings)
    assert kb.client.get_settings().chroma_server_http_port == chroma_server
    corpus = write_corpus(tmp_path / "docs")
    assert kb.ingest(corpus).count("新增") == 3
    assert kb.hybrid("倒数排名融合", k=1)[0][0].metadata["source"] == "rag.md"
    # 另一个"学生"连同一台服务器：看到同一份知识库，重复入库什么也不写
    other = small_kb("server", settings=settings)
    assert other.count() == kb.count() > 0
    assert other.ingest(corpus).count("跳过") == 3
    assert (tmp_path / "server" / "chroma.sqlite3").is_file()  # 数据在服务器那边
