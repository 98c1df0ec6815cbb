"""LangChain 官方标准测试（langchain-tests）跑在离线栈上：聊天模型、嵌入、检索器（第 3、4 章）。

能力开关按离线教学模型真实会做的事设置；每个被跳过的标准测试，都是因为那项能力确实没有（见各开关的注释）。
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
)
from langchain_tests.unit_tests import ChatModelUnitTests

from helpers import offline
from helpers.knowledge import KnowledgeBase, KnowledgeRetriever
from helpers.llm import get_chat_model, get_embeddings
from helpers.providers import OFFLINE_BASE_URL
from tests.support.corpus import PLACES, write_corpus
from tests.support.factories import small_kb

# 标准套件里的 async 测试不带标记（它假定 asyncio_mode=auto），本项目是严格模式：整个模块加标记，
# 再忽略 pytest-asyncio 对同步测试"不必加标记"的提醒
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function .* is marked with:pytest.PytestWarning"),
]

OFFLINE_KEY = "offline-no-key-needed"


class _OfflineCapabilities:
    """离线教学模型（helpers/offline/engine.py）真实具备的能力。"""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatOpenAI  # get_chat_model 返回的就是 ChatOpenAI

    @property
    def has_tool_calling(self) -> bool:
        return True  # 规则 4：按字面重合选工具、按参数类型从问题里取值

    @property
    def has_tool_choice(self) -> bool:
        return True  # 规则 4：tool_choice 指名或 "required"/"any" 时一定调用

    @property
    def has_structured_output(self) -> bool:
        # 规则 5：response_format 为 json_schema 时把抽取出的原句装进字段，输出一定合乎 Schema；
        # 这只是格式化，不是理解——标准测试只检查结构，所以如实标 True
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False  # response_format={"type": "json_object"} 不受理：回答仍是普通文字，不是 JSON

    @property
    def supports_image_inputs(self) -> bool:
        return False  # 只读消息里的文字段，图片段被丢弃：说"支持"会让测试在模型看不见图时也通过

    @property
    def supports_image_urls(self) -> bool:
        return False  # 同上，且离线时不下载任何 URL

    @property
    def supports_pdf_inputs(self) -> bool:
        return False  # 只读文字段；PDF 要先用课程的加载器转成文字（第 4 章）

    @property
    def supports_audio_inputs(self) -> bool:
        return False  # 只读文字段

    @property
    def supports_image_tool_message(self) -> bool:
        return False  # 工具结果里的图片同样被丢弃

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False  # 工具结果里的 PDF 同样被丢弃

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False  # 它是 OpenAI 兼容接口，不收 Anthropic 格式的内容块

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # 普通调用与流式（stream_options.include_usage）都返回 token 用量

    @property
    def model_override_value(self) -> str:
        # 离线服务对任何模型名都用同一个引擎回答，并在响应里报回请求的模型名：
        # 这里测的是"调用时传 model= 能送进请求"，真实提供方收到后才会换模型
        return "offline-extractive-override"

    @property
    def enable_vcr_tests(self) -> bool:
        return False  # 录制/回放真实 HTTP 用的；离线服务在进程内，没有要录的网络请求


class TestOfflineChatUnit(_OfflineCapabilities, ChatModelUnitTests):
    """ChatOpenAI 指向离线服务时的构造、绑定工具、序列化（不发请求）。"""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": offline.CHAT_MODEL, "base_url": OFFLINE_BASE_URL, "api_key": OFFLINE_KEY}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # 只靠环境变量也能指向离线服务（ChatOpenAI 读 OPENAI_API_BASE，openai SDK 读 OPENAI_BASE_URL）
        return (
            {"OPENAI_API_KEY": OFFLINE_KEY, "OPENAI_API_BASE": OFFLINE_BASE_URL},
            {"model": offline.CHAT_MODEL},
            {"openai_api_key": OFFLINE_KEY, "openai_api_base": OFFLINE_BASE_URL},
        )


class TestOfflineChatIntegration(_OfflineCapabilities, ChatModelIntegrationTests):
    """课程的 get_chat_model("offline") 真的发请求给进程内的离线服务。"""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # 个别测试直接用 chat_model_class(**chat_model_params) 建模型：与 get_chat_model 一样走进程内客户端
        return {"model": offline.CHAT_MODEL, "base_url": OFFLINE_BASE_URL, "api_key": OFFLINE_KEY,
                "http_client": offline.http_client(), "http_async_client": offline.async_http_client(),
                "stream_usage": True}

    @pytest.fixture
    def model(self, request: pytest.FixtureRequest) -> BaseChatModel:
        extra = getattr(request, "param", None) or {}
        return get_chat_model("offline", cache=False, **{**self.standard_chat_model_params, **extra})


class TestOfflineEmbeddings(EmbeddingsIntegrationTests):
    """课程的 get_embeddings("offline")：本进程计算的离线嵌入。"""

    @property
    def embeddings_class(self) -> type[Embeddings]:
        return type(get_embeddings("offline"))


@pytest.fixture(scope="module")
def places_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """PLACES 三篇小文档按小块切分入库（嵌入式 Chroma 在临时目录）。"""
    kb = small_kb("std-retriever", tmp_path_factory.mktemp("db"))
    kb.sync(write_corpus(tmp_path_factory.mktemp("corpus"), PLACES))
    return kb


class TestKnowledgeRetriever(RetrieversIntegrationTests):
    """课程的检索器 KnowledgeRetriever（默认混合检索）。"""

    @pytest.fixture(autouse=True)
    def _use_kb(self, places_kb: KnowledgeBase) -> None:
        self.kb = places_kb

    @property
    def retriever_constructor(self) -> type[KnowledgeRetriever]:
        return KnowledgeRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"kb": self.kb}

    @property
    def retriever_query_example(self) -> str:
        return "星河咖啡馆的招牌饮品是什么"


async def test_retriever_k_kwarg_also_async_and_default_unchanged(places_kb: KnowledgeBase) -> None:
    retriever = places_kb.as_retriever(k=3)
    assert len(await retriever.ainvoke("植物园", k=1)) == 1
    default = retriever.invoke("植物园")
    assert len(default) == 3
    assert [d.id for d in retriever.invoke("植物园", k=3)] == [d.id for d in default]
