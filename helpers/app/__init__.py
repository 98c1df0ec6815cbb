"""个人知识库助手：FastAPI 后端 + Gradio 前端，python -m helpers.app 一条命令启动（第 7 章）。"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from helpers.app.api import create_api, sse
from helpers.app.service import (
    UPLOADS_DIR,
    AppConfig,
    AppError,
    Assistant,
    SessionStore,
    open_knowledge_base,
    sanitize_filename,
    sync_knowledge_base,
    validate_question,
)
from helpers.config import KNOWLEDGE_DIR, Settings, load_settings


def create_app(assistant: Assistant | None = None, *, kb: Any = None,
               settings: Settings | None = None, config: AppConfig | None = None,
               llm: Any = None, ui: bool = True, ui_path: str = "/", sync: bool = True,
               corpus_dir: Path = KNOWLEDGE_DIR) -> FastAPI:
    """组装完整应用：API 路由在前，Gradio 界面挂在 ui_path（默认根路径）（第 7 章）。"""
    if assistant is None:
        settings = settings or load_settings()
        config = config or AppConfig(token=settings.app_token)
        if kb is None:
            kb = open_knowledge_base(settings)
            if sync:
                sync_knowledge_base(kb, corpus_dir, config.uploads_dir)
        assistant = Assistant(kb, settings=settings, config=config, llm=llm, corpus_dir=corpus_dir)
    app = create_api(assistant)
    if ui:
        from helpers.app.ui import mount_ui

        app = mount_ui(app, assistant, path=ui_path)
    return app


__all__ = [
    "UPLOADS_DIR", "AppConfig", "AppError", "Assistant", "SessionStore", "create_api",
    "create_app", "open_knowledge_base", "sanitize_filename", "sse", "sync_knowledge_base",
    "validate_question",
]
