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


def _doctor_line(exc: BaseException, kind: str, key_env: str | None, key_url: str | None,
                 timeout: float | None) -> str:
    """环境检查（doctor）的说法：面向正在配置 .env 的人。"""
    if isinstance(exc, CourseError):
        return str(exc)
    status_code = getattr(exc, "status_code", "?")
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
                           timeout: float | None = None) -> str:
    """把调用模型时的异常翻译成一句中文建议；audience 选环境检查（doctor）或应用（app）的说法（第 2、7 章）。"""
    kind = provider_error_kind(exc)
    if audience == "app":
        return _app_line(exc, kind)
    return _doctor_line(exc, kind, key_env, key_url, timeout)


# 应用把每类异常映射成的 HTTP 状态码
_APP_STATUS = {"auth": 502, "permission": 502, "not_found": 502, "rate_limit": 503,
               "timeout": 504, "connection": 502, "status": 502}


def describe_error(exc: BaseException, secrets: Iterable[str | None] = ()) -> tuple[int, str]:
    """把模型调用的异常翻译成 (状态码, 中文说明)，告诉用户下一步怎么做；secrets 里的值不会出现在说明里（第 7 章）。"""
    if isinstance(exc, AppError):
        return exc.status, exc.message
    kind = provider_error_kind(exc)
    return _APP_STATUS.get(kind, 500), _app_line(exc, kind, secrets)
