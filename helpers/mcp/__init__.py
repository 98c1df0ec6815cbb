"""课程知识库的 MCP 服务（Model Context Protocol）：python -m helpers.mcp（第 8 章）。"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "BearerGuard", "Chunk", "DocumentInfo", "KnowledgeServer", "build_server", "client_config",
    "desktop_config", "document_text", "document_uri", "search_chunks",
]


def __getattr__(name: str) -> Any:
    """按需从 helpers.mcp.server 取名字：python -m helpers.mcp --help 不必先等 mcp 与 chromadb 导入（第 8 章）。"""
    if name in __all__:
        return getattr(import_module("helpers.mcp.server"), name)
    raise AttributeError(f"module 'helpers.mcp' has no attribute {name!r}")
