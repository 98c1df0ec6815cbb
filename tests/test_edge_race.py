"""并发的读与写（可靠性探测 F5、F6）：一次写入只建一次新副本，读者不排队重建；增量更新与整个重读结果一样；
上传、删除与提问、检索、打开原文同时进行时，没有一个 5xx。"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from helpers.app import create_api
from helpers.knowledge import KnowledgeBase, index as index_mod
from helpers.knowledge.search import BM25Index
from tests.support.corpus import PLACES, write_corpus
from tests.support.factories import make_assistant, synced_kb


def _same(kb: KnowledgeBase, db: Path) -> None:
    """kb 的副本（增量更新来的）与新打开、整个重读的副本逐块相同，检索结果也相同。"""
    fresh = KnowledgeBase(kb.collection_name.split("-c")[0], persist_dir=db)
    a, b = kb.index.current(), fresh.index.current()
    assert {d.id: (d.page_content, d.metadata) for d in a.docs} == {d.id: (d.page_content, d.metadata) for d in b.docs}
    ids = sorted(a.rows)
    assert np.allclose(a.vectors[[a.rows[i] for i in ids]], b.vectors[[b.rows[i] for i in ids]], atol=1e-6)
    for q in ("桂花拿铁多少钱", "银杏的树龄", "考试在哪个教室", "新开的书店"):
        assert [d.id for d, _ in kb.hybrid(q, 3)] == [d.id for d, _ in fresh.hybrid(q, 3)]


def _warm_kb(tmp_path: Path) -> tuple[KnowledgeBase, Path, Path]:
    """同步好 PLACES、副本已建好的知识库，外加一个空的上传区：(库, 文档目录, 上传区)。"""
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    up = tmp_path / "up"
    up.mkdir()
    kb = synced_kb(corpus, tmp_path / "db")
    kb.warm()
    return kb, corpus, up


def test_incremental_snapshot_equals_a_full_read(tmp_path: Path) -> None:
    kb, corpus, up = _warm_kb(tmp_path)
    start = kb.index.rebuilds
    new = up / "shop.md"
    new.write_text("# 新开的书店\n\n街角新开的书店叫拾光书店，周一休息。\n", encoding="utf-8")
    kb.ingest([new], root=up)  # 新增
    _same(kb, tmp_path / "db")
    new.write_text("# 新开的书店\n\n拾光书店改名为晨光书店，周二休息。\n\n店里有咖啡。\n", encoding="utf-8")
    kb.ingest([new], root=up)  # 更新：删旧块、加新块
    _same(kb, tmp_path / "db")
    kb.delete_source("shop.md")  # 删除
    _same(kb, tmp_path / "db")
    kb.sync(corpus, up)
    _same(kb, tmp_path / "db")
    assert kb.index.rebuilds - start == 4  # 每次写入正好一次（增量），没有整个重读


def test_one_rebuild_per_write_and_readers_never_rebuild(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    kb = synced_kb(corpus, tmp_path / "db")
    assistant = make_assistant(kb, corpus, tmp_path / "up")
    assistant.warm_up()
    before = kb.index.rebuilds
    assistant.upload("shop.md", "# 拾光书店\n\n拾光书店周一休息，店里卖旧书。\n".encode())
    assert kb.index.rebuilds == before + 1
    with ThreadPoolExecutor(32) as pool:  # 写入之后 32 个并发检索：一个也不重建，都看得到新文档
        found = list(pool.map(lambda _: assistant.search("拾光书店哪天休息", 1)[0]["source"], range(32)))
    assert found == ["shop.md"] * 32
    assert kb.index.rebuilds == before + 1


def test_readers_keep_the_old_snapshot_during_a_write(tmp_path: Path) -> None:
    kb, _, up = _warm_kb(tmp_path)
    (up / "shop.md").write_text("# 拾光书店\n\n拾光书店周一休息。\n", encoding="utf-8")
    with kb.index.writing():  # 写入进行中（还没返回）
        kb.writer.ingest([up / "shop.md"], root=up)
        rebuilds = kb.index.rebuilds
        got: list[list[str]] = []
        def read() -> None:
            got.append([d.metadata["source"] for d, _ in kb.hybrid("拾光书店", 3)])

        reader = threading.Thread(target=read)
        started = time.perf_counter()
        reader.start()
        reader.join(5)
        assert time.perf_counter() - started < 2, "写入进行中，读者不该排队等"
        assert got and "shop.md" not in got[0]  # 旧副本：新文档还看不到
        assert kb.index.rebuilds == rebuilds
    assert kb.hybrid("拾光书店", 1)[0][0].metadata["source"] == "shop.md"  # 写入返回后一定看得到


@pytest.mark.parametrize("page", [3])
def test_uploads_and_deletes_racing_queries_give_no_5xx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         page: int) -> None:
    monkeypatch.setattr(index_mod, "_READ_PAGE", page)  # 小页：整个重读要翻很多页，删除容易夹在中间
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    kb = synced_kb(corpus, tmp_path / "db")
    assistant = make_assistant(kb, corpus, tmp_path / "up")
    client = TestClient(create_api(assistant, mcp=False))
    statuses: list[tuple[str, int]] = []
    stop = time.monotonic() + 6

    def writer(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            name = f"volatile{n}-{i % 3}.md"
            body = f"# 临时文档 {n}\n\n临时文档 {n} 第 {i} 版，讲的是桂花拿铁。\n".encode()
            statuses.append(("upload", client.post("/api/documents", files={"file": (name, body)}).status_code))
            statuses.append(("delete", client.delete(f"/api/documents/{name}").status_code))
            i += 1

    def reader() -> None:
        while time.monotonic() < stop:
            kb.index.reset()  # 逼它整个重读，与删除交错
            statuses.append(("search", client.get("/api/search", params={"q": "桂花拿铁"}).status_code))
            r = client.post("/api/chat", json={"question": "临时文档讲的是什么？"})
            statuses.append(("chat", r.status_code))
            for name in ("volatile0-0.md", "volatile1-1.md", "coffee.md"):
                statuses.append(("fetch", client.get(f"/api/documents/{name}").status_code))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)] + \
              [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = [s for s in statuses if s[1] >= 500]
    assert len(statuses) > 30
    assert not bad, f"{len(bad)} 个 5xx：{bad[:5]}"
    assert {code for kind, code in statuses if kind == "fetch"} <= {200, 404}


def test_fetching_a_document_deleted_meanwhile_is_a_404(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    kb = synced_kb(corpus, tmp_path / "db")
    assistant = make_assistant(kb, corpus, tmp_path / "up")
    assistant.upload("gone.md", "# 将被删\n\n这篇文档马上被删掉。\n".encode())
    client = TestClient(create_api(assistant, mcp=False))
    real = assistant.document_path

    def then_deleted(name: str) -> Path:  # 找到路径之后、打开之前，别人把它删了
        path = real(name)
        path.unlink()
        return path

    monkeypatch.setattr(assistant, "document_path", then_deleted)
    r = client.get("/api/documents/gone.md")
    assert r.status_code == 404
    assert "没有找到文档" in r.json()["detail"]


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_an_updated_bm25_index_scores_like_a_fresh_build(analyzer: str) -> None:
    texts = ["星河咖啡馆的招牌饮品是桂花拿铁。", "青藤植物园里最古老的树是银杏，式(9.35)给出树龄。",
             "期末考试在教学楼 302 室。", "桂花拿铁每杯 28 元，咖啡馆七点开门。"]
    new = ["拾光书店周一休息，店里也卖桂花拿铁。", "银杏的树龄约 800 年，见式(9.35)。"]
    old = BM25Index.build(texts, analyzer)
    keep = np.array([3, 0, 1])  # 删掉第 2 篇、换个顺序，再接上两篇新的
    fresh = BM25Index.build([texts[i] for i in keep] + new, analyzer)
    grown = old.updated(keep, new)
    for query in ("桂花拿铁", "银杏树龄", "式(9.35)", "书店哪天休息", "302"):
        assert np.allclose(grown.score(query), fresh.score(query)), query


def test_a_reader_building_an_index_during_a_refresh_does_not_break_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """写入方增量更新旧副本的 BM25 索引时，另一个读者正好给旧副本建字级索引（CI 里真出过：
    RuntimeError: dictionary changed size during iteration，问答返回 500）。"""
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    up = tmp_path / "up"
    up.mkdir()
    kb = synced_kb(corpus, tmp_path / "db")
    kb.warm(("word",))  # 旧副本只有词级索引
    old = kb.index.current()
    assert set(old.indexes) == {"word"}
    real = BM25Index.updated

    def updated_while_another_reader_builds(self: BM25Index, *args: object, **kw: object) -> BM25Index:
        old.bm25("char")  # 这一刻另一个读者建好了字级索引
        return real(self, *args, **kw)

    monkeypatch.setattr(BM25Index, "updated", updated_while_another_reader_builds)
    (up / "shop.md").write_text("# 拾光书店\n\n拾光书店周一休息。\n", encoding="utf-8")
    kb.ingest([up / "shop.md"], root=up)
    new = kb.index.peek()  # 更新失败时写入方会丢掉副本（peek 得 None），读者那边则直接报错
    assert new is not None and new is not old and "word" in new.indexes
    assert kb.hybrid("拾光书店", 1)[0][0].metadata["source"] == "shop.md"
