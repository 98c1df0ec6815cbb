"""检索流水线的第 8 章开关：符号/三字/公式编号特征、切块方式、标题上下文、重排序与跨文件的后台写入。"""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.documents import Document

from helpers.knowledge import KnowledgeBase
from helpers.knowledge.ingest import CHUNKERS, make_chunker
from helpers.knowledge.search import BM25Index
from helpers.offline import embeddings as emb
from helpers.text import equation_numbers, feature_counts, features

FORMULA = "对 α 求偏导 ∂L/∂α = 0，得到\nw = ∑ α_i y_i x_i (6.9)\n代入式(6.8)即得对偶问题。"


def test_symbol_trigram_and_equation_features_are_opt_in():
    plain = features(FORMULA)
    assert not any(f.startswith(("s:", "t:", "e:")) for f in plain)  # 默认特征与以前一样
    rich = features(FORMULA, symbols=True, trigrams=True, equations="label")
    assert rich["s:α"] == 3 and rich["s:∂"] == 2 and rich["s:∑"] == 1
    assert "t:求偏导" in rich and "e:6.9" in rich and "e:6.8" not in rich  # 式(6.8) 是引用，不是定义
    assert features("推导式（6.8）", equations="ref")["e:6.8"] == 1  # 全角括号也认
    assert equation_numbers("由式(\n6.16)得 (6.17 )\n", "label") == ["6.17"]
    assert equation_numbers("式(6.16)与式(6.17)", "ref") == ["6.16", "6.17"]
    with pytest.raises(ValueError):
        equation_numbers("x", "both")
    # 批量版与逐条版抽出的特征一样多
    doc, keys, tf = feature_counts([FORMULA, "长江"], symbols=True, trigrams=True, equations="label")
    assert int(tf[doc == 0].sum()) == sum(rich.values())
    assert set(doc.tolist()) == {0, 1}


def test_bm25_equation_feature_finds_the_defining_chunk():
    texts = ["支持向量机的对偶问题：w = ∑ α_i y_i x_i (6.9)\n",
             "由式(6.9)可知，只有支持向量的 α_i 不为零，式(6.9)很重要。", "核函数把样本映射到高维空间。"]
    q = "根据上下文推导式(6.9)"
    plain = BM25Index.build(texts, "char", equations=False)
    rich = BM25Index.build(texts, "char", equations=True, equation_weight=2.0)
    assert plain.top(q, 1)[0][0] == 1  # 只看字与数字：引用它两次的那块排第一
    assert rich.top(q, 1)[0][0] == 0  # 行末的编号对上问题里的 式(6.9)：定义它的那块排第一
    sym = BM25Index.build(["θ 的估计", "参数的估计"], "char", symbols=True)
    assert sym.top("θ", 2) == sym.top("θ", 1) and sym.top("θ", 1)[0][0] == 0


def test_offline_embedding_options_change_vectors_only_when_asked():
    base = emb.embed_texts([FORMULA])
    assert np.array_equal(base, emb.embed_texts([FORMULA], symbols=False, trigrams=False))
    assert not np.array_equal(base, emb.embed_texts([FORMULA], symbols=True))
    assert np.linalg.norm(emb.embed_texts([FORMULA], trigrams=True)) == pytest.approx(1.0, abs=1e-5)


MD = ("# 第一章 检索\n\n## 1.1 混合检索\n\n混合检索把向量检索与 BM25 的分数融合。\n\n"
      "## 1.2 重排序\n\n重排序对候选逐对打分。\n")


def test_every_chunker_by_name(tmp_path):
    docs = [Document(MD, metadata={"source": "a.md", "file": "a.md"})]
    for name in CHUNKERS:
        chunks = make_chunker(name, 40, 5, emb_model())(docs)
        assert chunks and all(c.page_content.strip() for c in chunks), name
    heads = make_chunker("headings", 40, 5)(docs)
    assert any("1.2 重排序" in c.metadata.get("heading", "") for c in heads)
    with pytest.raises(ValueError, match="不认识的切块方式"):
        make_chunker("magic", 40, 5)
    with pytest.raises(ValueError, match="嵌入模型"):
        make_chunker("semantic", 40, 5)


def emb_model():
    from helpers.llm import OfflineEmbeddings

    return OfflineEmbeddings()


def test_knowledge_base_options_get_their_own_collection(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(MD, encoding="utf-8")
    default = KnowledgeBase("opts", persist_dir=tmp_path / "db", chunk_size=40, chunk_overlap=5)
    headed = KnowledgeBase("opts", persist_dir=tmp_path / "db", chunk_size=40, chunk_overlap=5,
                           chunker="headings", heading_context=True)
    assert default.collection_name != headed.collection_name
    assert "chunker" not in default.config and headed.config["chunker"] == "headings"
    headed.ingest(tmp_path / "docs")
    hit = headed.hybrid("重排序怎样打分", k=1)[0][0]
    assert hit.metadata["heading"].endswith("1.2 重排序") and not hit.page_content.startswith("第一章")
    with pytest.raises(ValueError, match="不认识的切块方式"):
        KnowledgeBase("opts", persist_dir=tmp_path / "db", chunker="magic")


class _Reverse:
    """假的重排序器：把第一阶段的顺序倒过来，记下收到的第一阶段分数。"""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def rerank(self, query, docs, top_n=None):
        self.seen = [d.metadata["score"] for d in docs]
        pairs = [(d, float(i)) for i, d in enumerate(docs)][::-1]
        return pairs[:top_n]


def test_hybrid_rerank_stage(tmp_path):
    (tmp_path / "docs").mkdir()
    for i in range(6):
        (tmp_path / "docs" / f"{i}.md").write_text(f"第 {i} 篇讲检索与重排序，编号 {i}。", encoding="utf-8")
    fake = _Reverse()
    kb = KnowledgeBase("rr", persist_dir=tmp_path / "db", chunk_size=60, chunk_overlap=0, reranker=fake,
                       rerank=False)
    kb.ingest(tmp_path / "docs")
    first = kb.hybrid("检索与重排序", k=6)  # 只融合：第 4 章的混合检索
    again = kb.hybrid("检索与重排序", k=2, rerank=True)
    assert fake.seen == sorted(fake.seen, reverse=True) and len(fake.seen) == 6  # 候选带着第一阶段分数
    assert [d.id for d, _ in again] == [d.id for d, _ in first][::-1][:2]
    assert "score" not in again[0][0].metadata  # 返回的是库里原来的块
    docs = kb.as_retriever("hybrid_rerank", k=2).invoke("检索与重排序")
    assert [d.id for d in docs] == [d.id for d, _ in again] and "dense_score" in docs[0].metadata
    on = KnowledgeBase("rr", persist_dir=tmp_path / "db", chunk_size=60, chunk_overlap=0, reranker=fake)
    assert on.rerank_default  # 默认：融合之后再重排序
    assert [d.id for d, _ in on.hybrid("检索与重排序", k=2)] == [d.id for d, _ in again]
    assert [d.id for d, _ in on.hybrid("检索与重排序", k=6, rerank=False)] == [d.id for d, _ in first]


def test_background_writer_spans_files(tmp_path):
    """批比一个文件的块少：零头留到下一个文件一起写，全部块都进库、报告的块数对得上。"""
    (tmp_path / "docs").mkdir()
    for i in range(5):
        body = "。".join(f"文件 {i} 的第 {j} 句讲检索" for j in range(12))
        (tmp_path / "docs" / f"{i}.md").write_text(body, encoding="utf-8")
    kb = KnowledgeBase("w", persist_dir=tmp_path / "db", chunk_size=40, chunk_overlap=0, batch_size=7)
    report = kb.ingest(tmp_path / "docs")
    assert report.chunks_added == kb.count() > 7 * 3 and report.write_seconds > 0
    assert {m["file"] for m in kb.collection.get(include=["metadatas"])["metadatas"]} == {f"{i}.md" for i in range(5)}
    assert kb.ingest(tmp_path / "docs").count("跳过") == 5  # 每个文件的块都写全了：第二次全部跳过
