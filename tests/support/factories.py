"""测试用的知识库与助手：小块切分的空知识库、同步好小语料的知识库、配好临时上传区的助手。"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.app import AppConfig, Assistant, sync_knowledge_base
from helpers.knowledge import KnowledgeBase

# 小语料配小块：几十个字一块，几篇短文也能切出好几块
SMALL_CHUNKS: dict[str, int] = {"chunk_size": 60, "chunk_overlap": 10}


def small_kb(collection: str = "test", persist_dir: Path | None = None, **kwargs: Any) -> KnowledgeBase:
    """按 SMALL_CHUNKS 切分的知识库（嵌入式 Chroma 在 persist_dir，或 settings 指定的服务器）；kwargs 可改任何参数。"""
    return KnowledgeBase(collection, persist_dir=persist_dir, **{**SMALL_CHUNKS, **kwargs})


def synced_kb(corpus: Path, db: Path, collection: str = "app-test") -> KnowledgeBase:
    """应用用的知识库：默认切分，和应用启动时一样把 corpus 同步进去（没有上传区）。"""
    kb = KnowledgeBase(collection=collection, persist_dir=db)
    sync_knowledge_base(kb, corpus, db / "no-uploads")
    return kb


def make_assistant(kb: KnowledgeBase, corpus: Path, uploads: Path, *, max_upload_mb: float = 1,
                   token: str | None = None, **kwargs: Any) -> Assistant:
    """在 kb 上建一个助手：课程文档在 corpus，上传区在 uploads；kwargs 交给 Assistant（llm、history_store …）。"""
    config = AppConfig(uploads_dir=uploads, max_upload_mb=max_upload_mb, token=token)
    return Assistant(kb, config=config, corpus_dir=corpus, **kwargs)
