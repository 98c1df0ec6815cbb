"""个人知识库助手：FastAPI 后端 + Gradio 前端，python -m helpers.app 一条命令启动（第 7 章）。"""

from __future__ import annotations

from fastapi import FastAPI

from helpers.app.api import create_api, sse
from helpers.app.service import (
    UPLOADS_DIR,
    AppConfig,
    Assistant,
    SessionStore,
    open_knowledge_base,
    sync_knowledge_base,
)
from helpers.app.validation import sanitize_filename, validate_question
from helpers.errors import AppError


def create_app(assistant: Assistant, *, ui: bool = True, ui_path: str = "/") -> FastAPI:
    """组装完整应用：API 路由在前，Gradio 界面挂在 ui_path（默认根路径）（第 7 章）。"""
    # 按设置新建一个助手再组装：create_app(Assistant.from_settings())
    app = create_api(assistant)
    if ui:
        # 用到界面时才导入：gradio 单是导入就要约 2 秒，只开 API 的进程（--no-ui、压测、接口测试）省下这段时间
        from helpers.app.ui import mount_ui  # noqa: PLC0415

        app = mount_ui(app, assistant, path=ui_path)
    return app


__all__ = [
    "UPLOADS_DIR", "AppConfig", "AppError", "Assistant", "SessionStore", "create_api",
    "create_app", "open_knowledge_base", "sanitize_filename", "sse", "sync_knowledge_base",
    "validate_question",
]
