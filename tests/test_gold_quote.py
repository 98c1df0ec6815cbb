"""gold 的 quote：块的正文要含这段原文才算命中；评估集里的每段 quote 都真在原文里、也装得进一块。"""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document

from helpers import evaluation as ev
from helpers.config import KNOWLEDGE_DIR
from helpers.evaluation.dataset import _squash_spaces
from helpers.knowledge import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, load_directory, split_documents
from helpers.rag import RagAnswer, Source

EMBED = Document("如果 add 时不传入向量，Chroma 会调用默认嵌入函数。", metadata={"source": "vec.md", "chunk": 24})
METRIC = Document("### 3.3 欧氏距离\nChroma 的默认度量\n就是 `l2`，也就是平方 L2 距离。",
                  metadata={"source": "vec.md", "chunk": 15})
GOLD = [{"source": "vec.md", "quote": "Chroma 的默认度量就是 `l2`"}]


def test_quote_hit_and_miss_in_the_right_file():
    assert ev.matches(METRIC, GOLD[0])
    assert not ev.matches(EMBED, GOLD[0])  # 同一文件、没有这句话：不算命中
    assert not ev.matches(Document(METRIC.page_content, metadata={"source": "rag.md"}), GOLD[0])
    assert ev.first_hit_rank([EMBED, METRIC], GOLD) == 2  # 只标到文件时这里是 1
    assert ev.first_hit_rank([EMBED, METRIC], [{"source": "vec.md"}]) == 1
    assert ev.hit_at_k([EMBED, METRIC], GOLD, 1) == 0.0 and ev.reciprocal_rank([EMBED, METRIC], GOLD) == 0.5


def test_quote_ignores_whitespace_and_line_breaks():
    doc = Document("每个节点在图中保留的\n最大邻居数，常取 16\n到 64。", metadata={"source": "x.md"})
    assert ev.is_hit(doc, [{"source": "x.md", "quote": "最大邻居数，常取 16 到 64"}])
    assert ev.is_hit(doc, [{"source": "x.md", "quote": "最大邻居数，常取16到64"}])
    assert not ev.is_hit(doc, [{"source": "x.md", "quote": "最大邻居数，常取 16 到 32"}])


def test_page_and_quote_must_both_match():
    page3 = Document("检索层：得分低于阈值时直接拒答。", metadata={"source": "book.pdf", "page": 3})
    page4 = Document(page3.page_content, metadata={"source": "book.pdf", "page": 4})
    gold = [{"source": "book.pdf", "page": 3, "quote": "得分低于阈值时直接拒答"}]
    assert ev.is_hit(page3, gold) and not ev.is_hit(page4, gold)
    assert not ev.is_hit(page3, [{"source": "book.pdf", "page": 3, "quote": "得分高于阈值时直接拒答"}])


def test_entries_without_quote_keep_the_old_rule():
    meta = {"source": "book.pdf", "page": 3, "chunk": 7}
    assert ev.is_hit(meta, [{"source": "book.pdf", "page": "3"}])  # 元数据字典照旧可用
    assert ev.is_hit(Document("任意内容", metadata=meta), [{"source": "book.pdf"}])
    assert ev.recall_at_k([EMBED, METRIC], [{"source": "vec.md"}, GOLD[0]], 2) == 1.0
    assert ev.first_matches([EMBED, METRIC], [GOLD[0], {"source": "vec.md"}]) == [1, 0]


def test_quote_needs_the_chunk_text_not_just_metadata():
    with pytest.raises(ValueError, match="请传入检索到的块"):
        ev.is_hit(METRIC.metadata, GOLD)


def test_citation_checks_the_whole_cited_chunk():
    # Source 只带前 120 字的摘录：quote 在摘录之后时，要从 answer.retrieved 找回整块
    long = Document("引言。" * 50 + "Chroma 的默认度量就是 `l2`。", metadata={"source": "vec.md", "page": None})
    src = Source(1, "vec.md", None, long.page_content.strip()[:120])
    answer = RagAnswer("q", "默认是 l2 [1]", "q", [src], retrieved=[(long, 0.9)])
    assert ev.citation_scores(answer, GOLD)["citation_accuracy"] == 1.0
    wrong = RagAnswer("q", "[1]", "q", [Source(1, "vec.md", None, EMBED.page_content)], retrieved=[(EMBED, 0.9)])
    assert ev.citation_scores(wrong, GOLD)["citation_accuracy"] == 0.0


@pytest.mark.parametrize("quote", ["l2", "  默 认 度  ", 7])
def test_loader_rejects_bad_quotes(quote):
    line = json.dumps({"id": "X1", "question": "q", "gold": [{"source": "a.md", "quote": quote}],
                       "answer": "a", "type": "lookup"}, ensure_ascii=False)
    with pytest.raises(ValueError, match="quote"):
        ev.parse_qa_line(line)


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return load_directory(KNOWLEDGE_DIR)


def test_every_quote_in_the_eval_set_is_in_its_source(corpus):
    text: dict[str, list[str]] = {}
    for d in corpus:
        text.setdefault(d.metadata["source"], []).append(_squash_spaces(d.page_content))
    # 最小的块（C6 的切块实验里最小是 200 字、不重叠）也要装得下每段 quote，否则这题在那种切法下无从命中
    smallest = split_documents(corpus, chunk_size=200, chunk_overlap=0)
    default = split_documents(corpus, chunk_size=DEFAULT_CHUNK_SIZE, chunk_overlap=DEFAULT_CHUNK_OVERLAP)
    problems = []
    for item in ev.load_qa():
        for g in item.gold:
            if "quote" not in g:
                continue
            quote, where = _squash_spaces(g["quote"]), f"{item.id}（{g['source']}）：quote {g['quote']!r}"
            pages = text.get(g["source"], [])
            if "page" in g:
                pages = pages[g["page"]:g["page"] + 1]
            if not any(quote in p for p in pages):
                problems.append(f"{where} 不在原文里（要逐字摘自资料）")
                continue
            for name, chunks in (("默认切块", default), ("200 字不重叠的切块", smallest)):
                if not any(ev.matches(c, g) for c in chunks if c.metadata["source"] == g["source"]):
                    problems.append(f"{where} 在{name}里没有一块完整含有它（摘短一些）")
    assert not problems, "评估集的 quote 有误：\n" + "\n".join(problems)


def test_every_fact_is_verbatim_on_a_gold_page_and_fits_in_a_chunk(corpus):
    pages = {(d.metadata["source"], d.metadata.get("page")): _squash_spaces(d.page_content) for d in corpus}
    smallest = split_documents(corpus, chunk_size=200, chunk_overlap=0)
    problems = []
    for item in ev.load_qa():
        for fact in item.facts:
            where = f"{item.id}：fact {fact!r}"
            on = [(g["source"], g.get("page")) for g in item.gold]
            if not any(_squash_spaces(fact) in pages.get(key, "") for key in on):
                problems.append(f"{where} 不在它的 gold 页上（要逐字摘自那一页）")
            elif not ev.facts_in_context([c for c in smallest if (c.metadata["source"], c.metadata.get("page")) in on],
                                         [fact]):
                problems.append(f"{where} 在 200 字不重叠的切块里没有一块完整含有它（摘短一些）")
    assert not problems, "评估集的 facts 有误：\n" + "\n".join(problems)


def test_eval_set_is_quote_level_where_possible():
    golds = [g for i in ev.load_qa() for g in i.gold]
    file_level = [g for g in golds if set(g) == {"source"}]
    assert sum("quote" in g for g in golds) >= 100 and not file_level
