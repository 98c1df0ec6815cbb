"""tests/ 共用的夹具：离线聊天模型、小语料与同步好它的知识库（工厂函数在 tests/support/）。

离线、禁网的总开关在项目根目录的 conftest.py（笔记本的 nbval 也要用）。
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from helpers.knowledge import KnowledgeBase
from helpers.llm import get_chat_model
from tests.support.corpus import PLACES, write_corpus
from tests.support.factories import synced_kb


@pytest.fixture(scope="session")
def offline_llm() -> BaseChatModel:
    """聊天模型：默认是离线教学模型（LLM_UNIVERSE_LIVE=1 时是 .env 里的提供方），不重试。"""
    return get_chat_model(max_retries=0)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """三篇小文档（PLACES：咖啡馆、植物园、考试安排）所在的临时目录；测试只读不写。"""
    return write_corpus(tmp_path_factory.mktemp("corpus"), PLACES)


@pytest.fixture(scope="module")
def tiny_kb(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """同步好 tiny_corpus 的知识库（嵌入式 Chroma 在临时目录）；每个测试模块一份。"""
    return synced_kb(tiny_corpus, tmp_path_factory.mktemp("db"))
