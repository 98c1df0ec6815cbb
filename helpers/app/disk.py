"""磁盘空间：上传前先查够不够，把"磁盘已满"的各种异常认出来，换成一句中文（第 7 章）。

只依赖 errors：服务层（上传）与 API（兜底的错误处理）都从这里取判断与措辞。
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

from helpers.errors import AppError

MB = 1024 * 1024
DISK_FULL_STATUS = 507  # 507 Insufficient Storage：服务器这边放不下，不是请求的错
MIN_FREE_MB = 50.0  # 上传并入库之后，每个磁盘至少还要剩这么多（SQLite 的日志、HNSW 扩容、别的程序）
# 向量库的增长约为文字稿大小的 11–15 倍（1 MB 与 4 MB 的 Markdown 实测：原文、全文索引、向量与写前日志各一份）
SPACE_FACTOR = 12.0
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# SQLite 的 SQLITE_FULL（13）：chromadb 1.x 包进 InternalError 的消息里，如 "database or disk is full (code: 13)"
_DB_FULL_MARKS = ("database or disk is full", "(code: 13)")
_FULL_MARKS = (*_DB_FULL_MARKS, "no space left on device", "disk quota exceeded")
# 本进程里 Chroma 写入时碰上过磁盘满的库目录。实测（40 MB tmpfs，chromadb 1.5.9，2026-12-01）：写满一次之后
# （报 SQLITE_FULL，或只报 "Error in compaction"），腾出空间后同一进程的写入仍报 database or disk is full，
# 或卡在原生代码里且不放 GIL（整个服务不再应答、SIGTERM 也停不下，只能 SIGKILL）；重启之后库完好、写入正常。
# 所以记下它，重启之前不再写它（读照常）；按目录记在进程里，因为 chromadb 的客户端也按目录缓存在进程里
_FULL_STORES: set[str] = set()
DISK_FULL_ANY = "磁盘已满：服务器写不进数据，这次操作没有完成；请清理磁盘空间后重试，已有文档不受影响"
STORE_FULL = ("磁盘已满：向量库写入时碰上过磁盘满，为免卡死整个服务，助手在重启之前不再写入知识库（问答、检索照常）；"
              "请清理磁盘空间后重启助手，再重新上传或删除")


def disk_full_message(what: str) -> str:
    """磁盘已满时给用户的一句话：发生了什么（what）与下一步（第 7 章）。"""
    return f"磁盘已满：{what}；请清理磁盘空间后重新上传，已有文档不受影响"


def disk_full_error(what: str) -> AppError:
    """磁盘已满 → 507 与一句中文（第 7 章）。"""
    return AppError(disk_full_message(what), DISK_FULL_STATUS)


def is_disk_full(exc: BaseException | None) -> bool:
    """异常（或它的起因链）是不是"磁盘已满"：OSError ENOSPC/EDQUOT，或 SQLite/Chroma 的 disk is full（第 7 章）。"""
    chain = _chain(exc)
    return (any(isinstance(e, OSError) and e.errno in _FULL_ERRNOS for e in chain)
            or any(mark in _chain_text(chain) for mark in _FULL_MARKS))


def is_store_full(exc: BaseException | None) -> bool:
    """异常是不是向量库（SQLite）自己报的"磁盘已满"（database or disk is full，错误码 13）（第 7 章）。"""
    return is_disk_full(exc) and any(mark in _chain_text(_chain(exc)) for mark in _DB_FULL_MARKS)


def _chain(exc: BaseException | None) -> list[BaseException]:
    """异常与它的起因链（__cause__，没有就 __context__），每个只出现一次。"""
    chain: list[BaseException] = []
    while exc is not None and all(exc is not e for e in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _chain_text(chain: list[BaseException]) -> str:
    """起因链上全部异常的文字（小写）。"""
    return " ".join(str(e).lower() for e in chain)


def mark_store_full(db_dir: Path | None) -> None:
    """记下这个库碰上过磁盘满：本进程重启之前不再写它（见 _FULL_STORES）（第 7 章）。"""
    if db_dir is not None:  # Chroma 服务不在本进程里，卡不住这里
        _FULL_STORES.add(str(Path(db_dir).resolve()))


def store_now_full(db_dir: Path | None) -> AppError:
    """向量库写入时刚碰上磁盘满：记下它（重启前不再写），给出 507 与下一步（第 7 章）。"""
    mark_store_full(db_dir)
    return AppError(STORE_FULL, DISK_FULL_STATUS)


def ensure_store_writable(db_dir: Path | None) -> None:
    """这个库在本进程里碰上过磁盘满就 507：要先清理磁盘空间、重启助手（第 7 章）。"""
    if db_dir is not None and str(Path(db_dir).resolve()) in _FULL_STORES:
        raise AppError(STORE_FULL, DISK_FULL_STATUS)


def store_full_error(name: str, had_old: bool) -> AppError:
    """入库时向量库写满了磁盘 → 507：没有入库、为什么重启前不再写入、怎样恢复（第 7 章）。"""
    old = "它的旧版本在重启前可能检索不全（文件已换回旧版本）" if had_old else "库里可能留下它的部分内容"
    return AppError(f"磁盘已满：{name} 写入向量库时磁盘满了，没有入库，{old}；为免卡死整个服务，助手在重启之前"
                    "不再写入知识库（问答、检索照常）。请清理磁盘空间后重启助手（启动时的同步会把库与文件对齐），"
                    "再重新上传", DISK_FULL_STATUS)


def store_dir(client: Any) -> Path | None:
    """嵌入式 Chroma 客户端的库目录；连的是 Chroma 服务（不在本机磁盘上）时为 None（第 7 章）。"""
    settings = client.get_settings()
    return Path(settings.persist_directory) if settings.is_persistent else None


def _existing(path: Path) -> Path:
    """路径本身，或它最近的已存在的上级目录（目录还没建时查它将来所在的磁盘）。"""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mb(n: float) -> str:
    return f"{n / MB:.1f} MB"


def short_of_space(paths: list[Path | None], min_free_mb: float = MIN_FREE_MB) -> bool:
    """这些目录所在的磁盘里有没有一个只剩不到 min_free_mb（认不出的写入错误是不是磁盘满引起的）（第 7 章）。"""
    return any(shutil.disk_usage(_existing(p)).free < min_free_mb * MB for p in paths if p is not None)


def ensure_free_space(name: str, size: int, uploads_dir: Path, db_dir: Path | None, *,
                      factor: float = SPACE_FACTOR, min_free_mb: float = MIN_FREE_MB) -> None:
    """上传 size 字节之前确认磁盘够用：上传区放文件，向量库约 factor 倍，另留 min_free_mb；不够就 507（第 7 章）。"""
    needs: dict[int, tuple[Path, float]] = {}  # 按磁盘（st_dev）合计：上传区与向量库常在同一个磁盘上
    for path, need in ((uploads_dir, float(size)), (db_dir, size * factor)):
        if path is None:
            continue
        where = _existing(path)
        seen = needs.get(where.stat().st_dev)
        needs[where.stat().st_dev] = (seen[0], seen[1] + need) if seen else (where, min_free_mb * MB + need)
    for where, need in needs.values():
        free = shutil.disk_usage(where).free
        if free < need:
            raise disk_full_error(f"{where} 所在的磁盘只剩 {_mb(free)}，保存并入库 {name} 至少要 {_mb(need)}，"
                                  "文件没有保存")
