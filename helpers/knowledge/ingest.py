"""增量入库：逐个文件新增/更新/跳过/失败，攒批嵌入、后台线程写入 Chroma，与目录同步（第 4 章）。"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from tqdm.auto import tqdm

from helpers.knowledge import collection as coll
from helpers.knowledge.formats import TEXT_BASED_SUFFIXES
from helpers.knowledge.load import LoadError, SourceFile, discover, load_file
from helpers.knowledge.split import semantic_chunks, split_by_headings, split_documents, split_sentence_windows
from helpers.llm import OfflineEmbeddings
from helpers.offline.embeddings import embed_texts

Chunker = Callable[[list[Document]], list[Document]]  # 文档 → 块
IndexText = Callable[[Document], str]  # 块 → 拿去嵌入的文字（默认就是正文）
CHUNKERS = ("recursive", "sentence", "headings", "semantic")  # 切块方式（第 8 章比较）
DEFAULT_CHUNKER = "recursive"
PLAIN_TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".jsonl", *TEXT_BASED_SUFFIXES)  # 字数大致跟着字节数走的格式
PREFETCH_FILES = 32  # 一次入库的文件至少这么多时，先一次读出全部已有块（逐个文件查库，每次要一两毫秒）


def make_chunker(name: str, chunk_size: int, chunk_overlap: int, embeddings: Embeddings | None = None
                 ) -> Chunker:
    """按名字给出切块函数：recursive（递归）、sentence（句子窗口）、headings（按标题）、semantic（语义）（第 8 章）。"""
    if name == "recursive":
        return lambda docs: split_documents(docs, chunk_size, chunk_overlap)
    if name == "sentence":
        return lambda docs: split_sentence_windows(docs, chunk_size)
    if name == "headings":
        return lambda docs: split_by_headings(docs, chunk_size, chunk_overlap)
    if name == "semantic":
        if embeddings is None:
            raise ValueError("语义切分要用嵌入模型：请传入 embeddings")
        return lambda docs: semantic_chunks(docs, embeddings, chunk_size)
    raise ValueError(f"不认识的切块方式 {name!r}：可选 {'、'.join(CHUNKERS)}")

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


class IngestStatus(StrEnum):
    """一个文件的入库状态：值就是报告里显示的中文（第 4 章）。"""

    ADDED = "新增"
    UPDATED = "更新"
    SKIPPED = "跳过"
    FAILED = "失败"
    DELETED = "删除"

    def __repr__(self) -> str:  # FileStatus 的 repr 照旧显示 '失败'，笔记本输出不变
        return repr(self.value)


def file_digest(path: Path) -> str:
    """文件内容的 SHA-256（前 16 位），用来判断文件改没改（第 4 章）。"""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def chunk_ids(chunks: list[Document]) -> list[str]:
    """稳定的块 id：来源哈希 + (页码, 内容) 哈希；同一文件里内容相同的块再加序号（第 4 章）。"""
    seen: dict[str, int] = {}
    ids = []
    for c in chunks:
        src = str(c.metadata.get("file", c.metadata.get("source", "")))
        head = hashlib.sha1(src.encode("utf-8")).hexdigest()[:10]
        body = hashlib.sha1(f"{c.metadata.get('page', '')}|{c.page_content}".encode()).hexdigest()[:16]
        key = f"{head}-{body}"
        n = seen.get(key, 0)
        seen[key] = n + 1
        ids.append(key if n == 0 else f"{key}-{n}")
    return ids


@dataclass
class FileStatus:
    """一个文件的入库结果（第 4 章）。"""

    source: str
    status: str  # IngestStatus：新增 / 更新 / 跳过 / 失败 / 删除
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.status}  {self.source}：{self.detail}"


@dataclass
class IngestReport:
    """一次入库的报告：逐个文件的状态行 + 汇总（第 4 章）。"""

    files: list[FileStatus] = field(default_factory=list)
    chunks_added: int = 0
    chunks_deleted: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    write_seconds: float = 0.0  # 其中花在 Chroma 写入（add）上的时间

    def add(self, source: str, status: str, detail: str = "") -> None:
        self.files.append(FileStatus(source, status, detail))

    def count(self, status: str) -> int:
        """某种状态的文件数（第 4 章）。"""
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> list[FileStatus]:
        return [f for f in self.files if f.status == IngestStatus.FAILED]

    def summary(self) -> str:
        """一行中文汇总（不含耗时，便于在笔记本里稳定输出）（第 4 章）。"""
        always = (IngestStatus.ADDED, IngestStatus.FAILED)
        parts = "，".join(f"{s} {self.count(s)}" for s in IngestStatus if self.count(s) or s in always)
        return (f"共 {len(self.files)} 个文件：{parts}；写入 {self.chunks_added} 块，"
                f"删除 {self.chunks_deleted} 块；库中现有 {self.total_chunks} 块")

    def __str__(self) -> str:
        return "\n".join([*(str(f) for f in self.files), self.summary()])

    def merge(self, part: IngestReport) -> None:
        """把另一份报告的文件行与计数并进来（同步几个目录时用）（第 4 章）。"""
        self.files += part.files
        self.chunks_added += part.chunks_added
        self.chunks_deleted += part.chunks_deleted
        self.seconds += part.seconds
        self.write_seconds += part.write_seconds


@dataclass
class _Pending:
    """等待嵌入写入的块（攒够一批再写，减少调用次数）。"""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.ids.clear()
        self.texts.clear()
        self.metas.clear()


class Ingestor:
    """把文件切块、嵌入后写进一个 Chroma 集合：未改动的跳过，改过的只嵌入新内容（第 4 章）。"""

    def __init__(self, collection: Collection, embeddings: Embeddings, *, chunk_size: int,
                 chunk_overlap: int, max_file_mb: float, batch_size: int, chunker: Chunker | None = None,
                 index_text: IndexText | None = None, max_file_chars: int | None = None,
                 max_file_seconds: float | None = None) -> None:
        self.collection, self.embeddings = collection, embeddings
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.max_file_mb, self.batch_size = max_file_mb, batch_size
        # 每个文件的文字量与处理时间上限（None 不限）：嵌入与写库的时间与块数成正比，字数先卡住就不会一个文件占满几分钟
        self.max_file_chars, self.max_file_seconds = max_file_chars, max_file_seconds
        self.chunker: Chunker = chunker or make_chunker(DEFAULT_CHUNKER, chunk_size, chunk_overlap)
        self.index_text = index_text  # None：嵌入正文本身
        self.lock = threading.Lock()  # 同一时刻只有一次入库/删除
        self.last_report: IngestReport | None = None

    def sources(self) -> list[str]:
        """库里有哪些文件（按 source 排序）（第 4 章）。"""
        return sorted({coll.source_of(m) for m in coll.all_metadatas(self.collection)})

    def _flush(self, pending: _Pending, report: IngestReport, bar: Any = None,
               writer: _Writer | None = None, final: bool = True) -> int:
        """嵌入并写入攒下的块：嵌入下一批的同时，上一批在后台线程写进 Chroma。

        给了 writer（整次入库共用一个后台写入线程）且 final=False 时只写满批的块，零头留到下一个文件，
        最后一批也不等它写完：下一个文件的加载、切分与嵌入和它同时进行。
        """
        own = writer is None
        writer = writer or _Writer(self.collection, report)
        n = 0
        try:
            while len(pending.ids) >= self.batch_size or (final and pending.ids):
                size = min(self.batch_size, len(pending.ids))
                ids, texts, metas = pending.ids[:size], pending.texts[:size], pending.metas[:size]
                del pending.ids[:size], pending.texts[:size], pending.metas[:size]
                shown = texts if self.index_text is None else [
                    self.index_text(Document(page_content=t, metadata=m)) for t, m in zip(texts, metas)]
                vectors = _embed(self.embeddings, shown)
                writer.submit(ids=ids, embeddings=vectors, documents=texts, metadatas=metas)
                n += size
                if bar is not None:
                    bar.update(size)
        finally:
            if own:
                writer.close()
        return n

    def _chunks_of(self, sf: SourceFile, root: Path, digest: str, old_count: int, report: IngestReport
                   ) -> list[Document] | None:
        """加载并切分一个文件；失败（含超过字数、时间上限）就记进报告、返回 None。"""
        kept = f"（库中保留旧的 {old_count} 块）" if old_count else ""
        started = time.perf_counter()
        try:
            self._check_text_size(sf.path)
            docs = load_file(sf.path, root, max_file_mb=self.max_file_mb)
            self._check_chars(docs)
            self._check_time(started, "加载与清洗")
            chunks = self.chunker(docs)
            self._check_time(started, "切块")
        except LoadError as exc:
            report.add(sf.source, IngestStatus.FAILED, f"{exc}{kept}")
            return None
        if not chunks:
            report.add(sf.source, IngestStatus.FAILED, "切分后没有任何文本块")
            return None
        for c in chunks:
            c.metadata.update({"file_hash": digest, "n_chunks": len(chunks)})
        return chunks

    def _too_much_text(self, amount: str) -> LoadError:
        """超过每个文件字数上限时的一句中文：amount 是"约 120 万字"这样的估计。"""
        limit = (self.max_file_chars or 0) / 10_000
        return LoadError(f"文字太多：{amount}，超过每个文件 {limit:g} 万字的上限（入库会很久）：请拆成几个小文件再上传")

    def _check_text_size(self, path: Path) -> None:
        """纯文字类文件：UTF-8 每个字最多 4 字节，字节数超过字数上限的 4 倍就一定超了，不必读进来再数。"""
        if self.max_file_chars is None or path.suffix.lower() not in PLAIN_TEXT_SUFFIXES:
            return
        size = path.stat().st_size
        if size > 4 * self.max_file_chars:
            raise self._too_much_text(f"{size / 1024 / 1024:.1f} MB 的文字至少 {size / 4 / 10_000:.0f} 万字")

    def _check_chars(self, docs: list[Document]) -> None:
        """加载出来的文字超过每个文件的字数上限就抛出 LoadError。"""
        chars = sum(len(d.page_content) for d in docs)
        if self.max_file_chars is not None and chars > self.max_file_chars:
            raise self._too_much_text(f"约 {chars / 10_000:.0f} 万字")

    def _check_time(self, started: float, stage: str) -> None:
        """这个文件从开始加载到 stage 结束超过每个文件的时间上限就抛出 LoadError。"""
        spent = time.perf_counter() - started
        if self.max_file_seconds is not None and spent > self.max_file_seconds:
            raise LoadError(f"处理超时：{stage}用了 {spent:.0f} 秒，超过每个文件 {self.max_file_seconds:g} 秒的上限："
                            "请拆成几个小文件，或换成纯文本再上传")

    def _ingest_file(self, sf: SourceFile, root: Path, report: IngestReport, pending: _Pending,
                     bar: Any, writer: _Writer | None = None,
                     known: dict[str, tuple[list[str], list[dict[str, Any]]]] | None = None) -> None:
        """入库一个文件：未改动就跳过；改过就删掉旧块、只嵌入新内容的块。known 是事先一次读好的各文件已有块。"""
        old_ids, old_metas = (known.get(sf.source, ([], [])) if known is not None
                              else coll.existing(self.collection, sf.source))
        digest = file_digest(sf.path) if sf.path.is_file() else ""
        complete = bool(old_ids) and all(
            m.get("file_hash") == digest and m.get("n_chunks") == len(old_ids) for m in old_metas
        )
        if complete:
            report.add(sf.source, IngestStatus.SKIPPED, f"未改动（{len(old_ids)} 块）")
            return
        chunks = self._chunks_of(sf, root, digest, len(old_ids), report)
        if chunks is None:
            return
        ids = chunk_ids(chunks)
        new_set, old_set = set(ids), set(old_ids)
        deleted = coll.delete_ids(self.collection, [i for i in old_ids if i not in new_set])
        kept = [(i, c.metadata) for i, c in zip(ids, chunks) if i in old_set]
        # 内容没变的块只更新元数据，不重新嵌入
        coll.update_metadatas(self.collection, [i for i, _ in kept], [m for _, m in kept])
        fresh = [(i, c) for i, c in zip(ids, chunks) if i not in old_set]
        for i, c in fresh:
            pending.ids.append(i)
            pending.texts.append(c.page_content)
            pending.metas.append(c.metadata)
        if bar is not None:
            bar.total = (bar.total or 0) + len(fresh)
            bar.refresh()
        if len(pending.ids) >= self.batch_size:
            report.chunks_added += self._flush(pending, report, bar, writer, final=False)
        report.chunks_deleted += deleted
        if old_ids:
            report.add(sf.source, IngestStatus.UPDATED,
                       f"共 {len(chunks)} 块：新写入 {len(fresh)} 块，删除 {deleted} 块")
        else:
            report.add(sf.source, IngestStatus.ADDED, f"{len(chunks)} 块")

    def ingest(self, paths: str | Path | list[str | Path], root: str | Path | None = None) -> IngestReport:
        """增量入库文件或目录：新增/更新/跳过/失败逐个报告；重复运行不会重复写入（第 4 章）。"""
        started = time.perf_counter()
        root_path, files = discover(paths, root)
        report = IngestReport()
        pending = _Pending()
        with self.lock, tqdm(total=0, desc="写入向量库", unit="块") as bar:
            writer = _Writer(self.collection, report)
            # 文件多时（启动同步上万个上传文件）先一次读出全部已有块，不再每个文件查一次库
            known = coll.existing_by_file(self.collection) if len(files) >= PREFETCH_FILES else None
            try:
                for sf in files:
                    try:
                        self._ingest_file(sf, root_path, report, pending, bar, writer, known)
                    except LoadError as exc:
                        report.add(sf.source, IngestStatus.FAILED, str(exc))
                report.chunks_added += self._flush(pending, report, bar, writer)
            finally:
                writer.close()
        report.total_chunks = self.collection.count()
        report.seconds = time.perf_counter() - started
        self.last_report = report
        return report

    def add_chunks(self, chunks: list[Document]) -> int:
        """写入已经切好的块（id 用 chunk_ids，元数据原样保留），走与入库相同的攒批写入（第 4 章）。"""
        pending = _Pending(chunk_ids(chunks), [c.page_content for c in chunks],
                           [dict(c.metadata) for c in chunks])
        with self.lock:
            return self._flush(pending, IngestReport())

    def delete_source(self, source: str) -> int:
        """删除某个文件的全部块，返回删除的块数（第 4 章）。"""
        with self.lock:
            ids, _ = coll.existing(self.collection, source)
            return coll.delete_ids(self.collection, ids)

    def sync(self, *roots: str | Path, delete_missing: bool = True) -> IngestReport:
        """让库与一个或几个目录一致：新增/更新改过的文件，删除各目录里都已不存在的文件（第 4 章）。

        delete_missing=False：库里有、这些目录里没有的文件留着不删，报告里记一行"跳过"（几台主机共用一个库时用）。
        """
        if not roots:
            raise ValueError("sync 至少要给一个目录：不给目录会把库里的文件全当成已删除")
        report, present = IngestReport(), set()
        for root in roots:
            report.merge(self.ingest(Path(root)))
            present |= {sf.source for sf in discover(Path(root))[1]}
        for source in self.sources():
            if source not in present and not delete_missing:
                report.add(source, IngestStatus.SKIPPED,
                           "本机的目录里没有这个文件，库里的块保留（共用的库里可能是别的主机上传的）")
            elif source not in present:
                n = self.delete_source(source)
                report.chunks_deleted += n
                report.add(source, IngestStatus.DELETED, f"文件已不存在，删除 {n} 块")
        report.total_chunks = self.collection.count()
        return report


def _embed(embeddings: Embeddings, texts: list[str]) -> Any:
    """嵌入一批块：离线嵌入直接给 numpy 矩阵（省掉转成 Python 列表、Chroma 再转回来的两趟），其余走 LangChain 接口。"""
    if type(embeddings) is OfflineEmbeddings:
        return embed_texts(texts)
    return embeddings.embed_documents(texts)


class _Writer:
    """整次入库共用的后台写入线程：同一时刻最多一批在写，提交下一批前等上一批写完（第 4 章）。"""

    def __init__(self, collection: Collection, report: IngestReport) -> None:
        self.collection, self.report = collection, report
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.writing: Future[None] | None = None

    def _write(self, **kwargs: Any) -> None:
        started = time.perf_counter()
        coll.add(self.collection, **kwargs)
        self.report.write_seconds += time.perf_counter() - started

    def wait(self) -> None:
        """等正在写的一批写完（写入出错时在这里抛出）。"""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            writing.result()

    def submit(self, **kwargs: Any) -> None:
        """写一批块：先等上一批写完，再交给后台线程（第 4 章）。"""
        self.wait()
        self.writing = self.pool.submit(self._write, **kwargs)

    def close(self) -> None:
        """等最后一批写完并关掉线程（第 4 章）。"""
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
