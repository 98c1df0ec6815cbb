"""课程的错误类型，以及把模型服务的异常翻译成一句中文（第 2、7 章）。

这里是最底层：不导入任何课程模块，config、providers、knowledge、app 都从这里取错误类型。
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Literal

# 日志与给用户的话里要遮盖的东西：Authorization 头的值、常见格式的密钥、key=…/token=… 形式的参数
_SECRET_PATTERN = re.compile(
    r"(?i)\b(bearer|basic)\s+[^\s'\",;]+"
    r"|\bsk-[A-Za-z0-9_\-]{6,}"
    r"|\b[0-9a-f]{32}\.[A-Za-z0-9]{16}\b"
    r"|\b((?:api[_-]?key|access[_-]?token|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic)\s+)?)[^\s'\",;&]+"
)
REDACTED = "***"
MAX_PROVIDER_TEXT = 300  # 模型服务的报错原文最多给用户看这么多字

# 对话记录在出错时不会丢：应用的每条错误说明都以这句结尾
_APP_KEEP = "对话记录已保留，可以稍后重试。"


class CourseError(Exception):
    """课程里一切"给人看的"错误的基类：消息用中文说明原因和下一步（第 2 章）。"""


class ConfigError(CourseError, ValueError):
    """配置错误：消息用中文说明应当设置什么（第 2 章）。"""


class LoadError(CourseError, ValueError):
    """某个文件无法加载：消息用中文说明原因和下一步（第 4 章）。"""


class StoreCorruptError(CourseError):
    """嵌入式向量库的文件损坏，打不开：消息说明怎样从文档重建（第 7 章）。"""


class AppError(CourseError):
    """给用户看的错误：HTTP 状态码 + 中文说明（第 7 章）。"""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """遮盖文本里的密钥、令牌与 Authorization 头（以及 secrets 里的值），再写进日志或给用户看（第 7 章）。"""
    for value in sorted({v for v in secrets if v and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, REDACTED)

    def mask(m: re.Match[str]) -> str:
        prefix = m.group(1) or m.group(2)
        return f"{prefix} {REDACTED}" if m.group(1) else (prefix or "") + REDACTED

    return _SECRET_PATTERN.sub(mask, text)


class RedactingFilter(logging.Filter):
    """日志过滤器：每条日志先按 redact 遮盖密钥与令牌再输出（第 7 章）。"""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        if record.exc_info and not record.exc_text:  # 异常的原文（traceback）也遮盖
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


def provider_error_kind(exc: BaseException) -> str:
    """模型服务异常的类别：auth、permission、not_found、rate_limit、timeout、connection、status 或 other（第 2 章）。"""
    import openai  # 导入 openai 约 1.2 秒：config/providers 依赖本模块，只在真的出错时才导入

    kinds: list[tuple[type[BaseException], str]] = [
        (openai.AuthenticationError, "auth"),
        (openai.PermissionDeniedError, "permission"),
        (openai.NotFoundError, "not_found"),
        (openai.RateLimitError, "rate_limit"),
        (openai.APITimeoutError, "timeout"),  # 必须排在 APIConnectionError 前面：它是其子类
        (openai.APIConnectionError, "connection"),
        (openai.APIStatusError, "status"),
    ]
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "other")


# 厂商报错里能认出的几种原因（小写子串）。依据厂商文档或公开报错原文，2026-12-01 核对：
# - OpenAI 风格的错误体 {"error": {"message", "type", "param", "code"}}：余额 code=insufficient_quota（429），
#   上下文超长 code=context_length_exceeded、"This model's maximum context length is …"，
#   模型不存在 code=model_not_found（404）；o 系列 "Only the default (1) value is supported"
#   （github.com/langchain-ai/langchainjs/issues/1929，crewAIInc/crewAI-examples/issues/121）
# - DeepSeek 错误码页 api-docs.deepseek.com/quick_start/error_codes："402 - Insufficient Balance"
#   （余额不足，充值后才好）；未知模型 400 "Model Not Exist"（langbot-app/LangBot#1643）
# - Moonshot/Kimi：kimi-k2.x 400 "invalid temperature: only 1 is allowed for this model"（HKUDS/nanobot#202）；
#   下线模型 404 "Not found the model … or Permission denied"（diillson/chatcli#1344）
# - 智谱：400 code 1211 "模型不存在，请检查模型代码"；1214 "temperature参数非法"（songquanpeng/one-api#1141）
# - 千帆 v2 嵌入：encoding_format "当前只支持float"（cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn）
# - vLLM 没开工具调用：400 '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
#   （vllm-project/vllm#9986）
_BALANCE_HINTS = ("insufficient_quota", "insufficient balance", "exceeded your current quota", "余额不足",
                  "arrearage")
_TEMPERATURE_ONE_HINTS = ("only 1 is allowed", "only the default (1)", "default (1) value")
_CONTEXT_HINTS = ("context_length_exceeded", "maximum context length", "context window",
                  "exceeded model token limit", "input is too long", "超过最大长度", "上下文长度")
_MODEL_HINTS = ("model_not_found", "model not exist", "not found the model", "模型不存在", "'code': '1211'",
                "no such model", "unknown model", "invalid model", "model does not exist")
_MODEL_404_HINTS = ("model",)
_MODEL_NOT_FOUND = re.compile(r"\bmodel\b.{0,80}\b(not found|does not exist|not exist)")
_TOOL_HINTS = ("tool choice", "tool_choice", "enable-auto-tool-choice", "tool-call-parser", "does not support tools",
               "tools is not supported", "function calling is not supported", "not support function")
# 课程自己该处理、改 .env 也没用的几种（出处同上，2026-12-01 核对）：
# - 一次送的文本段数超过嵌入接口的上限：DashScope "batch size is invalid, it should not be larger than 10"
#   （jjyaoao/HelloAgents#27）；千帆 "文本数量不超过16"、智谱 "最多 64 条"
#   （cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn，docs.bigmodel.cn 文本嵌入）；
#   OpenAI "array must be 2048 items or less"
# - gpt-5/o 系列不收 max_tokens："Use 'max_completion_tokens'"（griptape-ai/ComfyUI-Griptape#312）
# - GPT-5.6/6 带工具时要 reasoning_effort="none"（ItzCrazyKns/Vane#1173）
# - DeepSeek 思考模式要回传 reasoning_content（api-docs.deepseek.com/guides/thinking_mode；crewAIInc/crewAI#5878）
_BATCH_HINTS = ("batch size", "items or less", "文本数量", "数组最大", "too many inputs", "maximum allowed batch")
_MAX_TOKENS_HINTS = ("max_completion_tokens",)
_TOOLS_REASONING_HINTS = ("function tools with reasoning_effort",)
# - Kimi K2.6/K3 同样要求：400 "thinking is enabled but reasoning_content is missing in assistant tool call message"
#   （liliMozi/openhanako#1667、continuedev/continue#11711）
_PASSBACK_HINTS = ("reasoning_content in the thinking mode", "missing reasoning_content",
                   "reasoning_content is missing")
_EMBED_LENGTH_HINTS = ("每个文本token数", "单条最多", "range of input length")


def _provider_text(exc: BaseException) -> str:
    """异常里厂商返回的全部文字（message、错误体的 code/type/param），小写，用来认原因。"""
    body = getattr(exc, "body", None)
    parts = [str(getattr(exc, "message", "") or exc)]
    if isinstance(body, dict):
        parts += [f"{k}={v}" for k, v in body.items()]
        parts.append(f"'code': '{body.get('code')}'")
    elif body is not None:
        parts.append(str(body))
    return " ".join(parts).lower()


def _vendor_message(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """厂商报错原文的一小段（遮盖密钥），放在说明里方便对照。"""
    body = getattr(exc, "body", None)
    text = body.get("message") if isinstance(body, dict) else body
    text = str(text if text else getattr(exc, "message", "") or "").replace("\n", " ").strip()
    return redact(text, secrets)[:120]


def _doctor_reason(exc: BaseException, kind: str) -> str | None:
    """在 kind 之下再细分：balance、passback、tools_reasoning、batch、max_tokens、temperature_one、temperature、
    context、tools、pull、model、encoding 或 None。"""
    status = getattr(exc, "status_code", None)
    if kind in {"timeout", "connection", "other"} or status is None:
        return None
    text = _provider_text(exc)
    if status == 402 or any(h in text for h in _BALANCE_HINTS):
        return "balance"
    if status in {400, 422}:
        course = (("passback", _PASSBACK_HINTS), ("tools_reasoning", _TOOLS_REASONING_HINTS),
                  ("batch", _BATCH_HINTS), ("max_tokens", _MAX_TOKENS_HINTS), ("context", _EMBED_LENGTH_HINTS))
        found = next((reason for reason, hints in course if any(h in text for h in hints)), None)
        if found:
            return found
    if "temperature" in text and status in {400, 422}:
        return "temperature_one" if any(h in text for h in _TEMPERATURE_ONE_HINTS) else "temperature"
    if any(h in text for h in _CONTEXT_HINTS):
        return "context"
    if status in {400, 422} and any(h in text for h in _TOOL_HINTS):
        return "tools"
    if "try pulling it first" in text:  # Ollama：本机还没 pull 这个模型（ollama docs/openai.md 的 404）
        return "pull"
    if any(h in text for h in _MODEL_HINTS) or (status == 404 and any(h in text for h in _MODEL_404_HINTS)):
        return "model"
    if _MODEL_NOT_FOUND.search(text):  # 千帆等："model … not found"
        return "model"
    if "encoding_format" in text or "base64" in text:
        return "encoding"
    return None


def is_missing_model(exc: BaseException) -> bool:
    """厂商说"没有这个模型"（已下线或拼错，不含 Ollama 的"还没 pull"）：环境检查据此列出现有的模型（第 2 章）。"""
    return _doctor_reason(exc, provider_error_kind(exc)) == "model"


def _doctor_line(exc: BaseException, kind: str, key_env: str | None, key_url: str | None,
                 timeout: float | None, hints: dict[str, str | float | None] | None = None) -> str:
    """环境检查（doctor）的说法：面向正在配置 .env 的人；hints 给出模型、温度、地址等，说法更具体。"""
    if isinstance(exc, CourseError):
        return str(exc)
    hints = hints or {}
    status_code = getattr(exc, "status_code", "?")
    model_env, model = hints.get("model_env") or "LLM_MODEL", hints.get("model")
    reason = _doctor_reason(exc, kind)
    if reason == "balance":
        return f"账户余额不足或额度已用完（{status_code}）：请到厂商控制台充值或更换套餐，重试不会好转"
    if reason == "temperature_one":
        return "该模型只接受 temperature=1：设置 LLM_TEMPERATURE=1"
    report = "，并把这份报告贴进 issue"
    if reason == "passback":
        return (f"思考模式要求把 reasoning_content 传回去（{status_code}）：调用过工具的助手消息没有带上它；"
                f"暂时设置 LLM_PROVIDER=offline{report}")
    if reason == "tools_reasoning":
        return (f"该模型带工具调用时要关掉推理（{status_code} reasoning_effort）："
                f"课程没有发 reasoning_effort=\"none\"；换一个模型（{model_env}=…）{report}")
    if reason == "batch":
        return (f"嵌入接口一次收不下这么多段文本（{status_code}）：课程的批大小超过了厂商上限；"
                f"暂时设置 EMBEDDING_PROVIDER=offline{report}")
    if reason == "max_tokens":
        return (f"该模型不接受 max_tokens（{status_code}）：改用 max_completion_tokens"
                "（LangChain 的 ChatOpenAI 会自动改名，直接用 openai SDK 时要自己改）")
    if reason == "temperature":
        # 开区间 (0, 1) 的厂商（智谱）连 1 也不收：建议 0.01，它落在每家文档写明的范围里；被拒的正是 0.01 时建议 0.5
        sent = hints.get("temperature")
        shown = f"={sent}" if sent is not None else ""
        better = "0.5" if sent == 0.01 else "0.01"
        return (f"该模型不接受 temperature{shown}（{status_code}）：在 .env 设置 LLM_TEMPERATURE={better}"
                "（厂商允许的范围内）")
    if reason == "context" and model_env == "EMBEDDING_MODEL":
        return (f"有一段文本超出嵌入模型的长度上限（{status_code}）：把文档切得更短（第 4 章的 chunk_size），"
                "或换上限更大的 EMBEDDING_MODEL=…")
    if reason == "context":
        return (f"输入超出模型的上下文长度（{status_code}）：在 .env 设置 {model_env}=…（上下文更长的模型），"
                "或减少检索片段与对话历史")
    if reason == "tools":
        return (f"该模型或服务不支持工具调用（{status_code}）：换支持工具的模型（{model_env}=…）；"
                "vLLM 启动时要加 --enable-auto-tool-choice --tool-call-parser <解析器>")
    if reason == "pull":
        return (f"本机的 Ollama 还没有模型 {model}（{status_code}）：运行 ollama pull {model}，"
                f"或在 .env 设置 {model_env}=…（ollama list 里有的名字）")
    if reason == "model":
        named = f" {model} " if model else ""
        known = hints.get("available")
        listed = f"，例如 {known}" if known else ""
        return (f"模型{named}不存在或已下线（{status_code}）：在 .env 设置 {model_env}=…"
                f"（换成厂商模型列表里现有的名字{listed}）")
    if reason == "encoding":
        return (f"嵌入接口不接受课程请求的编码格式（{status_code} encoding_format）："
                "暂时设置 EMBEDDING_PROVIDER=offline，并把这份报告贴进 issue")
    region, start = hints.get("region_hint"), hints.get("start_hint")
    base_url, url_env = hints.get("base_url"), hints.get("base_url_env")
    if kind == "auth" and region:
        return f"密钥无效或与地域不匹配（401）：请检查 .env 中的 {key_env}（申请地址：{key_url}）；{region}"
    if kind == "permission" and region:
        return f"没有权限（403）：账户可能未开通该模型，或密钥与地域不匹配；{region}"
    if kind == "not_found" and url_env:
        return f"找不到模型或地址（404）：请检查 {model_env} 与 {url_env}"
    if kind == "connection" and start:
        return f"连不上本地服务 {base_url}：{start}"
    if kind == "timeout" and start:
        return f"本地服务 {base_url} {timeout or 0:.0f} 秒内没有响应：{start}，或换一个更小的模型"
    if kind == "status" and isinstance(status_code, int) and 400 <= status_code < 500:
        said = _vendor_message(exc)
        return (f"请求被拒绝（{status_code}）：{said}；重试不会好转，按提示改 .env（{model_env}、LLM_TEMPERATURE），"
                "或把这份报告贴进 issue")
    lines = {
        "auth": f"密钥无效（401）：请检查 .env 中的 {key_env}（申请地址：{key_url}）",
        "permission": "没有权限（403）：账户可能未开通该模型或余额不足",
        "not_found": "找不到模型或地址（404）：请检查 LLM_MODEL 与 <前缀>_BASE_URL",
        "rate_limit": "请求过于频繁或额度用完（429）：稍后再试，或检查账户余额",
        "timeout": f"{timeout or 0:.0f} 秒内没有响应：请检查网络或代理",
        "connection": "连接失败：请检查网络、代理或 base_url 是否正确",
        "status": f"服务端返回错误 {status_code}：请稍后再试",
    }
    return lines.get(kind, f"调用失败（{type(exc).__name__}）：请检查提供方设置")


def _app_line(exc: BaseException, kind: str, secrets: Iterable[str | None] = ()) -> str:
    """应用（第 7 章）的说法：面向正在聊天的用户，总是告诉他对话记录还在。"""
    if isinstance(exc, AppError):
        return exc.message
    lines = {
        "auth": "模型服务拒绝了密钥（401）：请检查服务器 .env 中的 API Key。",
        "rate_limit": "模型服务限流（429）：请求太频繁，请稍等片刻。",
        "timeout": "模型服务超时：没有在规定时间内回答。",
        "connection": "连不上模型服务：请检查网络与 base_url。",
    }
    if kind in lines:
        return lines[kind] + _APP_KEEP
    if kind in {"permission", "not_found", "status"}:
        status_code, message = getattr(exc, "status_code", "?"), str(getattr(exc, "message", ""))
        message = redact(message, secrets)[:MAX_PROVIDER_TEXT]  # 有的服务或代理会在报错里回显密钥
        return f"模型服务出错（{status_code}）：{message}。{_APP_KEEP}"
    if isinstance(exc, CourseError):  # 课程自己的错误本来就是写给人看的中文
        return f"回答时出错（{type(exc).__name__}）：{redact(str(exc), secrets)}。{_APP_KEEP}"
    # 其他异常的原文可能带内部路径甚至密钥：只说类型，不回显原文
    return f"回答时出错（{type(exc).__name__}）：服务器内部错误。{_APP_KEEP}"


def explain_provider_error(exc: BaseException, *, audience: Literal["doctor", "app"] = "doctor",
                           key_env: str | None = None, key_url: str | None = None,
                           timeout: float | None = None, **hints: str | float | None) -> str:
    """把调用模型时的异常翻译成一句中文建议；audience 选环境检查（doctor）或应用（app）的说法（第 2、7 章）。"""
    kind = provider_error_kind(exc)
    if audience == "app":
        return _app_line(exc, kind)
    return _doctor_line(exc, kind, key_env, key_url, timeout, hints)


# 应用把每类异常映射成的 HTTP 状态码
_APP_STATUS = {"auth": 502, "permission": 502, "not_found": 502, "rate_limit": 503,
               "timeout": 504, "connection": 502, "status": 502}


def describe_error(exc: BaseException, secrets: Iterable[str | None] = ()) -> tuple[int, str]:
    """把模型调用的异常翻译成 (状态码, 中文说明)，告诉用户下一步怎么做；secrets 里的值不会出现在说明里（第 7 章）。"""
    if isinstance(exc, AppError):
        return exc.status, exc.message
    kind = provider_error_kind(exc)
    return _APP_STATUS.get(kind, 500), _app_line(exc, kind, secrets)
