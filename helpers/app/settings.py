"""助手的设置与写入锁：从命令行参数、环境变量与 .env 读 APP_* 设置，嵌入式向量库的进程锁（第 7 章）。

helpers.app.server（python -m helpers.app）与 helpers.mcp（python -m helpers.mcp）共用它们：两个命令读同一套设置、
抢同一把锁，不会同时写一个嵌入式 Chroma。
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock, Timeout

from helpers.app.disk import MIN_FREE_MB
from helpers.app.service import BODY_TIMEOUT, MAX_UPLOAD_MB, UPLOADS_DIR, AppConfig
from helpers.config import KNOWLEDGE_DIR, PROJECT_ROOT, ConfigError, read_env
from helpers.errors import CourseError


def _setting(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """命令行参数优先，其次是环境变量，再次是项目根目录的 .env（与 load_settings 同一规则）。"""
    if overrides and overrides.get(name):
        return overrides[name]
    return read_env(None).get(name, "")


def _number(name: str, default: float, example: str, overrides: Mapping[str, str] | None) -> float:
    """一个数字设置：没写就用默认值，写的不是正数就报一句中文。"""
    raw = _setting(name, overrides) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} 不是数字（或不是正数）：请写{example}")
    return value


def config_from_env(token: str | None = None, overrides: Mapping[str, str] | None = None) -> AppConfig:
    """从环境变量与 .env 读取应用设置（第 7 章）。"""
    raw_dir = _setting("APP_UPLOADS_DIR", overrides)
    uploads = Path(raw_dir).expanduser() if raw_dir else UPLOADS_DIR
    if not uploads.is_absolute():
        uploads = PROJECT_ROOT / uploads
    max_mb = _number("APP_MAX_UPLOAD_MB", MAX_UPLOAD_MB, "上限的兆字节数，如 20", overrides)
    min_free = _number("APP_MIN_FREE_MB", MIN_FREE_MB, "每个磁盘至少留出的兆字节数，如 50", overrides)
    body_timeout = _number("APP_BODY_TIMEOUT", BODY_TIMEOUT, "秒数，如 30", overrides)
    origins = _setting("APP_ALLOWED_ORIGINS", overrides)
    allowed = tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip())
    bad = [o for o in allowed if not o.startswith(("http://", "https://"))]
    if bad:
        raise ConfigError(f"APP_ALLOWED_ORIGINS 里的 {bad[0]!r} 不是网页来源：请写成 http://主机:端口，多个用逗号分隔")
    return AppConfig(uploads_dir=uploads, max_upload_mb=max_mb, token=token, allowed_origins=allowed,
                     min_free_mb=min_free, body_timeout=body_timeout)


def corpus_from_env(overrides: Mapping[str, str] | None = None) -> Path:
    """文档目录：APP_CORPUS_DIR，默认课程文档 data/knowledge_db（第 7 章）。"""
    raw = _setting("APP_CORPUS_DIR", overrides)
    path = Path(raw).expanduser() if raw else KNOWLEDGE_DIR
    path = path if path.is_absolute() else PROJECT_ROOT / path
    if not path.is_dir():
        raise ConfigError(f"APP_CORPUS_DIR={raw!r} 不是一个目录：请写存放文档的文件夹")
    return path


def collection_from_env(overrides: Mapping[str, str] | None = None) -> str:
    """知识库集合名：APP_COLLECTION，默认 assistant（第 7 章）。"""
    return _setting("APP_COLLECTION", overrides) or "assistant"


def store_process_on(overrides: Mapping[str, str] | None = None) -> bool:
    """嵌入式 Chroma 是否放进子进程：APP_STORE_PROCESS，默认 1（写库时 /health 与聊天照常应答），0 关闭（第 7 章）。"""
    raw = (_setting("APP_STORE_PROCESS", overrides) or "1").strip().lower()
    if raw not in {"0", "1", "true", "false"}:
        raise ConfigError(f"APP_STORE_PROCESS={raw!r} 只能是 1 或 0")
    return raw in {"1", "true"}


class StoreBusyError(CourseError):
    """另一个助手进程正占着这个嵌入式向量库（第 7 章）。"""


def store_lock(db_dir: Path) -> FileLock:
    """嵌入式向量库的写入锁（库目录旁边的 .lock 文件）：拿不到就说明另一个助手进程在用它（第 7 章）。"""
    db_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(db_dir.with_name(db_dir.name + ".lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StoreBusyError(
            f"另一个助手进程正在使用向量库 {db_dir}：嵌入式 Chroma 同时只能有一个进程写入。请先停掉那个进程；"
            "要几个进程共用一个库，请改用 Chroma 服务（CHROMA_HOST）；想各用各的，用 VECTOR_DB_DIR 指向另一个目录"
        ) from None
    return lock
