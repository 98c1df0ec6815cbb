"""句子窗口切分与相邻块重叠的度量（第 4 章）。"""

from __future__ import annotations

from langchain_core.documents import Document

from helpers.knowledge import split_documents
from helpers.knowledge.split import adjacent_overlaps, split_sentence_windows

TEXT = ("检索增强生成先检索再回答。它能减少幻觉，并给出出处！切块太大，检索不准；切块太小，上下文不够。"
        "重叠让边界上的句子不被拦腰截断。" * 3)


def test_recursive_splitter_can_leave_boundaries_without_overlap():
    chunks = split_documents([Document(TEXT, metadata={"source": "a.md"})], chunk_size=30, chunk_overlap=10)
    overlaps = adjacent_overlaps(chunks)
    assert overlaps and max(overlaps) <= 0  # 每句都比 10 字长：一段也带不过去


def test_sentence_windows_share_a_whole_sentence_at_every_boundary():
    doc = Document(TEXT, metadata={"source": "a.md"})
    windows = split_sentence_windows([doc], chunk_size=40)
    overlaps = adjacent_overlaps(windows)
    assert len(windows) > 2 and all(o > 0 for o in overlaps)
    assert all(len(w.page_content) <= 40 for w in windows)
    for w in windows:  # start 指向原文里的位置
        assert TEXT[w.metadata["start"]:w.metadata["start"] + len(w.page_content)] == w.page_content
    for a, b in zip(windows, windows[1:]):  # 后一块以前一块的最后一句开头
        shared = a.page_content[b.metadata["start"] - a.metadata["start"]:]
        assert b.page_content.startswith(shared) and shared[-1] in "。！？；"
    assert [w.metadata["chunk"] for w in windows] == list(range(len(windows)))


def test_sentence_windows_cut_overlong_sentences_and_keep_pages_apart():
    long = "很长的一句话，" * 20 + "结束。"
    pages = [Document(long, metadata={"source": "b.pdf", "page": 0}),
             Document("第二页。只有两句。", metadata={"source": "b.pdf", "page": 1})]
    windows = split_sentence_windows(pages, chunk_size=50)
    assert all(len(w.page_content) <= 50 for w in windows)
    assert {w.metadata["page"] for w in windows} == {0, 1}
    assert len(adjacent_overlaps(windows)) == len(windows) - 2  # 跨页的一对不比较
    assert split_sentence_windows([Document("", metadata={"source": "c.md"})]) == []
