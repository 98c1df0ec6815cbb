"""损坏的向量库（issue 16 F14）：启动时给一句中文和下一步，不吐回溯；--rebuild 从文档与上传区重建，旧目录改名保留。"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.app import server
from helpers.config import load_settings
from helpers.errors import StoreCorruptError
from helpers.knowledge import KnowledgeBase


def _store(tmp_path: Path) -> Path:
    """建一个有一块的小库，返回它的目录。"""
    db = tmp_path / "vector_db"
    doc = tmp_path / "corpus" / "rules.md"
    doc.parent.mkdir()
    doc.write_text("# 借阅规则\n\n每位读者最多借 10 本书，借期 30 天。", encoding="utf-8")
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    kb.ingest(doc.parent)
    return db


@pytest.mark.parametrize("damage", ["header", "truncated", "random"])
def test_a_corrupt_store_says_how_to_rebuild(tmp_path, damage):
    db = _store(tmp_path)
    sqlite = db / "chroma.sqlite3"
    data = bytearray(sqlite.read_bytes())
    if damage == "header":
        data[:100] = os.urandom(100)
    elif damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data = bytearray(os.urandom(len(data)))
    sqlite.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError) as info:
        KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    message = str(info.value)
    assert "向量库文件损坏" in message and "--rebuild" in message and "chroma.sqlite3" in message
    assert len(message.splitlines()) == 1


def _env(monkeypatch, tmp_path: Path, db: Path) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    monkeypatch.setenv("EMBEDDING_PROVIDER", "offline")
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    monkeypatch.setenv("VECTOR_DB_DIR", str(db))
    monkeypatch.setenv("APP_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("APP_UPLOADS_DIR", str(tmp_path / "uploads"))


def test_server_start_on_a_corrupt_store_exits_with_advice_then_rebuilds(tmp_path, monkeypatch, capsys):
    db = _store(tmp_path)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "notes.md").write_text("上传的笔记：周三闭馆。", encoding="utf-8")
    (db / "chroma.sqlite3").write_bytes(b"not a database at all" * 100)
    _env(monkeypatch, tmp_path, db)
    served = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: served.append(app))

    assert server.main(["--no-ui"]) == 2  # 不启动，也不吐回溯
    err = capsys.readouterr().err
    assert "向量库文件损坏" in err and "--rebuild" in err and "Traceback" not in err
    assert not served

    assert server.main(["--no-ui", "--rebuild"]) == 0
    out = capsys.readouterr().out
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("vector_db.corrupt-")]
    assert len(kept) == 1 and (kept[0] / "chroma.sqlite3").read_bytes().startswith(b"not a database")
    assert "改名保留" in out and served  # 重建后照常启动
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    assert kb.sources() == ["notes.md", "rules.md"]  # 课程文档与上传的文件都回来了


def test_rebuild_refuses_a_chroma_server(monkeypatch):
    from helpers.app.service import rebuild_knowledge_base
    from helpers.config import ConfigError

    with pytest.raises(ConfigError, match="Chroma 服务"):
        rebuild_knowledge_base(load_settings(chroma_host="127.0.0.1"))


def test_upload_into_a_store_that_broke_while_running_says_what_to_do(tmp_path, monkeypatch):
    from helpers.app.service import AppConfig, Assistant
    from helpers.errors import AppError

    db = _store(tmp_path)
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    assistant = Assistant(kb, config=AppConfig(uploads_dir=tmp_path / "uploads"), corpus_dir=tmp_path / "corpus")

    def broken(*args, **kwargs):
        raise RuntimeError("Database error: error returned from database: (code: 11) database disk image is malformed")

    monkeypatch.setattr(kb, "ingest", broken)
    with pytest.raises(AppError) as info:
        assistant.upload("notes.md", "周三闭馆。".encode())
    assert info.value.status == 503 and "向量库文件损坏" in info.value.message and "--rebuild" in info.value.message
    assert not (tmp_path / "uploads" / "notes.md").exists()  # 没入库的文件不留在上传区


def test_an_upload_deleted_from_disk_can_still_be_deleted(tmp_path):
    """F16：上传区里的文件被手动删掉后，DELETE 仍能把库里的块删掉；课程自带的文档仍然不能删。"""
    from helpers.app.service import AppConfig, Assistant
    from helpers.errors import AppError

    db = _store(tmp_path)
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    assistant = Assistant(kb, config=AppConfig(uploads_dir=tmp_path / "uploads"), corpus_dir=tmp_path / "corpus")
    assistant.upload("orphan.md", "周三闭馆，周四照常开放。".encode())
    (tmp_path / "uploads" / "orphan.md").unlink()
    assert "orphan.md" in assistant.document_names()
    result = assistant.delete("orphan.md")
    assert result["deleted"] and result["chunks"] >= 1
    assert "orphan.md" not in assistant.document_names()
    with pytest.raises(AppError) as info:
        assistant.delete("rules.md")
    assert info.value.status == 403


def test_a_crash_inside_the_upload_window_loses_nothing(tmp_path):
    """F15：新版本改名前崩溃，只剩 .backup- 旧版本与 .upload- 临时文件；下次启动同步时旧版本回来、临时文件清掉。"""
    from helpers.app.service import sync_knowledge_base

    db = _store(tmp_path)
    up = tmp_path / "uploads"
    up.mkdir()
    (up / ".backup-crashwin.md").write_text("旧版本：周三闭馆。", encoding="utf-8")
    (up / ".upload-abc123.md").write_text("写了一半", encoding="utf-8")
    (up / "done.md").write_text("新版本已写好。", encoding="utf-8")
    (up / ".backup-done.md").write_text("done 的旧版本", encoding="utf-8")
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    sync_knowledge_base(kb, tmp_path / "corpus", up)
    assert sorted(p.name for p in up.iterdir()) == ["crashwin.md", "done.md"]
    assert (up / "crashwin.md").read_text(encoding="utf-8") == "旧版本：周三闭馆。"
    assert (up / "done.md").read_text(encoding="utf-8") == "新版本已写好。"
    assert {"crashwin.md", "done.md", "rules.md"} == set(kb.sources())


def test_one_assistant_process_per_embedded_store(tmp_path, monkeypatch, capsys):
    """F4：嵌入式库同时只能有一个写入进程——第二个助手、或没设 CHROMA_HOST 的 --workers 2，都拒绝启动并说明怎么办。"""
    db = _store(tmp_path)
    _env(monkeypatch, tmp_path, db)
    served = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: served.append(app))
    assert server.main(["--no-ui", "--workers", "2"]) == 2
    assert "CHROMA_HOST" in capsys.readouterr().err and not served
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")  # 有 Chroma 服务也不行：界面不能多进程（issue 15）
    assert server.main(["--workers", "2"]) == 2
    assert "--no-ui" in capsys.readouterr().err and not served
    monkeypatch.delenv("CHROMA_HOST")
    other = server.store_lock(db)  # 另一个进程已经占着这个库
    try:
        assert server.main(["--no-ui"]) == 2
        err = capsys.readouterr().err
        assert "另一个助手进程正在使用向量库" in err and "Traceback" not in err and not served
    finally:
        other.release()
    assert server.main(["--no-ui"]) == 0 and served  # 锁放开了就能启动
    assert server.main(["--no-ui"]) == 0  # 上一个服务停了，锁随之放开


def test_chat_bodies_have_a_size_limit(tmp_path):
    """F9：问答接口的 JSON 请求体有上限——声明超限的直接 413，分块发送（没有 Content-Length）的边收边数，同样 413。"""
    from fastapi.testclient import TestClient

    from helpers.app import create_app
    from helpers.app.api import JSON_BODY_LIMIT
    from helpers.app.service import AppConfig, Assistant

    db = _store(tmp_path)
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    client = TestClient(create_app(Assistant(kb, config=AppConfig(uploads_dir=tmp_path / "up"),
                                             corpus_dir=tmp_path / "corpus"), ui=False))
    huge = b'{"question": "' + b"a" * (JSON_BODY_LIMIT + 10) + b'"}'
    for path in ("/api/chat", "/api/chat/stream"):
        r = client.post(path, content=huge, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "上限" in r.json()["detail"]
        chunks = (huge[i : i + 8192] for i in range(0, len(huge), 8192))  # 生成器：分块发送，不带 Content-Length
        r = client.post(path, content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "问答接口" in r.json()["detail"]
    ok = client.post("/api/chat", json={"question": "每位读者最多借几本书？"})
    assert ok.status_code == 200


def test_the_ui_answers_several_users_at_once(tmp_path):
    """F18：Gradio 默认一个事件同时只处理 1 个请求；问答事件放开到 UI_CHAT_CONCURRENCY 个。"""
    from helpers.app.service import AppConfig, Assistant
    from helpers.app.ui import UI_CHAT_CONCURRENCY, create_ui

    db = _store(tmp_path)
    kb = KnowledgeBase("assistant", settings=load_settings(chroma_host=None), persist_dir=db)
    demo = create_ui(Assistant(kb, config=AppConfig(uploads_dir=tmp_path / "up"), corpus_dir=tmp_path / "corpus"))
    limits = {fn.name: fn.concurrency_limit for fn in demo.fns.values()}
    assert limits["respond"] == UI_CHAT_CONCURRENCY >= 8


def test_a_shared_store_keeps_documents_uploaded_through_another_host(tmp_path):
    """issue 15：几台主机共用一个库（CHROMA_HOST）、各有各的上传区；一台重启时的同步不能删掉别的主机上传的文档。"""
    import dataclasses

    from helpers.app import sync_knowledge_base
    from tests.support.corpus import PLACES, write_corpus
    from tests.support.factories import small_kb

    corpus = write_corpus(tmp_path / "corpus", PLACES)
    up_a, up_b = tmp_path / "host-a", tmp_path / "host-b"
    up_a.mkdir()
    up_b.mkdir()
    (up_a / "from-a.md").write_text("# 甲主机\n\n从甲主机上传的文档。\n", encoding="utf-8")
    kb = small_kb(persist_dir=tmp_path / "db")
    sync_knowledge_base(kb, corpus, up_a)  # 甲主机启动
    assert "from-a.md" in kb.sources()
    report = sync_knowledge_base(kb, corpus, up_b, keep_missing=True)  # 乙主机启动：本机没有 from-a.md
    assert "from-a.md" in kb.sources()
    kept = next(f for f in report.files if f.source == "from-a.md")
    assert kept.status == "跳过" and "别的主机" in kept.detail
    embedded = kb.settings
    kb.settings = dataclasses.replace(embedded, chroma_host="chroma.internal")  # 连 Chroma 服务时默认就保留
    sync_knowledge_base(kb, corpus, up_b)
    assert "from-a.md" in kb.sources()
    kb.settings = embedded  # 嵌入式：只有一台主机，照旧删掉
    sync_knowledge_base(kb, corpus, up_b)
    assert "from-a.md" not in kb.sources()
