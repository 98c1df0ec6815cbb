"""每个文件的字数与时间上限（可靠性探测 F1 的后半）：超了就给一句中文原因、库不变，同一批里的其他文件照常入库；
助手上传一个超过 100 万字的文件几秒内就被拒绝，而不是占着写入锁入库好几分钟；入库时中断或启动时入库失败的
上传文件隔离进 .quarantine/（文件不丢），以后的启动不再被它拖住。"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers.app import create_api, sync_knowledge_base
from helpers.app.service import INGESTING_PREFIX, MAX_FILE_CHARS, QUARANTINE_DIR, open_knowledge_base
from helpers.knowledge import IngestStatus
from tests.support.corpus import PLACES, write_corpus
from tests.support.factories import make_assistant, small_kb, synced_kb


def test_a_file_over_the_text_limit_fails_alone(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs", {"big.txt": "很长的文字。" * 1000, "small.md": "# 小文档\n\n短短一段。"})
    kb = small_kb(persist_dir=tmp_path / "db", max_file_chars=2000)
    report = kb.ingest(docs)
    status = {f.source: f for f in report.files}
    assert status["big.txt"].status == IngestStatus.FAILED
    assert "文字太多" in status["big.txt"].detail and "拆成几个小文件" in status["big.txt"].detail
    assert status["small.md"].status == IngestStatus.ADDED
    assert kb.sources() == ["small.md"]


def test_a_text_file_far_over_the_limit_is_refused_from_its_size(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    docs = write_corpus(tmp_path / "docs", {"huge.md": "字" * 2000})  # 6000 字节 > 4 × 1000
    kb = small_kb(persist_dir=tmp_path / "db", max_file_chars=1000)
    monkeypatch.setattr("helpers.knowledge.ingest.load_file", lambda *a, **k: pytest.fail("不该读进来"))
    detail = kb.ingest(docs).files[0].detail
    assert detail.startswith("文字太多：") and "至少" in detail


def test_a_file_over_the_time_limit_fails_with_the_stage(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs", {"a.md": "# 标题\n\n一段文字。"})
    kb = small_kb(persist_dir=tmp_path / "db", max_file_seconds=0.0)  # 任何一步都算超时
    detail = kb.ingest(docs).files[0].detail
    assert detail.startswith("处理超时：加载与清洗用了") and "秒的上限" in detail
    assert kb.count() == 0


def test_the_assistant_refuses_a_huge_text_within_seconds(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    db = tmp_path / "db"
    synced_kb(corpus, db)  # 先建好集合
    kb = open_knowledge_base(collection="app-test", persist_dir=db)
    assert kb.writer.max_file_chars == MAX_FILE_CHARS
    assistant = make_assistant(kb, corpus, tmp_path / "up", max_upload_mb=20)
    client = TestClient(create_api(assistant, mcp=False))
    before = kb.count()
    text = ("检索增强生成先检索资料再回答问题并给出出处" * 11 + "\n") * (MAX_FILE_CHARS // 220 + 100)
    started = time.perf_counter()
    r = client.post("/api/documents", files={"file": ("book.txt", text.encode())})
    took = time.perf_counter() - started
    assert r.status_code == 422
    assert "文字太多" in r.json()["detail"] and "知识库未改动" in r.json()["detail"]
    assert took < 15, f"拒绝用了 {took:.1f} 秒"
    assert kb.count() == before
    assert not (tmp_path / "up" / "book.txt").exists()


# ---- 隔离：入库时中断的上传、启动时入库失败的上传，不再拖住以后的每次启动 -------------------------------
def test_an_upload_interrupted_during_ingest_is_quarantined_at_the_next_start(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture
                                                                             ) -> None:
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    up = tmp_path / "up"
    up.mkdir()
    (up / "ok.md").write_text("# 正常\n\n正常的上传文档。\n", encoding="utf-8")
    (up / "bad.md").write_text("# 新版本\n\n入库它时服务被 kill -9。\n", encoding="utf-8")
    (up / ".backup-bad.md").write_text("# 旧版本\n\n之前上传成功的旧版本。\n", encoding="utf-8")
    (up / f"{INGESTING_PREFIX}bad.md").touch()  # 服务死在入库 bad.md 的途中
    kb = small_kb(persist_dir=tmp_path / "db")
    with caplog.at_level(logging.WARNING, logger="helpers.app"):
        sync_knowledge_base(kb, corpus, up)
    assert (up / QUARANTINE_DIR / "bad.md").read_text(encoding="utf-8").startswith("# 新版本")  # 新版本没丢
    assert (up / "bad.md").read_text(encoding="utf-8").startswith("# 旧版本")  # 旧版本换回来、照常可检索
    assert not list(up.glob(".ingesting-*")) and not list(up.glob(".backup-*"))
    assert "ok.md" in kb.sources() and "bad.md" in kb.sources()
    assert any("隔离  bad.md" in r.message and "重新上传" in r.message for r in caplog.records)


def test_a_failing_upload_is_quarantined_but_a_course_document_stays(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    corpus = write_corpus(tmp_path / "corpus", {**PLACES, "empty.md": "   \n"})
    up = tmp_path / "up"
    up.mkdir()
    (up / "huge.txt").write_text("很长的文字。" * 1000, encoding="utf-8")
    kb = small_kb(persist_dir=tmp_path / "db", max_file_chars=2000)
    with caplog.at_level(logging.WARNING, logger="helpers.app"):
        report = sync_knowledge_base(kb, corpus, up)
    assert {f.source for f in report.failed} == {"huge.txt", "empty.md"}
    assert (up / QUARANTINE_DIR / "huge.txt").is_file() and not (up / "huge.txt").exists()
    assert (corpus / "empty.md").is_file()  # 课程文档不动
    assert any("隔离  huge.txt：启动时入库失败（文字太多" in r.message for r in caplog.records)
    again = sync_knowledge_base(kb, corpus, up)  # 下次启动：不再重试它
    assert {f.source for f in again.failed} == {"empty.md"}


def test_an_upload_marks_itself_while_it_is_ingested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    kb = synced_kb(corpus, tmp_path / "db")
    assistant = make_assistant(kb, corpus, tmp_path / "up")
    seen: list[bool] = []
    real = kb.ingest

    def watching(paths, root=None):  # 入库进行中：标记在；进程若此刻死掉，下次启动就隔离它
        seen.append((tmp_path / "up" / f"{INGESTING_PREFIX}note.md").exists())
        return real(paths, root)

    monkeypatch.setattr(kb, "ingest", watching)
    assistant.upload("note.md", "# 笔记\n\n一篇普通的笔记。\n".encode())
    assert seen == [True]
    assert not list((tmp_path / "up").glob(".ingesting-*"))  # 入库结束就删掉
