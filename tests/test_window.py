"""句子窗口（第 8 章）：搜小块、返回大段——命中的块换成它与前后相邻块接成的一段，重叠只留一份。"""

from __future__ import annotations

from langchain_core.documents import Document

from helpers.knowledge import KnowledgeBase
from helpers.knowledge.index import merge_passage

TEXT = ("第一句讲切块。" * 6 + "第二段讲重叠。" * 6 + "第三段讲窗口检索，它把相邻块接起来。" * 3
        + "第四段讲别的事情。" * 6)


def test_merge_passage_drops_the_overlap():
    a = Document(page_content="甲乙丙丁", metadata={"start": 0})
    b = Document(page_content="丙丁戊己", metadata={"start": 2})
    c = Document(page_content="庚辛", metadata={"start": 10})  # 中间有缺口：另起一行
    assert merge_passage([a, b]) == "甲乙丙丁戊己"
    assert merge_passage([a, b, c]) == "甲乙丙丁戊己\n庚辛"


def test_window_returns_the_neighbours_of_the_hit(tmp_path):
    kb = KnowledgeBase("win", persist_dir=tmp_path / "db", chunk_size=60, chunk_overlap=10)
    (tmp_path / "a.md").write_text(TEXT, encoding="utf-8")
    (tmp_path / "b.md").write_text("另一个文件讲窗口检索。", encoding="utf-8")
    kb.ingest([tmp_path / "a.md", tmp_path / "b.md"])
    hit = next(d for d, _ in kb.hybrid("窗口检索把相邻块接起来", 3) if d.metadata["source"] == "a.md")
    wide = kb.expand([hit], window=1)[0]
    assert wide.id == hit.id and wide.metadata["chunk"] == hit.metadata["chunk"]  # 命中的仍是那一块
    assert hit.page_content in wide.page_content and len(wide.page_content) > len(hit.page_content)
    assert wide.page_content in TEXT  # 接出来的是原文里连续的一段，重叠没有重复
    assert 2 <= wide.metadata["window"] <= 3
    assert kb.expand([hit], window=0)[0].page_content == hit.page_content
    # 检索器的 window 参数：同样的块，正文换成窗口
    got = kb.as_retriever("hybrid", k=2, window=1).invoke("窗口检索把相邻块接起来")
    plain = kb.as_retriever("hybrid", k=2).invoke("窗口检索把相邻块接起来")
    assert [d.id for d in got] == [d.id for d in plain]
    assert all(p.page_content in g.page_content for p, g in zip(plain, got))
    other = next(d for d in plain + got if d.metadata["source"] == "b.md") if any(
        d.metadata["source"] == "b.md" for d in plain) else None
    if other is not None:  # 只有一块的文件：窗口就是它自己
        assert kb.expand([other], 2)[0].page_content == other.page_content
