"""取得聊天模型与嵌入模型：离线默认与真实提供方走同一套代码（第 2、3 章）。

用量记录 UsageTracker 在 helpers.callbacks。
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import langchain_openai
import openai
from langchain_core.caches import BaseCache
from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_deepseek import ChatDeepSeek
from langchain_openai.chat_models.base import BaseChatOpenAI

from helpers import offline
from helpers.config import CACHE_DIR, ConfigError, Settings, load_settings
from helpers.providers import Provider, Rules, get_provider


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


def _pass_back_reasoning(chat: BaseChatOpenAI, payload: dict, input_: Any, *, fill_tool_calls: bool = False) -> dict:
    """把每条助手消息的思考过程（additional_kwargs 里的 reasoning_content）写回请求体；fill_tool_calls 时，
    带工具调用却没有思考过程的助手消息（例如别的模型留下的历史）补一个空串。"""
    sent = [m for m in payload["messages"] if m.get("role") == "assistant"]
    kept = [m for m in chat._convert_input(input_).to_messages() if m.type == "ai"]
    for out, msg in zip(sent, kept):  # 消息逐条转换，助手消息的先后顺序不变
        reasoning = msg.additional_kwargs.get("reasoning_content")
        if reasoning is None and fill_tool_calls and out.get("tool_calls"):
            reasoning = ""
        if reasoning is not None:
            out["reasoning_content"] = reasoning
    return payload


class ReasoningChatDeepSeek(ChatDeepSeek):
    """DeepSeek 的官方集成，另把每条助手消息的思考过程（reasoning_content）在调用过工具后回传给接口（第 8 章）。"""

    # DeepSeek 思考模式文档（https://api-docs.deepseek.com/zh-cn/guides/thinking_mode/，2026-12-01 核对）：
    # 两条用户消息之间调用过工具时，那几条助手消息的 reasoning_content 必须在之后的请求里原样回传，否则 400；
    # langchain-deepseek 1.1.1 把它读进 additional_kwargs，却不写回请求体
    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        return _pass_back_reasoning(self, payload, input_)


class ChatOpenAI(langchain_openai.ChatOpenAI):
    """langchain-openai 的 ChatOpenAI，按厂商规则读流式用量与思考过程、改 max_tokens 字段名（第 2、8 章）。"""

    # 手写这几处是因为 ChatOpenAI 只读顶层 usage、丢掉 reasoning_content、总把 max_tokens 改名为 max_completion_tokens；
    # 做法照搬 langchain-deepseek 的 ChatDeepSeek（_create_chat_result / _convert_chunk_to_generation_chunk）
    usage_in_choice: bool = False  # 流式用量在 choices[0].usage（Moonshot）
    reasoning_field: str = ""  # 思考过程的字段名（DashScope Qwen 思考模式：reasoning_content）
    max_tokens_field: str = "max_completion_tokens"  # 多数国内厂商只认 max_tokens
    # 调用过工具的助手消息要带着 reasoning_content 回传（Kimi K2.6/K3 思考模式，不带就 400）；没有时补空串，
    # 与 Lapis0x0/obsidian-yolo#243 的兜底一样（出处见 providers.py 的 Rules.reasoning_source）
    reasoning_passback: bool = False

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if self.max_tokens_field == "max_tokens" and "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        if self.reasoning_passback:
            _pass_back_reasoning(self, payload, input_, fill_tool_calls=True)
        return payload

    def _create_chat_result(self, response: dict | openai.BaseModel,
                            generation_info: dict | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        if not self.reasoning_field:
            return result
        choices = (response.get("choices") if isinstance(response, dict) else getattr(response, "choices", None)) or []
        if choices and result.generations:
            message = choices[0]["message"] if isinstance(choices[0], dict) else choices[0].message
            reasoning = (message.get(self.reasoning_field) if isinstance(message, dict)
                         else getattr(message, self.reasoning_field, None))
            if reasoning is not None:
                result.generations[0].message.additional_kwargs["reasoning_content"] = reasoning
        return result

    def _convert_chunk_to_generation_chunk(self, chunk: dict, default_chunk_class: type,
                                           base_generation_info: dict | None) -> ChatGenerationChunk | None:
        choices = chunk.get("choices") or []
        if self.usage_in_choice and not chunk.get("usage") and choices and choices[0].get("usage"):
            chunk = {**chunk, "usage": choices[0]["usage"]}  # 搬到顶层，LangChain 才会记进 usage_metadata
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        if self.reasoning_field and generation and choices and isinstance(generation.message, AIMessageChunk):
            reasoning = (choices[0].get("delta") or {}).get(self.reasoning_field)
            if reasoning is not None:
                generation.message.additional_kwargs["reasoning_content"] = reasoning
        return generation


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """同一句提醒每个进程只说一次（温度被改写时）。"""
    if message and message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, UserWarning, stacklevel=4)


def vendor_request_options(spec: Provider, model: str, temperature: float) -> dict[str, Any]:
    """按提供方的规则（Rules）给出聊天请求要改的参数：温度、用量位置、思考过程、max_tokens（第 2 章）。"""
    rules: Rules = spec.rules
    sampling, note = rules.temperature_for(model, temperature)
    if note and temperature != Settings.temperature:  # 课程默认的 0 按厂商规则改写时不提醒；用户设的值被改时提醒一次
        _warn_once(f"{spec.label}：{note}（LLM_TEMPERATURE）")
    options: dict[str, Any] = dict(sampling)
    if spec.name not in {"offline", "deepseek"}:  # DeepSeek 用官方集成，它本来就读 reasoning_content、发 max_tokens
        options["usage_in_choice"] = rules.stream_usage == "choice"
        options["reasoning_field"] = rules.reasoning_field
        options["max_tokens_field"] = rules.max_tokens_param
        options["reasoning_passback"] = rules.reasoning_passback
    return options


def get_chat_model(provider: str | None = None, model: str | None = None, *,
                   settings: Settings | None = None, cache: bool | BaseCache | None = None,
                   **kwargs: Any) -> BaseChatOpenAI:
    """返回 LangChain 聊天模型：各家都走 OpenAI 兼容接口并按厂商规则改请求，DeepSeek 用它的官方集成（第 3 章）。"""
    settings = settings or load_settings()
    spec = get_provider(provider or settings.llm_provider)
    base_url, key = _endpoint(settings, spec)
    name = model or default_model(spec.name, settings=settings)
    options: dict[str, Any] = {
        "model": name,
        "base_url": base_url,
        "api_key": key,
        "timeout": settings.timeout,
        "max_retries": settings.max_retries,
        "stream_usage": True,
    }
    options.update(vendor_request_options(spec, name, float(kwargs.pop("temperature", settings.temperature))))
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


class OpenAIEmbeddings(langchain_openai.OpenAIEmbeddings):
    """langchain-openai 的 OpenAIEmbeddings，另按厂商规则先检查每段文本的长度（第 4 章）。"""

    max_chars: int = 0  # 厂商写明的每段最多字符数；0 表示不检查
    vendor_label: str = ""

    def _check(self, texts: list[str]) -> None:
        too_long = [i for i, t in enumerate(texts) if self.max_chars and len(t) > self.max_chars]
        if too_long:
            i = too_long[0]
            raise ConfigError(
                f"{self.vendor_label} 的嵌入接口每段最多 {self.max_chars} 个字符：第 {i + 1} 段有 "
                f"{len(texts[i])} 个字。请把切块的 chunk_size 调小，或换一个 EMBEDDING_PROVIDER")

    def embed_documents(self, texts: list[str], chunk_size: int | None = None, **kwargs: Any) -> list[list[float]]:
        self._check(list(texts))
        return super().embed_documents(texts, chunk_size=chunk_size, **kwargs)

    async def aembed_documents(self, texts: list[str], chunk_size: int | None = None,
                               **kwargs: Any) -> list[list[float]]:
        self._check(list(texts))
        return await super().aembed_documents(texts, chunk_size=chunk_size, **kwargs)


def get_embeddings(provider: str | None = None, model: str | None = None, *,
                   settings: Settings | None = None) -> Embeddings:
    """返回嵌入模型：默认离线嵌入，也可切换到各家的嵌入接口，按厂商规则定编码格式与批量（第 4 章）。"""
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
    rules = spec.rules
    return OpenAIEmbeddings(
        model=name, base_url=base_url, api_key=key, timeout=settings.timeout,
        max_retries=settings.max_retries,
        check_embedding_ctx_length=False,  # 否则会调用 tiktoken 下载词表
        chunk_size=rules.embed_batch or 64,  # 每次请求最多送几段（providers.py 的 Rules.embed_batch 写明出处）
        # openai SDK 不传 encoding_format 时请求 base64；只收 float 的厂商（千帆 v2）要明确写出
        model_kwargs={"encoding_format": "float"} if rules.embed_encoding == "float" else {},
        max_chars=rules.embed_max_chars, vendor_label=spec.label,
    )
