"""KnowledgeBase：增量入库、同步、断点续入、坏文件、隔离的集合与各种检索（嵌入式 Chroma）。"""

from __future__ import annotations

import numpy as np
import pymupdf
import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from helpers.config import load_settings
from helpers.knowledge import IngestStatus, KnowledgeBase, chunk_ids, course_knowledge_base, split_documents
from helpers.knowledge.index import dense_scores
from helpers.llm import OfflineEmbeddings
from helpers.rag import relevance_scores
from tests.support.corpus import make_pdf, write_corpus
from tests.support.factories import small_kb


@pytest.fixture
def kb(tmp_path):
    """空的小块知识库（SMALL_CHUNKS），每个测试一份。"""
    return small_kb("test", tmp_path / "db")


def test_ingest_is_idempotent_and_reports_in_chinese(kb, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    first = kb.ingest(corpus)
    assert [f.status for f in first.files] == ["新增"] * 3
    assert kb.sources() == ["prompt.md", "rag.md", "sub/deploy.txt"]
    n = kb.count()
    assert first.chunks_added == n > 3
    second = kb.ingest(corpus)
    assert [f.status for f in second.files] == ["跳过"] * 3 and second.chunks_added == 0
    assert kb.count() == n
    assert "跳过  rag.md：未改动" in str(second)


def test_edit_replaces_chunks_and_sync_deletes(kb, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    kb.ingest(corpus)
    (corpus / "rag.md").write_text("# 检索增强生成\n\n全新的内容：重排序模型对候选块重新打分。", encoding="utf-8")
    (corpus / "prompt.md").unlink()
    report = kb.sync(corpus)
    status = {f.source: f.status for f in report.files}
    assert status == {"rag.md": "更新", "sub/deploy.txt": "跳过", "prompt.md": "删除"}
    texts = [d.page_content for d, _ in kb.bm25("重排序 幻觉 提示词", k=20)]
    assert any("重排序" in t for t in texts)
    assert not any("幻觉" in t or "提示词" in t for t in texts)
    assert kb.sources() == ["rag.md", "sub/deploy.txt"]
    assert kb.delete_source("rag.md") > 0 and kb.sources() == ["sub/deploy.txt"]


class FlakyEmbeddings(OfflineEmbeddings):
    """第 N 次批量嵌入时抛异常，模拟入库中途断掉。"""

    calls: int = 0
    fail_at: int = 2

    def embed_documents(self, texts):
        type(self).calls += 1
        if type(self).calls == self.fail_at:
            raise RuntimeError("模拟的网络中断")
        return super().embed_documents(texts)


def test_interrupted_ingest_is_completed_by_next_run(tmp_path):
    corpus = write_corpus(tmp_path / "docs", {"long.md": "。".join(f"第{i}句讲一个知识点" for i in range(200))})
    ref = KnowledgeBase("ref", persist_dir=tmp_path / "db", chunk_size=40, chunk_overlap=0, batch_size=8)
    ref.ingest(corpus)
    flaky = KnowledgeBase("flaky", persist_dir=tmp_path / "db", chunk_size=40, chunk_overlap=0,
                          batch_size=8, embeddings=FlakyEmbeddings())
    with pytest.raises(RuntimeError, match="模拟"):
        flaky.ingest(corpus)
    assert 0 < flaky.count() < ref.count()
    report = flaky.ingest(corpus)
    assert [f.status for f in report.files] == ["更新"]
    assert flaky.count() == ref.count()
    assert sorted(flaky.collection.get()["ids"]) == sorted(ref.collection.get()["ids"])
    assert [f.status for f in flaky.ingest(corpus).files] == ["跳过"]


def test_bad_files_each_get_one_chinese_line(kb, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    good_pdf = make_pdf(corpus / "good.pdf", ["第一页讲嵌入模型。", "第二页讲向量检索。", "第三页讲重排序。"])
    kb.ingest(corpus)
    before = kb.count()
    enc = pymupdf.open(good_pdf)
    enc.save(corpus / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"not really a pdf " * 20)
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    (corpus / "weird.txt").write_bytes(bytes(range(128, 256)) * 20)
    (corpus / "table.xlsx").write_bytes(b"PK\x03\x04")  # 扩展名是 .xlsx，内容是残缺的 zip
    (corpus / "voice.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with open(corpus / "huge.txt", "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    (corpus / "new.md").write_text("新加入的文件讲知识库的权限控制。", encoding="utf-8")
    (corpus / "rag.md").write_bytes(b"")  # 已入库的文件被清空：旧块要保留
    report = kb.ingest(corpus)
    reasons = {f.source: f.detail for f in report.failed}
    assert set(reasons) == {"locked.pdf", "broken.pdf", "empty.md", "image.md", "weird.txt",
                            "table.xlsx", "voice.m4a", "huge.txt", "rag.md"}
    assert "加密" in reasons["locked.pdf"] and "损坏" in reasons["broken.pdf"]
    assert "为空" in reasons["empty.md"] and "二进制" in reasons["image.md"]
    assert "编码" in reasons["weird.txt"] and "不是有效的 .xlsx" in reasons["table.xlsx"]
    assert "不支持的文件类型 .m4a" in reasons["voice.m4a"]
    assert "50.0 MB" in reasons["huge.txt"] and "保留旧的" in reasons["rag.md"]
    assert all(len(str(f).splitlines()) == 1 for f in report.files)
    assert {f.source: f.status for f in report.files}["new.md"] == "新增"
    assert kb.count() > before  # 旧内容一块没少，新文件也进来了
    assert "rag.md" in kb.sources()


def test_configs_never_share_a_collection(tmp_path):
    a = KnowledgeBase("cmp", persist_dir=tmp_path / "db", chunk_size=100, chunk_overlap=10)
    b = KnowledgeBase("cmp", persist_dir=tmp_path / "db", chunk_size=300, chunk_overlap=10)
    assert a.collection_name != b.collection_name
    corpus = write_corpus(tmp_path / "docs", {"x.md": "。".join(f"第{i}句话" for i in range(100))})
    a.ingest(corpus)
    assert b.count() == 0 and a.count() > 0
    with pytest.raises(ValueError, match="集合名"):
        KnowledgeBase("中文 名字", persist_dir=tmp_path / "db")


def test_no_default_embedding_function(kb):
    assert kb.collection.configuration.get("embedding_function") is None


def test_search_kinds_scores_filters_and_retriever(kb, tmp_path):
    kb.ingest(write_corpus(tmp_path / "docs"))
    dense = kb.dense("倒数排名融合", k=2)
    assert dense[0][0].metadata["source"] == "rag.md" and dense[0][1] >= dense[1][1]
    assert kb.bm25("倒数排名融合", k=1)[0][0].metadata["source"] == "rag.md"
    assert kb.hybrid("倒数排名融合", k=1)[0][0].metadata["source"] == "rag.md"
    picked = kb.mmr("检索", k=3, fetch_k=10)
    assert len({d.id for d, _ in picked}) == 3
    only = kb.hybrid("检索", k=5, filter={"source": "sub/deploy.txt"})
    assert only and {d.metadata["source"] for d, _ in only} == {"sub/deploy.txt"}
    for kind in ("hybrid", "dense", "bm25", "mmr"):
        retriever = kb.as_retriever(kind, k=2)
        assert isinstance(retriever, BaseRetriever)
        docs = retriever.invoke("Gradio 界面")
        assert docs and all("score" in d.metadata for d in docs), kind
        assert docs[0].metadata["source"] == "sub/deploy.txt", kind
    with pytest.raises(ValueError, match="检索方式"):
        kb.as_retriever("magic")


def test_hybrid_dense_part_is_exact_and_sees_new_writes_at_once(kb, tmp_path):
    """混合检索的向量一路在内存里精确计算：与 Chroma 的检索同序；别的实例刚写入的块马上能搜到。"""
    kb.ingest(write_corpus(tmp_path / "docs"))
    snap = kb.index.current()
    scores = dense_scores(snap, kb.embeddings.embed_query("倒数排名融合"))
    mine = [snap.docs[i].id for i in np.argsort(-scores, kind="stable")[:5]]
    theirs = [d.id for d, _ in kb.dense("倒数排名融合", k=5)]
    assert mine == theirs
    assert np.allclose(sorted(scores, reverse=True)[:5], [s for _, s in kb.dense("倒数排名融合", k=5)],
                       atol=1e-5)
    other = small_kb("test", tmp_path / "db")
    extra = write_corpus(tmp_path / "more", {"moon.md": "月球车在环形山里采集岩石样本。"})
    report = other.ingest(extra)
    assert report.chunks_added == 1 and report.write_seconds > 0
    assert kb.hybrid("月球车 岩石", k=1)[0][0].metadata["source"] == "moon.md"
    other.delete_source("moon.md")
    assert all(d.metadata["source"] != "moon.md" for d, _ in kb.hybrid("月球车 岩石", k=5))


def test_empty_store_returns_nothing(kb):
    assert kb.dense("任何问题") == [] and kb.bm25("任何问题") == [] and kb.hybrid("任何问题") == []


def test_course_knowledge_base_ingests_once(tmp_path, monkeypatch):
    from helpers.knowledge import store

    corpus = write_corpus(tmp_path / "kdb")
    monkeypatch.setattr(store, "KNOWLEDGE_DIR", corpus)
    monkeypatch.setattr(store, "_COURSE_KB", {})
    settings = load_settings(vector_db_dir=tmp_path / "vdb")
    kb = course_knowledge_base(settings)
    assert kb.count() > 0 and kb.last_report.count("新增") == 3
    assert course_knowledge_base(settings) is kb
    again = course_knowledge_base(settings, refresh=True)
    assert again.last_report.count("跳过") == 3 and again.count() == kb.count()
    assert (tmp_path / "vdb").is_dir()


def test_status_enum_prints_like_the_chinese_literals(kb, tmp_path):
    report = kb.ingest(write_corpus(tmp_path / "docs"))
    added = report.files[0]
    assert added.status == IngestStatus.ADDED == "新增" and report.count(IngestStatus.ADDED) == 3
    assert str(added) == f"新增  {added.source}：{added.detail}"
    assert repr(added) == f"FileStatus(source={added.source!r}, status='新增', detail={added.detail!r})"
    assert report.summary() == "共 3 个文件：新增 3，失败 0；写入 4 块，删除 0 块；库中现有 4 块"


def test_add_chunks_writes_split_chunks_and_is_searchable_at_once(kb):
    chunks = split_documents([Document("月球车在环形山里采集岩石样本。", metadata={"source": "moon.md"})])
    assert kb.hybrid("月球车") == []
    assert kb.add_chunks(chunks) == 1 and kb.count() == 1
    (doc, _), = kb.hybrid("月球车", k=1)
    assert doc.id == chunk_ids(chunks)[0] and doc.metadata == chunks[0].metadata


def test_retriever_docs_carry_the_cosine(kb, tmp_path):
    kb.ingest(write_corpus(tmp_path / "docs"))
    for kind in ("hybrid", "dense", "bm25", "mmr"):
        docs = kb.as_retriever(kind, k=2).invoke("倒数排名融合")
        cosine = [d.metadata["dense_score"] for d in docs]
        assert all(d.metadata["dense_query"] == "倒数排名融合" for d in docs), kind
        assert cosine == pytest.approx(relevance_scores("倒数排名融合", docs, kb.embeddings), abs=1e-6), kind


@pytest.mark.parametrize("prefetch", [1, 10_000])  # 一次读出全部已有块，或逐个文件查库：结果一样
def test_many_files_sync_the_same_with_or_without_the_prefetch(tmp_path, monkeypatch, prefetch):
    from helpers.knowledge import ingest

    monkeypatch.setattr(ingest, "PREFETCH_FILES", prefetch)
    notes = {f"note{i:02d}.md": f"# 第 {i} 篇\n\n编号 {i} 的笔记讲向量检索。" for i in range(40)}
    docs = write_corpus(tmp_path / "docs", notes)
    kb = small_kb(persist_dir=tmp_path / "db")
    assert {f.status for f in kb.ingest(docs).files} == {IngestStatus.ADDED}
    (docs / "note07.md").write_text("# 第 7 篇\n\n改过了：这一篇改讲 BM25。", encoding="utf-8")
    (docs / "note08.md").unlink()
    report = kb.sync(docs)
    statuses = {f.source: f.status for f in report.files}
    assert statuses["note07.md"] == IngestStatus.UPDATED and statuses["note08.md"] == IngestStatus.DELETED
    assert sum(s == IngestStatus.SKIPPED for s in statuses.values()) == 38
    assert kb.sources() == sorted(f"note{i:02d}.md" for i in range(40) if i != 8)
