"""知识库助手的服务层：问答、流式问答、上传、删除与检索，API 与界面共用（第 7 章）。"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from helpers.app.disk import (
    MIN_FREE_MB,
    SPACE_FACTOR,
    disk_full_error,
    ensure_free_space,
    ensure_store_writable,
    is_disk_full,
    mark_store_full,
    short_of_space,
    store_dir,
    store_full_error,
    store_now_full,
)
from helpers.app.validation import (
    MAX_QUESTION_CHARS,
    sanitize_filename,
    validate_document_name,
    validate_question,
    validate_session_id,
)
from helpers.config import DATA_DIR, KNOWLEDGE_DIR, ConfigError, Settings, load_settings
from helpers.errors import AppError, describe_error, redact
from helpers.history import SessionStore
from helpers.knowledge import IngestReport, IngestStatus, KnowledgeBase
from helpers.knowledge.collection import corrupt_store_error, forget_clients
from helpers.knowledge.process import ProcessClient, StoreProcessGone
from helpers.llm import default_model, get_chat_model
from helpers.providers import get_provider
from helpers.rag import UNKNOWN_SOURCE, RagAnswer, RagChain, build_rag_chain, injection_lines, locator

UPLOADS_DIR: Path = DATA_DIR / "uploads"
log = logging.getLogger("helpers.app")
log.addHandler(logging.NullHandler())  # 库不替用户决定日志去哪：笔记本里不打印，服务进程自己接上（server.py）
MAX_UPLOAD_MB = 20
BODY_TIMEOUT = 30.0  # 收请求体时，相邻两段数据最多间隔这么多秒：停住的上传不会一直占着连接


@dataclass
class AppConfig:
    """应用的可调参数：上传目录、大小上限、问题长度上限、访问令牌（第 7 章）。"""

    uploads_dir: Path = UPLOADS_DIR
    max_upload_mb: float = MAX_UPLOAD_MB
    max_question_chars: int = MAX_QUESTION_CHARS
    token: str | None = None
    retriever_kind: str = "hybrid"
    k: int = 4
    max_sessions: int = 1000
    allowed_origins: tuple[str, ...] = ()  # 允许跨站调用 API 的网页来源，如 ("http://localhost:5173",)
    min_free_mb: float = MIN_FREE_MB  # 上传入库之后每个磁盘至少还剩多少 MB（不够就 507，不碰向量库）
    space_factor: float = SPACE_FACTOR  # 向量库大约按上传文件大小的多少倍增长（上传前查空间用）
    body_timeout: float = BODY_TIMEOUT  # 收请求体时相邻两段数据最多间隔几秒（超过就 408）

    @property
    def max_upload_bytes(self) -> int:
        """上传大小上限（字节）（第 7 章）。"""
        return int(self.max_upload_mb * 1024 * 1024)


def document_url(source: str) -> str:
    """某个文档在 API 里的地址：/api/documents/<来源>（第 7 章）。"""
    return "/api/documents/" + quote(source)


@dataclass
class UploadResult:
    """一次上传的结果：保存的文件名、入库状态（新增/更新/跳过）、写入块数与报告行（第 7 章）。"""

    name: str
    ok: bool
    status: str
    chunks: int
    report: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # 入库了，但值得看一眼的地方（例如疑似提示注入）


# 助手里每个文件的上限：100 万字（约 3 MB 中文，切出四千多块），加载与切块 20 秒。2 核上这样一个文件连嵌入、
# 写库在 30 秒内入库；再大的文件给一句中文原因，而不是让上传（和之后的每次启动）卡上几分钟
MAX_FILE_CHARS = 1_000_000
MAX_FILE_SECONDS = 20.0


def open_knowledge_base(settings: Settings | None = None, *, collection: str = "assistant",
                        store_process: bool = False, **kwargs: Any) -> KnowledgeBase:
    """助手自己的知识库集合（嵌入式 Chroma，或 CHROMA_HOST 上的服务），带每个文件的字数与时间上限；
    store_process=True 时嵌入式 Chroma 放进子进程，写库时助手进程照常应答（第 7 章）。"""
    settings = settings or load_settings()
    kwargs.setdefault("max_file_chars", MAX_FILE_CHARS)
    kwargs.setdefault("max_file_seconds", MAX_FILE_SECONDS)
    if store_process and not settings.chroma_host and "client" not in kwargs:
        kwargs["client"] = ProcessClient(settings.vector_db_dir)
    return KnowledgeBase(collection, settings=settings, **kwargs)


QUARANTINE_DIR = ".quarantine"  # 上传区里放"入库出过问题的文件"的隐藏目录：启动同步不再碰它们
INGESTING_PREFIX = ".ingesting-"  # 正在入库的上传文件的标记：入库结束（成功或失败）就删掉


def quarantine(uploads_dir: Path, name: str, reason: str) -> str:
    """把上传区里的一个文件移进 .quarantine/（文件不丢，只是以后启动不再重试），返回一行说明（第 7 章）。"""
    up = Path(uploads_dir)
    dest = up / QUARANTINE_DIR / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(up / name, dest)
    return f"隔离  {name}：{reason}；文件移到了 {dest}，检查或拆小之后可以重新上传"


def recover_uploads(uploads_dir: Path) -> list[str]:
    """上传中途崩溃留下的文件：入库时中断的新文件隔离起来；有 .backup- 而正式文件不见了就恢复旧版本，
    其余备份与 .upload- 临时文件删掉（第 7 章）。"""
    up = Path(uploads_dir)
    notes: list[str] = []
    if not up.is_dir():
        return notes
    for marker in sorted(up.glob(INGESTING_PREFIX + "*")):  # 入库它时进程死了（kill -9、断电，或它让进程崩溃）
        name = marker.name.removeprefix(INGESTING_PREFIX)
        if (up / name).is_file():
            notes.append(quarantine(up, name, "上次入库它时服务中断（可能正是它让服务卡住或崩溃），没有入库"))
        marker.unlink(missing_ok=True)
    for backup in sorted(up.glob(".backup-*")):
        target = up / backup.name.removeprefix(".backup-")
        if target.exists():  # 新版本已完整写好（改名是原子的），旧版本不再需要
            backup.unlink(missing_ok=True)
        else:
            os.replace(backup, target)
            notes.append(f"恢复  {target.name}：上次上传新版本时中断，已换回旧版本")
    for partial in sorted(up.glob(".upload-*")):
        partial.unlink(missing_ok=True)
        notes.append(f"清理  {partial.name}：上次没写完的临时文件")
    return notes


def sync_knowledge_base(kb: KnowledgeBase, corpus_dir: Path | None = KNOWLEDGE_DIR,
                        uploads_dir: Path = UPLOADS_DIR, *, keep_missing: bool | None = None) -> IngestReport:
    """让库与"课程文档 + 上传区"一致：增量入库两处的文件，删掉两处都已没有的文档；
    上传区里入库失败的文件隔离进 .quarantine/，下次启动不再重试（第 7 章）。

    keep_missing：库里有、本机两处都没有的文档留着不删。默认连的是 Chroma 服务（CHROMA_HOST）时留着：
    几台主机共用一个库、各有各的上传区，一台重启时不能把别的主机上传的文档删掉。
    """
    if keep_missing is None:
        keep_missing = bool(kb.settings.chroma_host)
    for note in recover_uploads(uploads_dir):
        log.warning(note)
    roots = [Path(r) for r in (corpus_dir, uploads_dir) if r is not None and Path(r).is_dir()]
    if not roots:  # 两处都还没有：建好上传区，库里不该留任何文档
        Path(uploads_dir).mkdir(parents=True, exist_ok=True)
        roots = [Path(uploads_dir)]
    report = kb.sync(*roots, delete_missing=not keep_missing)
    up = Path(uploads_dir)
    for failed in report.failed:
        in_corpus = corpus_dir is not None and (Path(corpus_dir) / failed.source).is_file()
        if not in_corpus and (up / failed.source).is_file():
            log.warning(quarantine(up, failed.source, f"启动时入库失败（{failed.detail}）"))
    return report


def rebuild_knowledge_base(settings: Settings, *, collection: str = "assistant",
                           corpus_dir: Path | None = KNOWLEDGE_DIR, uploads_dir: Path = UPLOADS_DIR,
                           store_process: bool = False) -> tuple[KnowledgeBase, IngestReport, Path | None]:
    """向量库损坏时重建：旧目录改名保留，新库从课程文档与上传区重新入库；返回 (库, 报告, 旧目录)（第 7 章）。"""
    if settings.chroma_host:
        raise ConfigError("连的是 Chroma 服务（CHROMA_HOST）：请在服务器上检查或重建它，本机没有可重建的库文件")
    old = Path(settings.vector_db_dir)
    kept = None
    if old.exists():
        kept = old.with_name(f"{old.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        old.rename(kept)
    forget_clients()  # 本进程若打开过旧目录，chromadb 还缓存着它的连接
    kb = open_knowledge_base(settings, collection=collection, store_process=store_process)
    return kb, sync_knowledge_base(kb, corpus_dir, uploads_dir), kept


ANONYMOUS_PREFIX = "anon-"


def new_session_id() -> str:
    """没带会话编号的请求用的新编号："anon-" 开头，放进匿名会话仓库（第 7 章）。"""
    return ANONYMOUS_PREFIX + uuid.uuid4().hex


class _Sessions:
    """问答链看到的会话仓库：anon- 开头的编号去匿名仓库，其余去 Assistant.history。"""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def _store(self, session_id: str) -> Any:
        a = self.assistant
        return a.anonymous if session_id.startswith(ANONYMOUS_PREFIX) else a.history

    def messages(self, session_id: str) -> list[Any]:
        return self._store(session_id).messages(session_id)

    def add_messages(self, session_id: str, messages: Any) -> None:
        self._store(session_id).add_messages(session_id, messages)

    def clear(self, session_id: str) -> None:
        store = self._store(session_id)
        if hasattr(store, "clear"):
            store.clear(session_id)


class ChatGauge:
    """正在回答的问题有几个、启动以来最多同时几个（/health 报告；看得出界面与接口是不是在同时回答）（第 7 章）。"""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """回答一个问题期间计一个数（第 7 章）。"""
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            with self._lock:
                self.now -= 1


class Assistant:
    """个人知识库助手：把知识库、检索问答链和会话历史组装在一起（第 7 章）。"""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        settings: Settings | None = None,
        llm: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
        config: AppConfig | None = None,
        history_store: Any = None,
        corpus_dir: Path | None = KNOWLEDGE_DIR,
    ) -> None:
        self.kb = kb
        self.settings = settings or load_settings()
        self.config = config or AppConfig(token=self.settings.app_token)
        self.config.uploads_dir = Path(self.config.uploads_dir)
        self.corpus_dir = corpus_dir
        self.history = history_store or SessionStore(self.config.max_sessions)
        # 没带会话编号的提问另放一个仓库：匿名流量再多也挤不掉有名字的会话
        self.anonymous = SessionStore(self.config.max_sessions)
        self.llm = llm or get_chat_model(settings=self.settings)
        self.embeddings = embeddings or kb.embeddings
        self._write_lock = threading.Lock()
        self.chats = ChatGauge()
        # 检索器每次提问都去查知识库（BM25 索引在写入后自动重建），上传后不必重建问答链
        retriever = kb.as_retriever(kind=self.config.retriever_kind, k=self.config.k)
        self.chain: RagChain = build_rag_chain(
            retriever, self.llm, embeddings=self.embeddings, history_store=_Sessions(self))

    @classmethod
    def from_settings(cls, settings: Settings | None = None, config: AppConfig | None = None, *,
                      collection: str = "assistant", corpus_dir: Path | None = KNOWLEDGE_DIR,
                      sync: bool = True, llm: BaseChatModel | None = None) -> Assistant:
        """按设置组装一个助手：打开它的知识库集合，sync=True 时先与文档目录和上传区同步（第 7 章）。"""
        settings = settings or load_settings()
        config = config or AppConfig(token=settings.app_token)
        kb = open_knowledge_base(settings, collection=collection)
        if sync:
            sync_knowledge_base(kb, corpus_dir, config.uploads_dir)
        return cls(kb, settings=settings, config=config, llm=llm, corpus_dir=corpus_dir)

    def secrets(self) -> list[str]:
        """不能出现在日志与错误说明里的值：各提供方的密钥与访问令牌（第 7 章）。"""
        keys = getattr(self.settings, "api_keys", None) or {}
        return [v for v in [*keys.values(), self.config.token, getattr(self.settings, "chroma_token", None)] if v]

    # ---- 状态 ----
    def health(self) -> dict[str, Any]:
        """健康检查：提供方、模型、知识库规模（第 7 章）。"""
        spec = get_provider(self.settings.llm_provider)
        model = getattr(self.llm, "model_name", None) or default_model(settings=self.settings)
        host = self.settings.chroma_host
        chunks, documents = self.kb.overview()
        return {
            "status": "ok",
            "provider": spec.name,
            "provider_label": spec.label,
            "model": model,
            "embedding_provider": self.settings.embedding_provider,
            "chunks": chunks,
            "documents": documents,
            "vector_store": f"chroma-server {host}:{self.settings.chroma_port}" if host
            else "chroma-embedded（子进程）" if isinstance(self.kb.client, ProcessClient) else "chroma-embedded",
            "auth": bool(self.config.token),
            "chats_answering": self.chats.now,  # 此刻正在回答的问题数（界面与接口合计）
            "chats_peak": self.chats.peak,  # 启动以来最多同时回答几个
        }

    def warm_up(self) -> None:
        """预热：建好 BM25 索引、加载分词词典、跑一次检索，第一位用户就不必等（不调用模型，不花钱）（第 7 章）。"""
        self.kb.warm()
        self.chain.retrieve("预热")

    def provider_line(self) -> str:
        """一行说明当前的模型与知识库（界面顶部显示）（第 7 章）。"""
        h = self.health()
        return (f"当前模型：{h['provider']}（{h['provider_label']}） {h['model']} · "
                f"知识库：{h['documents']} 个文档、{h['chunks']} 块 · 向量库：{h['vector_store']}")

    # ---- 问答 ----
    def ask(self, question: Any, session_id: str | None = None) -> RagAnswer:
        """回答一个问题；出错时抛出异常，历史不受影响（第 7 章）。"""
        question = validate_question(question, self.config.max_question_chars)
        with self.chats.answering():
            return self.chain.invoke(question, validate_session_id(session_id))

    def astream(self, question: Any, session_id: str | None = None) -> AsyncIterator[str | RagAnswer]:
        """异步的流式回答（API 与界面用）：问题先在这里检查，不合格立即抛出 AppError（第 7 章）。"""
        question = validate_question(question, self.config.max_question_chars)
        return self._counted(self.chain.astream(question, validate_session_id(session_id)))

    async def _counted(self, pieces: AsyncIterator[str | RagAnswer]) -> AsyncIterator[str | RagAnswer]:
        """流式回答期间计数；调用方提前关掉（客户端断开）时也关掉上游，模型调用随之取消。"""
        with self.chats.answering():
            async with aclosing(pieces) as upstream:
                async for piece in upstream:
                    yield piece

    def explain_failure(self, exc: BaseException) -> tuple[int, str]:
        """回答失败时给用户的 (状态码, 一句中文)；异常原文遮盖密钥后只写进日志（第 7 章）。"""
        if not isinstance(exc, AppError):
            log.warning("回答失败（%s）：%s", type(exc).__name__, redact(str(exc), self.secrets()))
        return describe_error(exc, self.secrets())

    def clear_session(self, session_id: str) -> None:
        """清空某个会话的历史（第 7 章）。"""
        sid = validate_session_id(session_id)
        if sid:
            _Sessions(self).clear(sid)

    def session_messages(self, session_id: str) -> list[dict[str, str]]:
        """某个会话的历史，形如 [{"role": "user", "content": ...}]（第 7 章）。"""
        sid = validate_session_id(session_id)
        roles = {"human": "user", "ai": "assistant"}
        return [{"role": roles.get(m.type, m.type), "content": str(m.content)}
                for m in (_Sessions(self).messages(sid) if sid else [])]

    # ---- 检索 ----
    def retrieve(self, query: Any, k: int = 4, kind: str | None = None) -> list[Document]:
        """检查问题与 k，按问答同样的检索方式取回前 k 块（/api/search 与 MCP 的 search_knowledge 共用）（第 8 章）。"""
        query = validate_question(query, self.config.max_question_chars)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
            raise AppError("k 必须在 1 到 50 之间", 422)
        try:
            retriever = self.kb.as_retriever(kind=kind or self.config.retriever_kind, k=k)
        except ValueError as exc:
            raise AppError(str(exc), 422) from None
        return retriever.invoke(query)

    def search(self, query: Any, k: int = 4, kind: str | None = None) -> list[dict[str, Any]]:
        """直接检索知识库（默认与问答相同的检索方式），返回来源、页码、片段与分数（第 7 章）。"""
        results = []
        for doc in self.retrieve(query, k, kind):
            src = doc.metadata.get("source", UNKNOWN_SOURCE)
            score = doc.metadata.get("score")
            results.append({
                "source": src, "page": doc.metadata.get("page"), "where": locator(doc.metadata),
                "snippet": doc.page_content.strip()[:200],
                "score": None if score is None else round(float(score), 4),
                "url": document_url(src),
            })
        return results

    # ---- 文档 ----
    def chunk_counts(self) -> dict[str, int]:
        """每个文档在库里有多少块（第 7 章）。"""
        return self.kb.source_counts()

    def document_names(self) -> list[str]:
        """知识库里的全部文档（第 7 章）。"""
        return list(self.kb.sources())

    def uploaded_names(self) -> list[str]:
        """上传区里的文件名（第 7 章）。"""
        up = self.config.uploads_dir
        if not up.is_dir():
            return []
        return sorted(p.name for p in up.iterdir() if p.is_file() and not p.name.startswith("."))

    def documents(self) -> list[dict[str, Any]]:
        """文档清单：名称、块数、是否为上传的文件（第 7 章）。"""
        counts = self.chunk_counts()
        uploaded = set(self.uploaded_names())
        return [{"name": n, "chunks": counts[n], "uploaded": n in uploaded, "url": document_url(n)}
                for n in sorted(counts)]

    def document_path(self, source: str) -> Path:
        """来源对应的原文件（在上传区或课程文档目录里），不允许跳出这两个目录（第 7 章）。"""
        if self.kb.has_source(validate_document_name(source)):
            for root in (self.config.uploads_dir, self.corpus_dir):
                if root is None:
                    continue
                root = Path(root).resolve()
                path = (root / source).resolve()
                if path.is_relative_to(root) and path.is_file():
                    return path
        raise AppError(f"没有找到文档 {source!r}", 404)

    def upload(self, filename: str, data: bytes) -> UploadResult:
        """保存上传的文件并增量入库；失败时恢复原状，原有文档照常可检索（第 7 章）。"""
        name = sanitize_filename(filename)
        if len(data) > self.config.max_upload_bytes:
            raise AppError(
                f"文件过大：{len(data) / 1024 / 1024:.1f} MB，上限 {self.config.max_upload_mb:g} MB", 413)
        if not data:
            raise AppError(f"文件 {name} 是空的（0 字节）", 400)
        up = self.config.uploads_dir
        up.mkdir(parents=True, exist_ok=True)
        target = up / name
        with self._write_lock:
            if not target.exists() and self.kb.has_source(name):
                raise AppError(f"{name} 与课程自带的文档同名：请改个文件名再上传", 409)
            # 碰 Chroma 之前先查空间：Chroma 写到一半磁盘满了，chromadb 之后的写入会卡在原生代码里（可靠性探测 F3：
            # 整个服务不再应答、SIGTERM 也停不下），所以空间不够时宁可一个字节也不写就拒绝；碰上过一次就重启前不再写
            db_dir = store_dir(self.kb.client)
            ensure_store_writable(db_dir)
            ensure_free_space(name, len(data), up, db_dir, factor=self.config.space_factor,
                              min_free_mb=self.config.min_free_mb)
            # 先写进隐藏的临时文件再改名：入库的永远是完整的文件；写不成（如磁盘满）也不留下临时文件
            backup = target.with_name(f".backup-{name}") if target.exists() else None
            tmp: Path | None = None
            try:
                fd, tmp_name = tempfile.mkstemp(dir=up, prefix=".upload-", suffix=target.suffix)
                tmp = Path(tmp_name)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                if backup is not None:
                    os.replace(target, backup)
                os.replace(tmp, target)
            except OSError as exc:
                if backup is not None and backup.exists() and not target.exists():
                    os.replace(backup, target)
                if is_disk_full(exc):
                    raise disk_full_error(f"{name} 写不进上传区 {up}，文件没有保存") from None
                raise
            finally:
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
            # 入库期间留个标记：进程死在入库途中（kill -9、断电，或正是这个文件让它崩溃），下次启动就把它隔离起来，
            # 而不是每次启动都重新入库它、又卡在同一个地方（见 recover_uploads）
            marker = up / f"{INGESTING_PREFIX}{name}"
            marker.touch()
            try:
                report = self.kb.ingest([target], root=up)
            except Exception as exc:
                marker.unlink(missing_ok=True)
                # Chroma 写满时有时只报 "Error in compaction"：认不出的错误而磁盘所剩无几，也按磁盘满处理
                full = is_disk_full(exc) or short_of_space([up, db_dir], self.config.min_free_mb)
                if full:  # 回滚也是写入，会卡死：只换回文件，库留给重启时的同步去对齐
                    mark_store_full(db_dir)
                self._rollback(target, backup, reingest=not full)
                if full:
                    raise store_full_error(name, backup is not None) from None
                corrupt = corrupt_store_error(exc, self.kb.settings.vector_db_dir)
                if corrupt is not None:  # 运行中库文件坏了：说清楚下一步，而不是 500
                    raise AppError(f"{name} 没有入库：{corrupt}", 503) from None
                if isinstance(exc, StoreProcessGone):  # 向量库子进程不在了
                    raise AppError(f"{name} 没有入库：{exc}", 503) from None
                raise
            marker.unlink(missing_ok=True)
            status = next((f for f in report.files if f.source == name), None)
            if status is None or status.status == IngestStatus.FAILED:
                self._rollback(target, backup, reingest=False)  # 知识库在入库失败时保留旧块
                detail = status.detail if status else "没有入库"
                raise AppError(f"{name} 入库失败：{detail}。知识库未改动", 422)
            if backup is not None:
                backup.unlink(missing_ok=True)
        return UploadResult(name, True, status.status, report.chunks_added,
                            [str(f) for f in report.files], self.injection_warnings(name))

    def injection_warnings(self, name: str) -> list[str]:
        """上传的文档里像注入指令的句子：照常入库，只提醒；回答时它们仍只是资料（第 7 章）。"""
        # 检查的说法与第 5 章 5.6 节一致：分隔符中和、系统提示里的规则之外的第三层
        got = self.kb.collection.get(where={"file": name}, include=["documents"])
        found = [line for text in got["documents"] or [] for line in injection_lines(text or "")]
        if not found:
            return []
        shown = "；".join(f"“{line}”" for line in dict.fromkeys(found))  # 相邻块重叠时同一句只说一次
        log.warning("上传的 %s 含疑似提示注入的文字：%s", name, shown)
        return [f"{name} 里有像是给模型下指令的文字（疑似提示注入）：{shown}。已照常入库：回答时这些文字只作为资料"
                "（分隔符已中和，系统提示要求不执行资料里的指令），但请确认文档来源可信"]

    def _rollback(self, target: Path, backup: Path | None, reingest: bool) -> None:
        """上传失败：删掉新文件、恢复旧版本；入库中途出错时把旧版本重新入库。"""
        target.unlink(missing_ok=True)
        if backup is not None:
            os.replace(backup, target)
        if not reingest:
            return
        try:
            if backup is not None:
                self.kb.ingest([target], root=target.parent)
            else:
                self.kb.delete_source(target.name)
        except Exception as exc:  # 尽力恢复；要报告的是原来的异常
            log.warning("上传失败后恢复 %s 没有成功：%s", target.name, exc)

    def delete(self, name: str) -> dict[str, Any]:
        """删除一个上传的文档：从知识库移除它的全部块并删掉文件（第 7 章）。"""
        validate_document_name(name, deleting=True)
        with self._write_lock:
            db_dir = store_dir(self.kb.client)
            ensure_store_writable(db_dir)  # 碰上过磁盘满的库重启前不再写（删除也是写入）
            if name not in self.uploaded_names():
                if not self.kb.has_source(name):
                    raise AppError(f"没有找到上传的文档 {name!r}", 404)
                if self.corpus_dir is not None and (Path(self.corpus_dir) / name).is_file():
                    raise AppError(f"{name} 是课程自带的文档，不能删除；只能删除上传的文档", 403)
                # 库里有、上传区和文档目录里都没有：上传的文件在磁盘上已被删掉，只剩库里的块，照样删掉
            try:
                removed = self.kb.delete_source(name)
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                raise store_now_full(db_dir) from None
            (self.config.uploads_dir / name).unlink(missing_ok=True)
        return {"name": name, "deleted": True, "chunks": removed}
