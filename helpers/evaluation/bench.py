"""检索基准：python -m helpers.bench retrieval/scale，打印 hit@k、MRR、入库速度、查询延迟与内存（第 6 章）。

用法：
  python -m helpers.bench retrieval --docs data/knowledge_db --queries data/eval/qa.jsonl --retriever all
  python -m helpers.bench retrieval --docs corpus.jsonl --queries q.jsonl --retriever dense,bm25,hybrid,bm25char,tfidf
  python -m helpers.bench scale --chunks 1000,10000,100000
  python -m helpers.bench agent --queries data/eval/qa.jsonl --k 4   （智能体与固定检索问答链对比，第 8 章）

检索器：dense（离线嵌入 + Chroma）、bm25（jieba 词级 BM25）、hybrid（默认：向量 + 词级 BM25 + 字级 BM25
加权融合，再对前 30 块重排序）；hybrid_fusion（只融合不重排序，第 8 章之前的默认）、hybrid_rerank（总是重排序）；
对照用的 bm25char（字 + 二字 BM25）、tfidf 与 tfidf13（scikit-learn 字级 1–2 元、1–3 元 TF-IDF）。
--split dev|test 只跑一部分问题（调参只看 dev），--per-query 写出逐题名次（helpers.evaluation.compare 做配对比较）。
混合检索的权重与 BM25 参数在课程问题集和两套与课程无关的中文代理基准（报纸段落 + 改写问题、
200 页讲义 PDF + 按页出题）上一起测过，选的是三处都不低于任一单路的组合，而不是只对课程问题最好的。
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from tqdm.auto import tqdm

from helpers.config import load_settings
from helpers.evaluation.dataset import QA_FILE, load_queries
from helpers.evaluation.experiment import RETRIEVERS as CONTRACT_RETRIEVERS  # 基准约定的三种检索方式
from helpers.evaluation.metrics import first_hit_rank, metrics_from_ranks
from helpers.knowledge import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RETRIEVER,
    KnowledgeBase,
    collection as coll,
)
from helpers.knowledge.ingest import CHUNKERS, DEFAULT_CHUNKER
from helpers.text import jieba_dict

# 对照：字级 BM25（混合检索的一路）、字级 1–2 元 TF-IDF、字级 1–3 元 TF-IDF（scikit-learn，经典强基线）
EXTRA_RETRIEVERS = ("bm25char", "tfidf", "tfidf13")
SPLITS = ("dev", "test", "all")  # --split：问题集的 split 字段（调参用 dev，报告 dev 与 test）
DEFAULT_KS = (1, 3, 5, 10)


class EmptyCorpusError(ValueError):
    """语料没有切出任何文本块：基准拒绝继续，而不是打印一张全是 0 的表（第 8 章）。"""


def peak_mem_mb() -> float:
    """本进程到目前为止的峰值常驻内存（MB）（第 6 章）。"""
    try:
        import resource
    except ImportError:  # Windows 没有 resource 模块
        import psutil

        return psutil.Process().memory_info().peak_wset / 1024 / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def current_mem_mb() -> float:
    """本进程当前的常驻内存（MB）（第 6 章）。"""
    import psutil  # psutil 只是间接依赖（未在 pyproject 里声明）：只有规模基准与 Windows 要用

    return psutil.Process().memory_info().rss / 1024 / 1024


class TfidfBaseline:
    """字级 TF-IDF（1–2 元，scikit-learn 默认参数）+ 余弦：用来对照的经典基线（第 6 章）。"""

    def __init__(self, docs: list[Document], ngram_range: tuple[int, int] = (1, 2)) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer  # 只有 tfidf 对照要用：导入约 0.9 s

        self.docs = docs
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=ngram_range)
        self.matrix = self.vectorizer.fit_transform([d.page_content for d in docs])

    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        scores = (self.matrix @ self.vectorizer.transform([query]).T).toarray().ravel()
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.docs[i], float(scores[i])) for i in top if scores[i] > 0]


# 多阶段检索（第 8 章）：混合检索召回后再重排序
# hybrid_fusion 是只融合、不重排序的混合检索（第 8 章之前的默认），留作对照
STAGED_RETRIEVERS: dict[str, Callable[[KnowledgeBase], Callable[[str, int], list]]] = {
    "hybrid_rerank": lambda kb: partial(kb.hybrid, rerank=True),
    "hybrid_fusion": lambda kb: partial(kb.hybrid, rerank=False),
}


def _searcher(kb: KnowledgeBase, name: str) -> tuple[Callable[[str, int], list], float]:
    """返回 (查询函数, 这种检索除向量入库外还要花的建索引秒数)。"""
    if name in STAGED_RETRIEVERS:
        started = time.perf_counter()
        kb.warm(rebuild=True)
        return STAGED_RETRIEVERS[name](kb), time.perf_counter() - started
    if name == "dense":
        return kb.dense, 0.0
    if name in ("bm25", "hybrid", "bm25char"):
        started = time.perf_counter()  # 每种检索各自计一次建索引时间
        kb.warm({"bm25": ("word",), "hybrid": ("word", "char"), "bm25char": ("char",)}[name], rebuild=True)
        fns = {"bm25": kb.bm25, "hybrid": kb.hybrid,
               "bm25char": lambda q, k: kb.bm25(q, k, analyzer="char")}
        return fns[name], time.perf_counter() - started
    if name in ("tfidf", "tfidf13"):
        started = time.perf_counter()
        base = TfidfBaseline(kb.chunks(), (1, 2) if name == "tfidf" else (1, 3))
        return base.search, time.perf_counter() - started
    raise ValueError(f"不认识的检索方式 {name!r}：可选 {', '.join(CONTRACT_RETRIEVERS + EXTRA_RETRIEVERS)}")


def _timed(search: Callable[[str, int], list], queries: Sequence[str], k: int,
           desc: str) -> tuple[list[list], list[float]]:
    """逐个查询并计时：返回 (每个查询的结果, 每个查询的毫秒数)。"""
    found, times = [], []
    for q in tqdm(queries, desc=desc, unit="问"):
        t0 = time.perf_counter()
        found.append(search(q, k))
        times.append((time.perf_counter() - t0) * 1000)
    return found, times


@dataclass
class BenchInput:
    """一次检索基准的输入：语料、问题与切块参数（第 6 章）。"""

    docs: Path
    queries: list[dict[str, Any]]
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    kb_options: dict[str, Any] = field(default_factory=dict)  # 交给 KnowledgeBase 的其余开关（如 chunker）


def select_split(queries: list[dict[str, Any]], split: str = "all") -> list[dict[str, Any]]:
    """按问题的 split 字段（dev/test）挑出一部分；all 全要（第 8 章）。"""
    if split not in SPLITS:
        raise ValueError(f"split 只能是 {'、'.join(SPLITS)}，收到 {split!r}")
    if split == "all":
        return list(queries)
    picked = [q for q in queries if q.get("split") == split]
    if not picked:
        raise ValueError(f"问题集里没有 split={split} 的问题：请检查问题的 split 字段，或用 --split all")
    return picked


def empty_corpus_message(docs: Path, report: Any) -> str:
    """语料一块都没切出来时给用户看的说明：逐个文件列出失败原因（第 8 章）。"""
    lines = [f"语料 {docs} 没有切出任何文本块，基准不再继续（不打印一张全是 0 的表）。"]
    failed = list(report.failed)
    if failed:
        lines.append(f"{len(failed)} 个文件失败：")
        lines += [f"  {f.source}：{f.detail}" for f in failed]
    else:
        lines.append("目录里没有可入库的文件（隐藏文件会被跳过）。")
    lines.append("请换成能读出文字的文件（支持的类型见 helpers.knowledge.SUPPORTED），或检查 --docs 路径。")
    return "\n".join(lines)


def run_retrieval(inp: BenchInput, retrievers: list[str], ks: tuple[int, ...] = DEFAULT_KS,
                  workdir: str | Path | None = None,
                  per_query: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """在临时向量库里入库语料，逐个检索器跑问题集，返回结果行；per_query 给了就追加逐题名次（第 6 章）。"""
    answerable = [q for q in inp.queries if q["gold"]]
    if not answerable:
        raise ValueError("问题集里没有带 gold 的问题：hit@k 无从计算")
    with tempfile.TemporaryDirectory(prefix="bench-", dir=workdir) as tmp:
        settings = load_settings(chroma_host=None)
        kb = KnowledgeBase("bench", settings=settings, persist_dir=Path(tmp) / "db",
                           chunk_size=inp.chunk_size, chunk_overlap=inp.chunk_overlap,
                           batch_size=1024, **inp.kb_options)
        started = time.perf_counter()
        report = kb.ingest(inp.docs)
        ingest_s = time.perf_counter() - started
        chunks = kb.count()
        if not chunks:
            raise EmptyCorpusError(empty_corpus_message(inp.docs, report))
        for f in report.failed:
            print(f"  {f}", file=sys.stderr)
        rows = []
        for name in retrievers:
            search, extra_s = _searcher(kb, name)
            found, times = _timed(search, [q["question"] for q in answerable], max(ks), f"检索 {name}")
            ranks = [first_hit_rank([d for d, _ in hits], q["gold"]) for hits, q in zip(found, answerable)]
            if per_query is not None:
                per_query.extend(_per_query_rows(name, answerable, ranks, found, times))
            row: dict[str, Any] = {"retriever": name, "default": name == DEFAULT_RETRIEVER}
            row.update({k: round(v, 4) for k, v in metrics_from_ranks(ranks, ks).items()})
            row.update({
                "queries": len(answerable), "chunks": chunks,
                "ingest_s": round(ingest_s + extra_s, 3),
                "query_p50_ms": round(float(np.percentile(times, 50)), 3),
                "query_p95_ms": round(float(np.percentile(times, 95)), 3),
                "peak_mem_mb": round(peak_mem_mb(), 1),
            })
            rows.append(row)
    return rows


PER_QUERY_FIELDS = ("retriever", "id", "split", "rank", "rr", "ms", "top")


def _per_query_rows(name: str, queries: list[dict[str, Any]], ranks: list[int | None],
                    found: list[list], times: list[float]) -> list[dict[str, Any]]:
    """逐题一行：名次（没命中为 None）、倒数排名、毫秒数与排第一的块（配对比较用）。"""
    out = []
    for i, (q, rank, hits, ms) in enumerate(zip(queries, ranks, found, times)):
        top = hits[0][0] if hits else None
        out.append({"retriever": name, "id": str(q.get("id", i)), "split": q.get("split", ""),
                    "rank": rank, "rr": round(1.0 / rank, 6) if rank else 0.0, "ms": round(ms, 3),
                    "top": "" if top is None else str(top.metadata.get("id", top.metadata.get("source", "")))
                    + (f"#p{top.metadata['page']}" if "page" in top.metadata else "")})
    return out


def write_per_query(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """逐题名次写成 .csv（扩展名为 .csv 时）或 JSON Lines（第 8 章）。"""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        import csv

        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=PER_QUERY_FIELDS)
            writer.writeheader()
            writer.writerows({**r, "rank": "" if r["rank"] is None else r["rank"]} for r in rows)
        return
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def format_table(rows: list[dict[str, Any]]) -> str:
    """把结果行排成等宽表格（第 4 章）。"""
    # 不用 pandas 的 DataFrame.to_string()：本基准的两张表它能排得一字不差，但同一列里整数与小数混排时
    # 它会把整数也印成 1.000，文字列的间距也不同；这十行保证任何结果行都照旧输出
    if not rows:
        return "（没有结果）"
    cols = [c for c in rows[0] if c != "default"]
    cells = [[("*" if r.get("default") else "") + str(r[c]) if c == "retriever" else
              (f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


# ---------- 规模基准 ----------
def synthetic_chunks(n: int, seed: int = 0, length: int = 240) -> list[str]:
    """按 jieba 词典的词频随机造中文文本块（每块约 length 字），用于规模测试（第 6 章）。"""
    words, freqs = [], []
    with open(jieba_dict(), encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(" ")
            if len(parts) >= 2 and int(parts[1]) >= 50:
                words.append(parts[0])
                freqs.append(int(parts[1]))
    rng = np.random.default_rng(seed)
    p = np.sqrt(np.array(freqs, dtype=np.float64))  # 开方压平：别全是"的""了"
    p /= p.sum()
    draws = rng.choice(len(words), size=n * (length // 2), p=p)
    punct = np.array(["，", "。", "；", "、"])
    out, pos = [], 0
    for _ in range(n):
        pieces, size = [], 0
        while size < length and pos < len(draws):
            w = words[draws[pos]]
            pos += 1
            pieces.append(w)
            size += len(w)
            if rng.random() < 0.12:
                pieces.append(str(punct[rng.integers(0, 4)]))
        out.append("".join(pieces) + "。")
    return out


SCALE_FILE_CHUNKS = 5000  # 规模基准每个 .jsonl 文件放多少块（10 万块约 70 MB，单个文件会超过入库的大小上限）
SCALE_BATCH = 2048  # 规模基准入库与 Chroma 对照写入的每批块数
SCALE_SECTION = 50  # 合成语料每多少块算一"节"（记在元数据 heading 里，给标题上下文用）
# 规模基准默认打开的第 8 章各阶段：按标题切块、建索引时加标题路径、查询时重排序
ALL_STAGES: dict[str, Any] = {"chunker": "headings", "heading_context": True, "rerank": True}


def chroma_add_seconds(kb: KnowledgeBase, workdir: str | Path, batch: int = SCALE_BATCH) -> float:
    """Chroma 自己的 add 要多久：把库里同样的块与向量原样写进一个新库（同样的集合配置与批大小）（第 8 章）。"""
    got = kb.collection.get(include=["documents", "metadatas", "embeddings"])
    client = coll.make_client(kb.settings, Path(workdir) / "chroma-only")
    target = coll.open_store("chroma-only", kb.embeddings, client, kb.config)._collection
    ids, docs, metas, vecs = got["ids"], got["documents"], got["metadatas"], got["embeddings"]
    started = time.perf_counter()
    for i in range(0, len(ids), batch):
        target.add(ids=ids[i : i + batch], embeddings=vecs[i : i + batch], documents=docs[i : i + batch],
                   metadatas=metas[i : i + batch])
    return time.perf_counter() - started


def run_scale(n: int, queries: int = 200, workdir: str | Path | None = None,
              stages: dict[str, Any] | None = None) -> dict[str, Any]:
    """生成 n 块中文文本入库，测入库速度（及其占 Chroma 自身 add 速度的比例）、查询延迟与内存（第 6 章）。

    stages 是交给 KnowledgeBase 的第 8 章开关，默认 ALL_STAGES（全部打开）；传 {} 测课程默认配置。
    """
    stages = dict(ALL_STAGES if stages is None else stages)
    texts = synthetic_chunks(n)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=workdir) as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for part in range(0, n, SCALE_FILE_CHUNKS):
            with open(corpus / f"part{part // SCALE_FILE_CHUNKS:04d}.jsonl", "w", encoding="utf-8") as fh:
                for i in range(part, min(n, part + SCALE_FILE_CHUNKS)):
                    record = {"id": i, "text": texts[i], "metadata": {"heading": f"第 {i // SCALE_SECTION + 1} 节"}}
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        mem0 = current_mem_mb()
        kb = KnowledgeBase("scale", settings=load_settings(chroma_host=None),
                           persist_dir=Path(tmp) / "db", chunk_size=max(len(t) for t in texts) + 10,
                           chunk_overlap=0, batch_size=SCALE_BATCH, **stages)
        started = time.perf_counter()
        report = kb.ingest(corpus)
        ingest_s = time.perf_counter() - started
        if report.failed or kb.count() != n:
            raise RuntimeError(f"规模基准入库不完整：应有 {n} 块，库中 {kb.count()} 块；"
                               + "；".join(str(f) for f in report.failed))
        mem_ingest = current_mem_mb()
        started = time.perf_counter()
        kb.warm()  # 混合检索要的内存索引：词级与字级 BM25、按列存放的向量
        index_s = time.perf_counter() - started
        mem_index = current_mem_mb()
        chroma_s = chroma_add_seconds(kb, tmp)
        qs = []
        for _ in range(queries):
            t = texts[rng.randrange(n)]
            start = rng.randrange(max(1, len(t) - 20))
            qs.append(t[start : start + 20])
        result: dict[str, Any] = {
            "chunks": kb.count(), "ingest_s": round(ingest_s, 2),
            "chunks_per_s": round(n / ingest_s, 1),
            "chroma_write_s": round(report.write_seconds, 2),  # 入库时间里 Chroma add 占的部分
            "chroma_add_s": round(chroma_s, 2),  # 同样的块与向量只交给 Chroma add 要多久
            "chroma_add_chunks_per_s": round(n / chroma_s, 1),
            "ingest_ratio": round(chroma_s / ingest_s, 3),  # 入库速度 ÷ Chroma 自身 add 的速度
            "index_s": round(index_s, 2),
            "searchable_per_s": round(n / (ingest_s + index_s), 1),  # 从文件到能混合检索
            "mem_start_mb": round(mem0, 1), "mem_after_ingest_mb": round(mem_ingest, 1),
            "mem_after_index_mb": round(mem_index, 1),
        }
        # hybrid 是默认的检索（融合后重排序）；hybrid_fusion 只融合不重排序（第 8 章之前的默认）
        searchers = [("dense", kb.dense), ("bm25", kb.bm25), ("hybrid", kb.hybrid),
                     ("hybrid_fusion", partial(kb.hybrid, rerank=False))]
        for name, fn in searchers:
            _, times = _timed(fn, qs, 5, f"查询 {name}")
            result[f"{name}_p50_ms"] = round(float(np.percentile(times, 50)), 2)
            result[f"{name}_p95_ms"] = round(float(np.percentile(times, 95)), 2)
        result["stages"] = ",".join(f"{k}={v}" for k, v in stages.items()) or "default"
        result["peak_mem_mb"] = round(peak_mem_mb(), 1)
        del kb
    return result


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} 应当是逗号分隔的整数，例如 1,3,5,10") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("至少给一个正整数")
    return values


CHAR_FEATURES = ("symbols", "trigrams", "equations")


def _char_features(text: str) -> dict[str, bool]:
    names = [] if text.strip() == "none" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHAR_FEATURES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"不认识的字级特征 {'、'.join(unknown)}：可选 {'、'.join(CHAR_FEATURES)} 或 none")
    return {n: n in names for n in CHAR_FEATURES}


def build_parser() -> argparse.ArgumentParser:
    """命令行参数（第 6 章）。"""
    parser = argparse.ArgumentParser(prog="python -m helpers.bench", description="检索与规模基准")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("retrieval", help="在问题集上比较检索器的 hit@k / MRR / 延迟")
    r.add_argument("--docs", required=True, help="语料：目录（pdf/md/txt）或 .jsonl")
    r.add_argument("--queries", required=True, help="问题集 .jsonl（带 gold）")
    r.add_argument("--retriever", default="all",
                   help="dense|bm25|hybrid|hybrid_rerank|hybrid_fusion|bm25char|tfidf|tfidf13|all，"
                        "或逗号分隔的多个（all = dense,bm25,hybrid）")
    r.add_argument("--k", type=_ints, default=DEFAULT_KS, help="要报告的 k，默认 1,3,5,10")
    r.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    r.add_argument("--chunk-overlap", type=int, default=DEFAULT_CHUNK_OVERLAP)
    r.add_argument("--chunker", choices=CHUNKERS, default=DEFAULT_CHUNKER,
                   help=f"切块方式，默认 {DEFAULT_CHUNKER}")
    r.add_argument("--heading-context", action=argparse.BooleanOptionalAction, default=None,
                   help="每块前面加上它所在的标题路径（默认跟随知识库的默认值）")
    r.add_argument("--char-features", type=_char_features, default=None,
                   help="字级 BM25 的特征：symbols,trigrams,equations 里的几个，或 none（默认 equations）")
    r.add_argument("--split", choices=SPLITS, default="all", help="只用 split 为 dev 或 test 的问题，默认 all")
    r.add_argument("--per-query", help="逐题名次写到这个文件（.csv 或 .jsonl），便于配对比较")
    r.add_argument("--out", help="把结果写成 JSON：{\"results\": [...]}")
    s = sub.add_parser("scale", help="生成中文文本测入库速度、查询延迟与内存")
    s.add_argument("--chunks", type=_ints, default=(1000, 10000), help="例如 1000,10000,100000")
    s.add_argument("--queries", type=int, default=200)
    s.add_argument("--stages", choices=("all", "default"), default="all",
                   help="all：打开第 8 章的各阶段（按标题切块、标题上下文、重排序）；default：课程默认配置")
    s.add_argument("--out", help="把结果写成 JSON")
    a = sub.add_parser("agent", help="课程知识库上比较智能体与固定检索问答链：hit@k、调用次数、拒答率、延迟")
    a.add_argument("--queries", default=str(QA_FILE), help="问题集 .jsonl（带 gold；gold 为空的是无答案问题）")
    a.add_argument("--k", type=int, default=4, help="每次检索取几块，默认 4")
    a.add_argument("--split", choices=SPLITS, default="all", help="只用 split 为 dev 或 test 的问题，默认 all")
    a.add_argument("--limit", type=int, default=None, help="只跑前 N 个问题")
    a.add_argument("--out", help="把两行结果（含逐题记录）写成 JSON")
    return parser


def _write_json(path: str | None, results: list[dict[str, Any]]) -> None:
    if path:
        Path(path).write_text(json.dumps({"results": results}, ensure_ascii=False, indent=2) + "\n",
                              encoding="utf-8")


def _main_retrieval(args: argparse.Namespace) -> int:
    names = list(CONTRACT_RETRIEVERS) if args.retriever == "all" else \
        [n.strip() for n in args.retriever.split(",") if n.strip()]
    known = CONTRACT_RETRIEVERS + EXTRA_RETRIEVERS + tuple(STAGED_RETRIEVERS)
    for name in names:
        if name not in known:
            print(f"不认识的检索方式 {name!r}：可选 {'、'.join(known)}、all", file=sys.stderr)
            return 2
    docs, queries = Path(args.docs), Path(args.queries)
    for p in (docs, queries):
        if not p.exists():
            print(f"找不到 {p}：请检查路径", file=sys.stderr)
            return 2
    options: dict[str, Any] = {"chunker": args.chunker}
    if args.heading_context is not None:
        options["heading_context"] = args.heading_context
    if args.char_features is not None:
        options["char_features"] = args.char_features
    try:
        picked = select_split(load_queries(queries), args.split)
        inp = BenchInput(docs, picked, args.chunk_size, args.chunk_overlap, options)
        per_query: list[dict[str, Any]] = []
        rows = run_retrieval(inp, names, tuple(sorted(set(args.k))), per_query=per_query)
    except EmptyCorpusError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ValueError as exc:  # 问题集格式、split、切块参数不对：一行中文说明
        print(str(exc), file=sys.stderr)
        return 2
    unanswerable = sum(1 for q in inp.queries if not q["gold"])
    split = "" if args.split == "all" else f"（split={args.split}）"
    print(f"\n检索基准：{docs}（{rows[0]['chunks']} 块），{rows[0]['queries']} 个可回答的问题{split}"
          f"{f'，另有 {unanswerable} 个无答案问题不计入 hit@k' if unanswerable else ''}；* 为默认检索器")
    print(format_table(rows))
    _write_json(args.out, rows)
    if args.per_query:
        write_per_query(args.per_query, per_query)
    return 0


def _main_scale(args: argparse.Namespace) -> int:
    results = []
    for n in args.chunks:  # 每个规模一个新进程：内存数字不受上一轮影响
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            res = pool.submit(run_scale, n, args.queries, None, None if args.stages == "all" else {}).result()
        results.append(res)
        print(json.dumps(res, ensure_ascii=False))
    print("\n规模基准（离线嵌入 + 嵌入式 Chroma）")
    print(format_table([{"retriever": f"{r['chunks']} 块", **{k: v for k, v in r.items() if k != "chunks"}}
                        for r in results]))
    _write_json(args.out, results)
    return 0


def _main_agent(args: argparse.Namespace) -> int:
    # 用到时才导入：智能体要加载 langchain.agents，检索基准用不着
    from helpers.evaluation.agent import agent_table, compare_agent_and_chain
    from helpers.knowledge import course_knowledge_base
    from helpers.llm import get_chat_model

    path = Path(args.queries)
    if not path.exists():
        print(f"找不到 {path}：请检查路径", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print(f"--limit 应当 ≥ 1，现为 {args.limit}", file=sys.stderr)
        return 2
    try:
        queries = select_split(load_queries(path), args.split)[: args.limit]
        settings = load_settings()
        kb = course_knowledge_base(settings)  # 首次使用时入库，不计入对比的用时
        started = time.perf_counter()
        rows = compare_agent_and_chain(queries, kb, get_chat_model(settings=settings), k=args.k)
    except ValueError as exc:  # 问题集格式、split、k 不对：一行中文说明
        print(str(exc), file=sys.stderr)
        return 2
    wall = time.perf_counter() - started
    chain = rows[0]
    print(f"\n智能体 vs 固定检索问答链：{path}，{chain['questions']} 个可回答、{chain['unanswerable']} 个无答案问题，"
          f"模型 {settings.llm_provider}，k={args.k}，对比用时 {wall:.1f} 秒")
    print(agent_table(rows, args.k))
    _write_json(args.out, rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    """命令行入口（第 6 章）。"""
    args = build_parser().parse_args(argv)
    commands = {"retrieval": _main_retrieval, "scale": _main_scale, "agent": _main_agent}
    return commands[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
