"""helpers.knowledge 的加载、清洗、切分与 BM25（不启动 Chroma，几秒内跑完）。"""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.knowledge import (
    BM25Index,
    LoadError,
    clean_pdf_pages,
    clean_text,
    decode_text,
    discover,
    is_page_number,
    join_broken_lines,
    load_directory,
    load_file,
    matches_filter,
    normalize_whitespace,
    rrf_fuse,
    split_documents,
    weighted_fuse,
)
from helpers.knowledge.search import CHAR_UNIGRAM
from helpers.text import char_tokens, word_tokens
from tests.support.corpus import make_pdf


def test_page_number_patterns():
    for line in ["第 3 页", "第3页 / 共10页", "— 12 —", "- 7 -", "3/10", "Page 4", "17"]:
        assert is_page_number(line), line
    for line in ["第三章 总结", "2024 年的报告", "共 3 种方法"]:
        assert not is_page_number(line), line


def test_pdf_pages_headers_footers_removed(tmp_path):
    pages = ["第1节 嵌入\n嵌入模型把文本变成向量数据库能存的向量。",
             "第2节 切分\n切分决定了向量数据库里每一块有多长。",
             "第3节 检索\n相似度检索从向量数据库取回最近的几块。",
             "第4节 过滤\n元数据过滤让向量数据库只在指定文件里找。",
             "第5节 混合\n混合检索把关键词和向量数据库的结果合并。"]
    path = make_pdf(tmp_path / "book.pdf", pages)
    raw = load_file(path, tmp_path, clean=False)
    docs = load_file(path, tmp_path)
    assert [d.metadata["page"] for d in docs] == [0, 1, 2, 3, 4]
    assert all(d.metadata["source"] == "book.pdf" for d in docs)
    assert "示例手册" in raw[0].page_content and "— 1 —" in raw[0].page_content
    for d in docs:
        assert "示例手册" not in d.page_content and "—" not in d.page_content
        assert "向量数据库" in d.page_content


def test_chapter_varying_running_header_removed():
    body = ["需求分析先问用户是谁。", "选型要看数据能否出域。", "知识库需要专人维护。", "切块大小影响召回。",
            "提示词要版本化管理。", "上线前先做压力测试。", "成本随调用量增长。", "监控要覆盖拒答率。"]
    pages = [f"{text}\n手册名称 · 第{i // 2 + 1}章 章名{i // 2}\n第 {i + 1} 页" for i, text in enumerate(body)]
    cleaned = clean_pdf_pages(pages)
    assert cleaned == body


def test_join_broken_lines_inside_chinese_sentences():
    text = ("大模型应用的技术选型，首先要在两条路线之间做出选择：一条是调用闭源模型厂商提供的\n"
            "接口，另一条是下载开源模型在自有环境中部署。两条路线没有绝对的优劣，关键在于你的约束\n"
            "条件是什么。\n"
            "2.2 选型决策的四个硬约束\n"
            "我们建议按照以下顺序检查四个硬约束。")
    out = join_broken_lines(text)
    assert "厂商提供的接口" in out and "你的约束条件是什么。" in out
    assert "是什么。\n2.2 选型决策的四个硬约束\n我们建议" in out  # 标题和段落之间不接


def test_whitespace_normalized():
    assert normalize_whitespace("大 模 型\t\t应用  很好\n\n\n\n第1章 需求") == "大模型应用 很好\n\n第1章 需求"
    assert clean_text("  标题\r\n\r\n正文  ") == "标题\n\n正文"


def test_split_keeps_punctuation_and_offsets(tmp_path):
    text = "。".join(f"第{i}句话讲述知识库的一个要点，并给出具体的做法" for i in range(30)) + "。"
    (tmp_path / "a.md").write_text(text, encoding="utf-8")
    docs = load_file(tmp_path / "a.md", tmp_path)
    chunks = split_documents(docs, chunk_size=80, chunk_overlap=20)
    assert len(chunks) > 5
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert len(c.page_content) <= 80
        assert not c.page_content.startswith("。")  # 句号跟着前一句
        start = c.metadata["start"]
        assert docs[0].page_content[start : start + len(c.page_content)] == c.page_content
        assert c.metadata["source"] == "a.md"
    with pytest.raises(ValueError, match="chunk_overlap"):
        split_documents(docs, chunk_size=50, chunk_overlap=50)


def test_pdf_chunks_keep_page(tmp_path):
    path = make_pdf(tmp_path / "p.pdf", ["第一页讲嵌入。" * 5, "第二页讲切分。" * 5, "第三页讲检索。" * 5])
    chunks = split_documents(load_file(path, tmp_path), chunk_size=20, chunk_overlap=0)
    assert {c.metadata["page"] for c in chunks} == {0, 1, 2}
    assert all("检索" in c.page_content for c in chunks if c.metadata["page"] == 2)


def test_decode_utf8_gbk_and_errors():
    text = "知识库助手需要正确读取国标编码的文件。"
    assert decode_text(text.encode("utf-8")) == (text, "utf-8")
    assert decode_text(text.encode("gbk"))[0] == text
    assert decode_text("你好".encode("gbk"))[0] == "你好"  # 短文本也不能被认成 big5
    assert decode_text(b"\xef\xbb\xbf" + text.encode("utf-8"))[0] == text
    with pytest.raises(LoadError, match="二进制"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    rng = np.random.default_rng(0)
    with pytest.raises(LoadError, match="编码"):
        decode_text(bytes(rng.integers(128, 256, 3000, dtype=np.uint8)))


def test_jsonl_corpus_carries_id_and_metadata(tmp_path):
    rows = [{"id": "p1", "text": "北京是中国的首都。", "metadata": {"title": "北京", "tags": ["城市"]}},
            {"id": 2, "text": "上海是直辖市。"}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows),
                                           encoding="utf-8")
    docs = load_file(tmp_path / "corpus.jsonl", tmp_path)
    assert docs[0].metadata == {"source": "corpus.jsonl", "title": "北京", "tags": '["城市"]',
                                "id": "p1", "file": "corpus.jsonl"}
    assert docs[1].metadata["id"] == 2
    (tmp_path / "bad.jsonl").write_text('{"text": "缺 id"}\n', encoding="utf-8")
    with pytest.raises(LoadError, match="第 1 行"):
        load_file(tmp_path / "bad.jsonl", tmp_path)


def test_directory_walk_relative_sources(tmp_path):
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "a.md").write_text("# 标题\n\n正文", encoding="utf-8")
    (tmp_path / "sub" / "deep" / "b.txt").write_bytes("国标编码的中文文本".encode("gbk"))
    (tmp_path / "sub" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    (tmp_path / ".hidden.md").write_text("不该被加载", encoding="utf-8")
    root, files = discover(tmp_path)
    assert [f.source for f in files] == ["a.md", "sub/c.png", "sub/deep/b.txt"]
    errors: list[tuple[str, str]] = []
    docs = load_directory(tmp_path, errors=errors)
    assert [d.metadata["source"] for d in docs] == ["a.md", "sub/deep/b.txt"]
    assert docs[1].page_content == "国标编码的中文文本"
    assert errors and errors[0][0] == "sub/c.png" and "不支持的文件类型" in errors[0][1]


class LuceneIdfBM25:
    """rank-bm25 的 BM25Okapi，换成永远为正的 Lucene idf（字级时单字 idf 打折）。"""

    def __new__(cls, corpus, unigram=1.0, **kw):
        from rank_bm25 import BM25Okapi

        class Ref(BM25Okapi):
            def _calc_idf(self, nd):
                self.idf = {w: np.log1p((self.corpus_size - n + 0.5) / (n + 0.5)) * (unigram if len(w) == 1 else 1)
                            for w, n in nd.items()}

        return Ref(corpus, **kw)


TEXTS = ["向量数据库用于存储嵌入", "BM25 是经典的关键词检索算法", "混合检索结合向量与关键词",
         "Chroma 是一个向量数据库", "今天的天气很好"]


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_bm25_matches_rank_bm25(analyzer):
    tok = word_tokens if analyzer == "word" else char_tokens
    index = BM25Index.build(TEXTS, analyzer)
    params = {"k1": 1.2, "b": 0.75} if analyzer == "word" else {"k1": 0.9, "b": 0.5, "unigram": CHAR_UNIGRAM}
    reference = LuceneIdfBM25([tok(t) for t in TEXTS], **params)
    for query in ["向量数据库", "关键词检索 BM25", "天气"]:
        assert np.allclose(index.score(query), reference.get_scores(tok(query))), query
    assert index.top("向量数据库", 2)[0][0] in (0, 3)
    assert index.top("火星文字", 3) == []
    assert BM25Index.build(["只有一篇文档"], analyzer).top("文档", 1)[0][1] > 0  # 小知识库也搜得到


def test_top_k_breaks_ties_by_position_and_can_keep_negative_scores():
    from helpers.knowledge.search import top_k

    scores = np.array([0.5, 2.0, 2.0, 2.0, 0.0, -1.0])
    assert top_k(scores, 2) == [(1, 2.0), (2, 2.0)]  # 同分按序号，不管 partition 怎么切
    assert top_k(scores, 10) == [(1, 2.0), (2, 2.0), (3, 2.0), (0, 0.5)]  # 0 分及负分不要
    allowed = np.array([True, False, False, True, True, True])
    assert top_k(scores, 10, allowed, positive=False) == [(3, 2.0), (0, 0.5), (4, 0.0), (5, -1.0)]
    assert top_k(scores, 0) == [] and top_k(np.zeros(0), 3) == []


def test_char_features_in_batches_equal_one_pass():
    from helpers.knowledge.search import _feature_counts_batched
    from helpers.offline.embeddings import feature_counts

    for got, want in zip(_feature_counts_batched(TEXTS, batch=2), feature_counts(TEXTS)):
        assert np.array_equal(got, want)


def test_word_tokens_are_jieba_words():
    assert word_tokens("向量数据库，用 Chroma！") == ["向量", "数据库", "用", "chroma"]


def test_word_tokens_match_python_jieba_on_the_course_corpus():
    """rjieba（Rust）要与 jieba 切得一模一样：包括 gpt-4o、base_url、3.5 这类英文与数字。"""
    import jieba

    from helpers.config import KNOWLEDGE_DIR
    from helpers.text import _PUNCT, normalize

    lines = [line for path in sorted(KNOWLEDGE_DIR.glob("*.md"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines += ["GPT-4o 与 gpt-3.5-turbo 的 base_url、top_p=0.9、90% 的 Qwen2.5-7B"]
    assert len(lines) > 500
    for line in lines:
        expected = [w for w in jieba.lcut(normalize(line)) if w.strip() and not _PUNCT.match(w)]
        assert word_tokens(line) == expected, line


def test_fusion_and_filter():
    assert [key for key, _ in weighted_fuse([{"a": 2.0, "b": 1.0}, {"b": 10.0}], [1.0, 1.0])] == ["b", "a"]
    fused = rrf_fuse([["a", "b", "c"], ["b", "a", "d"]], k=60)
    assert [key for key, _ in fused[:2]] == ["a", "b"] and fused[-1][0] == "d"
    meta = {"source": "rag.md", "page": 3}
    assert matches_filter(meta, {"source": "rag.md"})
    assert matches_filter(meta, {"$and": [{"page": {"$gte": 2}}, {"source": {"$in": ["rag.md"]}}]})
    assert not matches_filter(meta, {"$or": [{"page": 1}, {"source": {"$ne": "rag.md"}}]})
