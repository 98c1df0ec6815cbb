"""python -m helpers.bench：命中判定、指标、JSON 契约与规模基准（小夹具，几秒跑完）。"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.documents import Document

from helpers import evaluation as ev
from helpers.evaluation import bench

FIXTURES = Path(__file__).parent / "fixtures" / "knowledge"
CONTRACT_KEYS = ["retriever", "default", "hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "queries",
                 "chunks", "ingest_s", "query_p50_ms", "query_p95_ms", "peak_mem_mb"]


def test_hit_rules():
    meta = {"source": "book.pdf", "page": 3, "chunk": 7}
    assert ev.is_hit(meta, [{"source": "book.pdf", "page": "3"}])  # 页码按整数比较
    assert ev.is_hit(meta, [{"source": "x.md"}, {"page": 3}])  # 命中任意一条 gold 即可
    assert not ev.is_hit(meta, [{"source": "book.pdf", "page": 4}])
    assert not ev.is_hit({"source": "book.pdf"}, [{"source": "book.pdf", "page": 0}])
    docs = [Document("a", metadata={"id": "p9"}), Document("b", metadata={"id": "p2"})]
    assert ev.first_hit_rank(docs, [{"id": "p2"}]) == 2
    assert ev.first_hit_rank(docs, [{"id": "p5"}]) is None


def test_metrics():
    m = ev.metrics_from_ranks([1, 3, None, 12], (1, 3, 10))
    assert m == {"hit@1": 0.25, "hit@3": 0.5, "hit@10": 0.5, "mrr@10": pytest.approx((1 + 1 / 3) / 4)}


def test_retrieval_cli_writes_the_contract(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = bench.main(["retrieval", "--docs", str(FIXTURES / "docs"), "--queries",
                       str(FIXTURES / "queries.jsonl"), "--chunk-size", "80", "--chunk-overlap", "10",
                       "--out", str(out)])
    assert code == 0
    rows = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert [r["retriever"] for r in rows] == ["dense", "bm25", "hybrid"]
    assert all(list(r) == CONTRACT_KEYS for r in rows)
    assert [r["default"] for r in rows] == [False, False, True]
    assert all(r["queries"] == 4 and r["chunks"] >= 3 for r in rows)  # 无答案的问题不计入
    hybrid = rows[2]
    assert hybrid["hit@5"] == 1.0 and 0 < hybrid["mrr@10"] <= 1
    printed = capsys.readouterr().out
    assert "*hybrid" in printed and "另有 1 个无答案问题" in printed


def test_retrieval_on_jsonl_corpus_with_ids():
    inp = bench.BenchInput(FIXTURES / "corpus.jsonl", ev.load_queries(FIXTURES / "corpus_queries.jsonl"))
    rows = bench.run_retrieval(inp, ["hybrid", "bm25char", "tfidf"], ks=(1, 3))
    assert [r["retriever"] for r in rows] == ["hybrid", "bm25char", "tfidf"]
    assert rows[0]["hit@1"] == 1.0 and rows[0]["chunks"] == 3
    assert set(rows[0]) >= {"hit@1", "hit@3", "mrr@3"}


def test_cli_rejects_bad_input(tmp_path, capsys):
    assert bench.main(["retrieval", "--docs", str(tmp_path / "nope"), "--queries",
                       str(FIXTURES / "queries.jsonl")]) == 2
    assert "找不到" in capsys.readouterr().err
    assert bench.main(["retrieval", "--docs", str(FIXTURES / "docs"), "--queries",
                       str(FIXTURES / "queries.jsonl"), "--retriever", "magic"]) == 2
    with pytest.raises(SystemExit):
        bench.main(["retrieval", "--docs", "x", "--queries", "y", "--k", "1,a"])


def test_scale_small(monkeypatch):
    texts = bench.synthetic_chunks(5, seed=1)
    assert texts == bench.synthetic_chunks(5, seed=1) and all(len(t) > 100 for t in texts)
    monkeypatch.setattr(bench, "SCALE_FILE_CHUNKS", 50)  # 语料分成 3 个文件，全部入库
    res = bench.run_scale(120, queries=10)
    assert res["chunks"] == 120 and res["chunks_per_s"] > 0 and res["searchable_per_s"] > 0
    assert 0 < res["chroma_write_s"] <= res["ingest_s"]
    assert {"dense_p50_ms", "bm25_p95_ms", "hybrid_p50_ms", "mem_after_ingest_mb", "mem_after_index_mb",
            "peak_mem_mb"} <= set(res)


def test_scale_refuses_an_incomplete_ingest(monkeypatch):
    monkeypatch.setattr(bench, "SCALE_FILE_CHUNKS", 100)
    monkeypatch.setattr(bench.KnowledgeBase, "count", lambda self: 0)
    with pytest.raises(RuntimeError, match="入库不完整"):
        bench.run_scale(30, queries=5)


def test_both_commands_print_the_same_help():
    import subprocess
    import sys

    for module in ("helpers.bench", "helpers.evaluation.bench"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "usage: python -m helpers.bench" in done.stdout
        assert "Warning" not in done.stderr  # 包的 __init__ 不导入 bench：python -m 不会重复导入


def test_bench_and_experiments_share_one_hit_rule():
    doc = Document("x", metadata={"source": "h.pdf", "page": 2, "id": 7})
    for gold in ({"source": "h.pdf", "page": "2"}, {"id": "7"}, {"source": "h.pdf"}):
        assert ev.is_hit(doc.metadata, [gold]) and ev.matches(ev.metadata_of(doc), gold)
        assert ev.first_hit_rank([doc], [gold]) == 1 and ev.hit_at_k([doc], [gold], 1) == 1.0
    assert not ev.is_hit({"source": None}, [{"source": None}])  # 值为 None 等于没有这个键
    assert ev.first_hit_rank([doc], []) is None  # 基准里无答案的问题：没有名次，不报错


def test_lax_loader_keeps_extra_fields_and_names_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "问", "lang": "zh"}\n\n{"question": "问二", "gold": [{"id": 1}]}\n',
                    encoding="utf-8")
    assert ev.load_queries(path) == [{"question": "问", "lang": "zh", "gold": []},
                                     {"question": "问二", "gold": [{"id": 1}]}]
    path.write_text('{"question": "问"}\n{"gold": []}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="q.jsonl 第 2 行缺少 question"):
        ev.load_queries(path)
    path.write_text('{"question": "问"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="q.jsonl 第 1 行不是合法的 JSON"):
        ev.load_queries(path)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_retrieval_refuses_a_corpus_with_no_chunks(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.md").write_bytes(b"")
    (docs / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    queries = _write(tmp_path / "q.jsonl", [{"id": "q1", "question": "问", "gold": [{"source": "empty.md"}]}])
    code = bench.main(["retrieval", "--docs", str(docs), "--queries", str(queries), "--out",
                       str(tmp_path / "r.json")])
    assert code == 2
    captured = capsys.readouterr()
    assert "没有切出任何文本块" in captured.err and "empty.md" in captured.err and "image.md" in captured.err
    assert "hit@1" not in captured.out and not (tmp_path / "r.json").exists()  # 没有一张全是 0 的表
    (tmp_path / "nothing").mkdir()
    assert bench.main(["retrieval", "--docs", str(tmp_path / "nothing"), "--queries", str(queries)]) == 2
    assert "没有可入库的文件" in capsys.readouterr().err


def test_split_filter_and_per_query_ranks(tmp_path, capsys):
    rows = [json.loads(line) for line in (FIXTURES / "corpus_queries.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    for i, r in enumerate(rows):
        r["split"] = "dev" if i % 2 == 0 else "test"
    queries = _write(tmp_path / "q.jsonl", rows)
    per_query = tmp_path / "ranks.csv"
    code = bench.main(["retrieval", "--docs", str(FIXTURES / "corpus.jsonl"), "--queries", str(queries),
                       "--retriever", "hybrid,tfidf13", "--split", "dev", "--per-query", str(per_query)])
    assert code == 0 and "split=dev" in capsys.readouterr().out
    import csv

    with open(per_query, encoding="utf-8") as fh:
        ranks = list(csv.DictReader(fh))
    dev = [r for r in rows if r["split"] == "dev" and r["gold"]]
    assert [r["retriever"] for r in ranks] == ["hybrid"] * len(dev) + ["tfidf13"] * len(dev)
    assert {r["split"] for r in ranks} == {"dev"} and all(r["rank"] == "" or int(r["rank"]) >= 1 for r in ranks)
    assert bench.main(["retrieval", "--docs", str(FIXTURES / "corpus.jsonl"), "--queries",
                       str(FIXTURES / "corpus_queries.jsonl"), "--split", "test"]) == 2
    assert "没有 split=test 的问题" in capsys.readouterr().err


def test_per_query_jsonl_pairs_with_compare(tmp_path):
    from helpers.evaluation.compare import paired_bootstrap

    inp = bench.BenchInput(FIXTURES / "corpus.jsonl", ev.load_queries(FIXTURES / "corpus_queries.jsonl"))
    per_query: list[dict] = []
    bench.run_retrieval(inp, ["hybrid", "bm25"], ks=(1, 3), per_query=per_query)
    bench.write_per_query(tmp_path / "ranks.jsonl", per_query)
    back = [json.loads(line) for line in (tmp_path / "ranks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert back == per_query and set(back[0]) == set(bench.PER_QUERY_FIELDS)
    a = [r["rr"] for r in back if r["retriever"] == "hybrid"]
    b = [r["rr"] for r in back if r["retriever"] == "bm25"]
    diff, lo, hi = paired_bootstrap(a, b)
    assert lo <= diff <= hi


def test_retrieval_with_rerank_and_chunker_options(tmp_path):
    inp = bench.BenchInput(FIXTURES / "docs", ev.load_queries(FIXTURES / "queries.jsonl"), 80, 10,
                           {"chunker": "headings", "heading_context": True})
    rows = bench.run_retrieval(inp, ["hybrid", "hybrid_rerank"], ks=(1, 5))
    assert [r["retriever"] for r in rows] == ["hybrid", "hybrid_rerank"]
    assert all(r["chunks"] >= 3 and 0 <= r["hit@5"] <= 1 for r in rows)
    with pytest.raises(ValueError, match="不认识的切块方式"):
        bench.run_retrieval(bench.BenchInput(FIXTURES / "docs", inp.queries, kb_options={"chunker": "magic"}),
                            ["hybrid"])


def test_scale_reports_the_ratio_to_chroma_add(monkeypatch):
    monkeypatch.setattr(bench, "SCALE_FILE_CHUNKS", 40)
    res = bench.run_scale(80, queries=5)
    assert res["chroma_add_s"] > 0 and res["chroma_add_chunks_per_s"] > 0
    assert res["ingest_ratio"] == pytest.approx(res["chunks_per_s"] / res["chroma_add_chunks_per_s"], rel=0.05)
    assert "rerank=True" in res["stages"] and res["hybrid_p50_ms"] > 0 and res["hybrid_fusion_p50_ms"] > 0
