"""按结构切块（标题路径）与语义切块（chonkie）：块带 heading，start 是原文偏移，结果可复现（第 8 章）。"""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from helpers.knowledge.split import (
    adjacent_overlaps,
    semantic_chunks,
    split_by_headings,
    split_documents,
    with_heading_context,
)

GUIDE = (
    "# RAG 实践指南\n\n本文介绍检索增强生成。\n\n"
    "## 一、为什么需要 RAG\n\n### 1.1 大模型的三个短板\n\n" + "知识有截止日期，模型会编造答案。" * 12 + "\n\n"
    "### 1.2 RAG 的基本思路\n\n先检索资料，再把资料和问题一起交给模型。\n\n"
    "```python\n# 这是代码注释，不是标题\nprint('hi')\n```\n\n"
    "## 二、RAG 流水线\n\n加载、清洗、切分、向量化与入库。"
)


def _assert_offsets(chunks: list[Document], docs: list[Document]) -> None:
    """每块正文都能按 start 在原文里原样找回。"""
    by_key = {(d.metadata["source"], d.metadata.get("page")): d.page_content for d in docs}
    for c in chunks:
        text = by_key[(c.metadata["source"], c.metadata.get("page"))]
        start = c.metadata["start"]
        assert text[start:start + len(c.page_content)] == c.page_content


def test_markdown_chunks_carry_the_heading_path_and_original_offsets():
    docs = [Document(GUIDE, metadata={"source": "guide.md", "file": "guide.md"})]
    chunks = split_by_headings(docs, chunk_size=80, chunk_overlap=20)
    headings = [c.metadata["heading"] for c in chunks]
    assert headings[0] == "RAG 实践指南"
    assert "RAG 实践指南 > 一、为什么需要 RAG > 1.1 大模型的三个短板" in headings
    assert headings[-1] == "RAG 实践指南 > 二、RAG 流水线"
    code = next(c for c in chunks if "代码注释" in c.page_content)  # 代码块里的 # 不是标题
    assert code.metadata["heading"].endswith("1.2 RAG 的基本思路")
    _assert_offsets(chunks, docs)
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))
    assert all(len(c.page_content) <= 80 for c in chunks)
    assert max(adjacent_overlaps(chunks)) > 0  # 同一节里的相邻块照旧重叠


def test_chunks_never_cross_a_heading():
    docs = [Document(GUIDE, metadata={"source": "guide.md"})]
    for c in split_by_headings(docs, chunk_size=300, chunk_overlap=60):
        assert c.page_content.count("\n## ") + c.page_content.startswith("## ") <= 1
        assert not ("三个短板" in c.page_content and "基本思路" in c.page_content)


def test_text_without_headings_is_split_like_today():
    docs = [Document("没有标题的纯文本。" * 40, metadata={"source": "a.txt"})]
    new = split_by_headings(docs)
    old = split_documents(docs)
    assert [c.page_content for c in new] == [c.page_content for c in old]
    assert [c.metadata["start"] for c in new] == [c.metadata["start"] for c in old]
    assert {c.metadata["heading"] for c in new} == {""}


def test_documents_with_a_heading_keep_it():
    doc = Document("表格第 3 行：报销上限 500 元。", metadata={"source": "a.docx", "heading": "财务制度 > 报销"})
    (chunk,) = split_by_headings([doc])
    assert chunk.metadata["heading"] == "财务制度 > 报销"


def test_pdf_pages_get_numbered_headings_carried_across_pages():
    pages = ["第3章 线性模型\n3.1 基本形式\n线性模型试图学得一个通过属性的线性组合来进行预测的函数。",
             "续上页的推导，得到闭式解。\n3.2 线性回归\n给定数据集，线性回归试图学得一个线性模型。"]
    docs = [Document(p, metadata={"source": "book.pdf", "page": i}) for i, p in enumerate(pages)]
    chunks = split_by_headings(docs, chunk_size=40, chunk_overlap=0)
    def heading_of(start: str) -> str:
        return next(c.metadata["heading"] for c in chunks if c.page_content.startswith(start))

    assert heading_of("续上页的推导") == "第3章 线性模型 > 3.1 基本形式"  # 上一页的标题延续下来
    assert heading_of("3.2 线性回归") == "第3章 线性模型 > 3.2 线性回归"
    _assert_offsets(chunks, docs)


def test_heading_context_is_prepended_for_indexing_only():
    chunk = Document("块大小常取 300 字。", metadata={"heading": "三、块大小 > 3.1 块大小"})
    assert with_heading_context(chunk) == "三、块大小 > 3.1 块大小\n块大小常取 300 字。"
    assert chunk.page_content == "块大小常取 300 字。"
    assert with_heading_context(chunk, depth=1) == "3.1 块大小\n块大小常取 300 字。"  # 只要最后一级
    assert with_heading_context(Document("无标题。", metadata={})) == "无标题。"


class TopicEmbeddings(Embeddings):
    """测试用：按三个主题字计数的三维向量（话题一换，相似度就掉下来）。"""

    def _vec(self, text: str) -> list[float]:
        return [text.count("猫") + 0.01, text.count("股") + 0.01, text.count("雨") + 0.01]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


TOPICS = ("".join(f"第{i}只猫喜欢在窗台上晒太阳。" for i in range(6))
          + "".join(f"第{i}支股票今天收盘上涨了。" for i in range(6))
          + "".join(f"第{i}场雨让街道变得湿漉漉。" for i in range(6)))


def test_semantic_chunks_split_where_the_topic_changes():
    docs = [Document(TOPICS, metadata={"source": "mix.txt", "file": "mix.txt"})]
    chunks = semantic_chunks(docs, TopicEmbeddings(), chunk_size=300)
    assert [c.page_content[2] for c in chunks] == ["只", "支", "场"]  # 猫、股票、雨各一块
    assert all(set(c.metadata) >= {"source", "start", "chunk", "file"} for c in chunks)
    assert [c.metadata["chunk"] for c in chunks] == [0, 1, 2]
    _assert_offsets(chunks, docs)


def test_semantic_chunks_are_deterministic_and_bounded():
    docs = [Document(TOPICS * 3, metadata={"source": "mix.txt", "page": 2})]
    a = semantic_chunks(docs, TopicEmbeddings(), chunk_size=60)
    b = semantic_chunks(docs, TopicEmbeddings(), chunk_size=60)
    assert [(c.page_content, c.metadata) for c in a] == [(c.page_content, c.metadata) for c in b]
    assert all(len(c.page_content) <= 60 and c.metadata["page"] == 2 for c in a)
    _assert_offsets(a, docs)
