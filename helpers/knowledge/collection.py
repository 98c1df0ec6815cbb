"""Chroma 集合：客户端、按配置命名、配置核对、分页读取，以及记下写入次数的增删改（第 4 章）。"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.embeddings import Embeddings

from helpers.config import ConfigError, Settings
from helpers.errors import StoreCorruptError
from helpers.offline import embeddings as offline_emb

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from langchain_chroma import Chroma

PIPELINE_VERSION = 3  # 加载/清洗/切分/索引设置变了就加 1，旧集合不再复用
# HNSW 查询时的候选列表长度（Chroma 默认 100）：哈希向量分布很散，100 时 3657 块上 hit@10 比精确检索低 3 个点；
# 多线程建图每次略有不同，ef 小时结果会随运行变化。取 1000：课程规模（约 900 块）下等同精确检索、结果可复现
HNSW_EF_SEARCH = 1000
# 建图时的候选列表长度（Chroma 默认 100）：取 40 建图更省事；课程集与两套代理基准上的检索结果一个不差
HNSW_EF_CONSTRUCTION = 40
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,40}$")
_GENERATIONS: dict[str, int] = {}  # 本进程里每个集合（按 id）被写过几次
_IO_LOCKS: dict[str, threading.RLock] = {}  # 每个集合一把锁：本进程的写入与分页读全部块不交错
_LISTENERS: dict[str, weakref.WeakSet[Any]] = {}  # 每个集合的内存副本：写入时把改动告诉它们
_REGISTRY_LOCK = threading.Lock()
PAGE = 5000  # 分页读、分批删改时每批多少块


def embedding_id(embeddings: Embeddings) -> str:
    """嵌入模型的身份：类名 + 模型名（离线嵌入再加版本与维度），换模型就换集合（第 4 章）。"""
    model = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None) or ""
    if model == offline_emb.MODEL_NAME:
        return f"{model}-v{offline_emb.VERSION}-d{offline_emb.DIM}"
    base = getattr(embeddings, "openai_api_base", None) or ""
    return f"{type(embeddings).__name__}:{model}:{base}"


def collection_name_for(collection: str, embeddings: Embeddings, chunk_size: int,
                        chunk_overlap: int, variant: str = "") -> str:
    """每套配置一个集合名：'course-c300o60-1a2b3c'，不同切块/嵌入绝不共用；variant 记其余切块开关（第 4 章）。"""
    if not _NAME_RE.match(collection):
        raise ValueError(
            f"集合名 {collection!r} 不合法：请用 1–41 个英文字母、数字、- 或 _，且以字母或数字开头"
        )
    ident = f"{embedding_id(embeddings)}|{PIPELINE_VERSION}" + (f"|{variant}" if variant else "")
    digest = hashlib.sha1(ident.encode("utf-8")).hexdigest()[:6]
    return f"{collection}-c{chunk_size}o{chunk_overlap}-{digest}"


# SQLite 报"文件不是数据库 / 数据库映像损坏"时的措辞与错误码（chromadb 1.x 把它包进 InternalError 的消息里）
_CORRUPT_MARKS = ("file is not a database", "database disk image is malformed", "(code: 26)", "(code: 11)")
REBUILD_HINT = "运行 python -m helpers.app --rebuild（助手）从课程文档与已上传的文件重建；损坏的目录会改名保留"


def corrupt_store_error(exc: BaseException, path: str | Path) -> StoreCorruptError | None:
    """Chroma 的异常若是"库文件损坏"，换成一句中文的 StoreCorruptError；否则返回 None（第 7 章）。"""
    text = str(exc)
    if not any(mark in text for mark in _CORRUPT_MARKS):
        return None
    broken = "not a database" in text or "(code: 26)" in text
    reason = "file is not a database" if broken else "database disk image is malformed"
    return StoreCorruptError(f"向量库文件损坏，无法打开（{Path(path) / 'chroma.sqlite3'}：{reason}）：{REBUILD_HINT}")


CHROMA_TOKEN_HEADER = "X-Chroma-Token"


def chroma_server_error(exc: BaseException, settings: Settings) -> ConfigError | None:
    """连 Chroma 服务时被拒（401/403）或连不上：换成一句带改法的中文；认不出就返回 None（第 7 章）。"""
    text = str(exc)
    where = f"{settings.chroma_host}:{settings.chroma_port}"
    if "401" in text or "403" in text or "Unauthorized" in text or "Forbidden" in text:
        told = "CHROMA_TOKEN 不对" if settings.chroma_token else "没有设置 CHROMA_TOKEN"
        return ConfigError(f"Chroma 服务 {where} 拒绝了请求（{told}）：在 .env 里写上 Chroma 前面那道门的令牌"
                           "（docker-compose.yml 里的 CHROMA_TOKEN）")
    if "Could not connect" in text or "Connection refused" in text:
        return ConfigError(f"连不上 Chroma 服务 {where}：先启动它（chroma run，见第 4 章 4.8 节），或检查 CHROMA_HOST、"
                           "CHROMA_PORT")
    return None


def make_client(settings: Settings, persist_dir: str | Path | None = None) -> ClientAPI:
    """Chroma 客户端：默认嵌入式 PersistentClient；设置了 CHROMA_HOST 就连 Chroma 服务（第 4 章）。"""
    # chromadb 导入要 3–4 秒：用到时才导入，只用加载/切分的章节不必等
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if persist_dir is None and settings.chroma_host:
        # chroma run（1.x 的 Rust 服务）自己不查身份（chroma-core/chroma#4965，2026-12-01 仍未关闭）：
        # docker-compose.yml 在它前面放一道 Nginx 门，只放行带 X-Chroma-Token 的请求
        headers = {CHROMA_TOKEN_HEADER: settings.chroma_token} if settings.chroma_token else None
        try:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, headers=headers,
                                       settings=chroma_settings)
        except Exception as exc:
            raise chroma_server_error(exc, settings) or exc from None
    path = Path(persist_dir) if persist_dir is not None else Path(settings.vector_db_dir)
    path.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:  # chromadb 把 SQLite 的错误包成 InternalError
        raise corrupt_store_error(exc, path) or exc from None


def forget_clients() -> None:
    """丢掉本进程里 chromadb 缓存的客户端（按目录缓存）：目录被换掉（重建向量库）之后要重新打开（第 7 章）。"""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def open_store(name: str, embeddings: Embeddings, client: ClientAPI, config: dict[str, Any]) -> Chroma:
    """LangChain 的 Chroma 向量库：余弦距离、课程的 HNSW 参数，集合元数据里记下切分与嵌入配置（第 4 章）。"""
    # langchain_chroma 会导入 chromadb（3–4 秒）：建库时才导入
    from langchain_chroma import Chroma

    # 自己的嵌入函数由 LangChain 调用；Chroma 集合不挂默认嵌入函数（它会去下载模型）
    try:
        store = Chroma(
            collection_name=name, embedding_function=embeddings, client=client,
            collection_metadata=dict(config),
            collection_configuration={"hnsw": {"space": "cosine", "ef_search": HNSW_EF_SEARCH,
                                                "ef_construction": HNSW_EF_CONSTRUCTION}},
        )
    except Exception as exc:
        raise corrupt_store_error(exc, client.get_settings().persist_directory or "向量库") or exc from None
    check_config(store._collection, config)
    return store


def check_config(collection: Collection, config: dict[str, Any]) -> None:
    """集合是按另一套配置建的就报错：不同配置请用不同的集合名（第 4 章）。"""
    meta = collection.metadata or {}
    for key, value in config.items():
        if key in meta and meta[key] != value:
            raise ValueError(
                f"集合 {collection.name} 是用 {key}={meta[key]!r} 建的，当前配置是 {value!r}："
                "不同配置请用不同的集合名"
            )


@dataclass
class Change:
    """本进程对一个集合的一次写入：新增的块（id、向量、正文、元数据）、只改了元数据的块、删掉的块（第 4 章）。"""

    added_ids: list[str] = field(default_factory=list)
    added_vectors: Any = None
    added_texts: list[str] = field(default_factory=list)
    added_metas: list[dict[str, Any]] = field(default_factory=list)
    updated: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → 新元数据
    deleted: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """这次写入涉及多少块（第 4 章）。"""
        return len(self.added_ids) + len(self.updated) + len(self.deleted)


def io_lock(collection: Collection) -> threading.RLock:
    """这个集合在本进程里的读写锁：写入与"分页读出全部块"不交错，读的途中不会有块被删掉（第 7 章）。"""
    cid = str(collection.id)
    with _REGISTRY_LOCK:
        return _IO_LOCKS.setdefault(cid, threading.RLock())


class Listener(Protocol):
    """集合的监听者（内存副本）：本进程每写一次集合，record 就收到 (写入序号, 改动)。"""

    def record(self, generation: int, change: Change) -> None: ...


def subscribe(collection: Collection, listener: Listener) -> None:
    """登记一个监听者：本进程每写一次这个集合都告诉它改了什么（只弱引用，副本没人用了就自动退订）（第 7 章）。"""
    with _REGISTRY_LOCK:
        _LISTENERS.setdefault(str(collection.id), weakref.WeakSet()).add(listener)


def generation(collection: Collection) -> int:
    """本进程写过这个集合几次：内存副本据此判断是否过期（第 4 章）。"""
    return _GENERATIONS.get(str(collection.id), 0)


def _wrote(collection: Collection, change: Change) -> None:
    """记一次写入，并把改动交给这个集合的内存副本（它们据此增量更新，不必重读整个库）。"""
    cid = str(collection.id)
    with _REGISTRY_LOCK:
        _GENERATIONS[cid] = _GENERATIONS.get(cid, 0) + 1
        gen = _GENERATIONS[cid]
        listeners = list(_LISTENERS.get(cid, ()))
    for listener in listeners:
        listener.record(gen, change)


def _pages(collection: Collection, page: int) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """分页读出全部块的 (id 列表, 元数据列表)，一页一页产出；读的途中本进程不删改块（持着 io_lock）。"""
    offset = 0
    with io_lock(collection):
        while True:
            got = collection.get(include=["metadatas"], limit=page, offset=offset)
            yield list(got["ids"]), [m or {} for m in got["metadatas"]]
            if len(got["ids"]) < page:
                return
            offset += page


def all_metadatas(collection: Collection, page: int = PAGE) -> list[dict[str, Any]]:
    """分页读出全部块的元数据；读的途中本进程不删改块（否则页会错位，Chroma 还会报 "Error finding id"）（第 4 章）。"""
    return [meta for _, metas in _pages(collection, page) for meta in metas]


def source_of(meta: dict[str, Any]) -> str:
    """块属于哪个文件：入库的文件记在 file 里，其余看 source（第 4 章）。"""
    return str(meta.get("file", meta.get("source")))


def count_sources(metadatas: Iterable[dict[str, Any]]) -> dict[str, int]:
    """每个文件有多少块（按文件名排序）（第 4 章）。"""
    counts: dict[str, int] = {}
    for meta in metadatas:
        name = source_of(meta)
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def existing(collection: Collection, source: str) -> tuple[list[str], list[dict[str, Any]]]:
    """某个文件已在库里的块：(id 列表, 元数据列表)（第 4 章）。"""
    got = collection.get(where={"file": source}, include=["metadatas"])
    return list(got["ids"]), [m or {} for m in got["metadatas"]]


def existing_by_file(collection: Collection, page: int = PAGE) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """全部已入库文件的块，按文件名分组：{文件: (id 列表, 元数据列表)}；一次分页读完，代替逐个文件查（第 4 章）。"""
    found: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    for ids, metas in _pages(collection, page):
        for cid, meta in zip(ids, metas):
            if "file" in meta:
                file_ids, file_metas = found.setdefault(str(meta["file"]), ([], []))
                file_ids.append(cid)
                file_metas.append(meta)
    return found


def add(collection: Collection, ids: list[str], embeddings: Any, documents: list[str],
        metadatas: list[dict[str, Any]]) -> None:
    """写入一批块（向量已算好）并记一次写入。"""
    with io_lock(collection):
        # chromadb 1.5 的嵌入式 add 在写完之前不放 GIL（chroma-core/chroma#3873 只给读放开了，2026-12-01 核对）：
        # 一批 256 块时本进程别的线程（含 /health）要等 0.2–0.4 秒；拆小批也省不掉每次约 0.12 秒的固定开销。
        # 所以助手把嵌入式 Chroma 放进子进程（helpers.knowledge.process），这里的 collection 就是它的代理
        collection.add(ids=ids, embeddings=embeddings, documents=documents, metadatas=metadatas)
        _wrote(collection, Change(added_ids=list(ids), added_vectors=embeddings, added_texts=list(documents),
                                  added_metas=list(metadatas)))


def update_metadatas(collection: Collection, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
    """只改元数据、不重新嵌入（内容没变的块），分批进行（第 4 章）。"""
    if not ids:
        return
    with io_lock(collection):
        for start in range(0, len(ids), PAGE):
            collection.update(ids=ids[start : start + PAGE], metadatas=metadatas[start : start + PAGE])
        _wrote(collection, Change(updated=dict(zip(ids, metadatas))))


def delete_ids(collection: Collection, ids: list[str]) -> int:
    """分批删除块，返回删除的块数（第 4 章）。"""
    if not ids:
        return 0
    with io_lock(collection):
        for start in range(0, len(ids), PAGE):
            collection.delete(ids=ids[start : start + PAGE])
        _wrote(collection, Change(deleted=list(ids)))
    return len(ids)
