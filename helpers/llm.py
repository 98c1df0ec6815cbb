"""取得聊天模型与嵌入模型：离线默认与真实提供方走同一套代码（第 2、3 章）。

用量记录 UsageTracker 在 helpers.callbacks。
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
from langchain_core.caches import BaseCache
from langchain_core.embeddings import Embeddings
from langchain_deepseek import ChatDeepSeek
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_openai.chat_models.base import BaseChatOpenAI

from helpers import offline
from helpers.config import CACHE_DIR, ConfigError, Settings, load_settings
from helpers.providers import Provider, get_provider


def _endpoint(settings: Settings, provider: Provider) -> tuple[str, str]:
    """返回 (base_url, api_key)；缺密钥时给出中文提示。"""
    base_url = settings.base_urls.get(provider.name, provider.base_url)
    if provider.name == "offline":
        return base_url, "offline-no-key-needed"
    key = settings.key_for(provider.name)
    if not key:
        if provider.needs_key:
            raise ConfigError(
                f"未找到 {provider.key_env}：请在项目根目录的 .env 中设置"
                f"（申请地址：{provider.key_url}），或把 LLM_PROVIDER 设为 offline 使用离线模型"
            )
        key = "not-needed"
    return base_url, key


def get_openai_client(provider: str | None = None, *, settings: Settings | None = None,
                      **kwargs: Any) -> openai.OpenAI:
    """官方 openai SDK 客户端：离线时在进程内访问离线服务（第 2 章）。"""
    settings = settings or load_settings()
    spec = get_provider(provider or settings.llm_provider)
    base_url, key = _endpoint(settings, spec)
    options: dict[str, Any] = {"timeout": settings.timeout, "max_retries": settings.max_retries}
    if spec.name == "offline":
        options["http_client"] = offline.http_client()
    options.update(kwargs)
    return openai.OpenAI(base_url=base_url, api_key=key, **options)


def default_model(provider: str | None = None, *, settings: Settings | None = None) -> str:
    """当前（或指定）提供方使用的聊天模型名（第 2 章）。"""
    settings = settings or load_settings()
    spec = get_provider(provider or settings.llm_provider)
    if settings.llm_model and (provider is None or spec.name == settings.llm_provider):
        return settings.llm_model
    return spec.chat_model


def enable_cache(path: Path | None = None):
    """打开磁盘上的回答缓存（LangChain SQLiteCache）：同样的请求只付一次费（第 2 章）。"""
    from langchain_community.cache import SQLiteCache

    path = path or CACHE_DIR / "llm_cache.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteCache(database_path=str(path))


class ReasoningChatDeepSeek(ChatDeepSeek):
    """DeepSeek 的官方集成，另把每条助手消息的思考过程（reasoning_content）在调用过工具后回传给接口（第 8 章）。"""

    # DeepSeek 思考模式文档（https://api-docs.deepseek.com/zh-cn/guides/thinking_mode/，2026-12-01 核对）：
    # 两条用户消息之间调用过工具时，那几条助手消息的 reasoning_content 必须在之后的请求里原样回传，否则 400；
    # langchain-deepseek 1.1.1 把它读进 additional_kwargs，却不写回请求体
    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        sent = [m for m in payload["messages"] if m.get("role") == "assistant"]
        kept = [m for m in self._convert_input(input_).to_messages() if m.type == "ai"]
        for out, msg in zip(sent, kept):  # 消息逐条转换，助手消息的先后顺序不变
            reasoning = msg.additional_kwargs.get("reasoning_content")
            if reasoning is not None:
                out["reasoning_content"] = reasoning
        return payload


def get_chat_model(provider: str | None = None, model: str | None = None, *,
                   settings: Settings | None = None, cache: bool | BaseCache | None = None,
                   **kwargs: Any) -> BaseChatOpenAI:
    """返回 LangChain 聊天模型：各家都走 OpenAI 兼容接口，DeepSeek 用它的官方集成（第 3 章）。"""
    settings = settings or load_settings()
    spec = get_provider(provider or settings.llm_provider)
    base_url, key = _endpoint(settings, spec)
    options: dict[str, Any] = {
        "model": model or default_model(spec.name, settings=settings),
        "base_url": base_url,
        "api_key": key,
        "temperature": settings.temperature,
        "timeout": settings.timeout,
        "max_retries": settings.max_retries,
        "stream_usage": True,
    }
    if spec.name == "offline":
        options["http_client"] = offline.http_client()
        options["http_async_client"] = offline.async_http_client()
    if isinstance(cache, BaseCache):  # 传入现成的缓存，例如 enable_cache(某个路径)
        options["cache"] = cache
    elif settings.llm_cache if cache is None else cache:
        options["cache"] = enable_cache()
    options.update(kwargs)
    if spec.name == "deepseek":  # ChatOpenAI 会丢掉思考过程：用 DeepSeek 的官方集成（第 8 章 8.11 节）
        options["api_base"] = options.pop("base_url")
        chat: BaseChatOpenAI = ReasoningChatDeepSeek(**options)
    else:
        chat = ChatOpenAI(**options)
    chat.metadata = {**(chat.metadata or {}), "provider": spec.name}
    return chat


class OfflineEmbeddings(Embeddings):
    """离线嵌入的 LangChain 封装：直接在本进程计算，不走 HTTP，入库更快（第 4 章）。"""

    model: str = offline.EMBEDDING_MODEL

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return offline.embed_texts(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return offline.embed_text(text).tolist()


# 每次请求最多送多少段文本：DashScope 的 text-embedding-v3 一次最多 10 段，智谱 embedding-3 最多 64 段
_EMBED_BATCH = {"dashscope": 10, "zhipuai": 64, "qianfan": 16}


def get_embeddings(provider: str | None = None, model: str | None = None, *,
                   settings: Settings | None = None) -> Embeddings:
    """返回嵌入模型：默认离线嵌入，也可切换到各家的嵌入接口（第 4 章）。"""
    settings = settings or load_settings()
    spec = get_provider(provider or settings.embedding_provider)
    if spec.name == "offline":
        return OfflineEmbeddings()
    name = model or (settings.embedding_model if spec.name == settings.embedding_provider else None)
    name = name or spec.embedding_model
    if not name:
        raise ConfigError(
            f"{spec.label} 没有提供 OpenAI 兼容的嵌入接口：请把 EMBEDDING_PROVIDER 设为 offline、"
            "zhipuai、dashscope、openai 等，或在 EMBEDDING_MODEL 中指定模型"
        )
    base_url, key = _endpoint(settings, spec)
    return OpenAIEmbeddings(
        model=name, base_url=base_url, api_key=key, timeout=settings.timeout,
        max_retries=settings.max_retries,
        check_embedding_ctx_length=False,  # 否则会调用 tiktoken 下载词表
        chunk_size=_EMBED_BATCH.get(spec.name, 64),
    )
