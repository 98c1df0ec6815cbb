"""知识库助手的输入检查：文件名、问题、会话编号、文档名与访问令牌，不合格时给出带状态码的中文错误（第 7 章）。"""

from __future__ import annotations

import hmac
import re
import unicodedata
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from helpers.errors import AppError
from helpers.history import SESSION_ID_RULE, check_session_id

# 上传白名单：PDF、Markdown、纯文本，加上第 8 章的办公、网页与字幕格式（helpers.knowledge.formats 解析）
ALLOWED_SUFFIXES = (".pdf", ".md", ".txt", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".htm", ".srt", ".vtt")
MAX_QUESTION_CHARS = 2000
_NAME_MAX = 120
# ext4 等文件系统限 255 字节；上传时还要加 ".backup-" 前缀，所以按 UTF-8 字节再留余量（一个汉字 3 字节）
_NAME_MAX_BYTES = 200
_BAD_NAME_CHARS = re.compile(r"[^\w\-. ()（）]")
_DIRECTORY_SEP = re.compile(r"[\\/]")  # Windows 与 POSIX 的目录分隔符


def has_control_chars(text: str) -> bool:
    """text 里是否有控制字符（如 NUL、换行）（第 7 章）。"""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def has_bad_unicode(text: str) -> bool:
    """text 是否编不成 UTF-8（含孤立的代理项，如 \\ud800）：这样的文字写进日志、分词与向量库都会出错（第 7 章）。"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shorten(stem: str, suffix: str) -> str:
    """文件名过长时截短主干：不超过 _NAME_MAX 个字符、_NAME_MAX_BYTES 个 UTF-8 字节，不切断汉字。"""
    stem = stem[: _NAME_MAX - len(suffix)]
    room = _NAME_MAX_BYTES - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip() + suffix


def sanitize_filename(name: str) -> str:
    """把上传的文件名变成安全的纯文件名：去掉目录、拒绝控制字符与非法类型（第 7 章）。"""
    if not name or not name.strip():
        raise AppError(f"文件名为空：请选择一个 {'、'.join(ALLOWED_SUFFIXES)} 文件", 400)
    if has_control_chars(name):
        raise AppError("文件名含有控制字符（如 NUL）：请改名后再上传", 400)
    if has_bad_unicode(name):
        raise AppError("文件名里有无法识别的字符（不是合法的 Unicode）：请改名后再上传", 400)
    base = _DIRECTORY_SEP.split(name)[-1]  # 同时去掉 Windows 与 POSIX 目录
    base = unicodedata.normalize("NFC", base).strip().lstrip(".")
    base = _BAD_NAME_CHARS.sub("_", base)
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise AppError(f"不支持的文件：{name!r} 没有扩展名；只接受 {'、'.join(ALLOWED_SUFFIXES)}", 415)
    suffix = "." + suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise AppError(f"不支持的文件类型 {suffix}：只接受 {'、'.join(ALLOWED_SUFFIXES)}", 415)
    return _shorten(stem, suffix)


def validate_question(question: Any, limit: int = MAX_QUESTION_CHARS) -> str:
    """检查问题：不能为空、不能超过 limit 个字符（第 7 章）。"""
    if not isinstance(question, str):
        raise AppError("问题必须是文字", 422)
    text = question.strip()
    if has_bad_unicode(text):
        raise AppError("问题里有无法识别的字符（如孤立的代理项 \\ud800）：请删掉乱码后重试", 422)
    if not text:
        raise AppError("问题不能为空：请输入要问的内容", 422)
    if len(text) > limit:
        raise AppError(f"问题太长：最多 {limit} 个字，当前 {len(text)} 个字", 422)
    return text


def validate_session_id(session_id: str | None) -> str | None:
    """会话编号与第 3 章的会话历史同一条规则（helpers.history.check_session_id）；不合格给 422（第 7 章）。"""
    if session_id is None or session_id == "":
        return None
    try:
        return check_session_id(session_id)
    except ValueError:
        raise AppError(f"session_id 格式不对：{SESSION_ID_RULE}", 422) from None


def validate_document_name(name: str, *, deleting: bool = False) -> str:
    """检查请求里的文档名：不能含控制字符；删除时还必须是上传区里的纯文件名（不含目录）（第 7 章）。"""
    if has_bad_unicode(name):
        raise AppError("文档名里有无法识别的字符（不是合法的 Unicode）", 400)
    if deleting:
        if has_control_chars(name) or _DIRECTORY_SEP.search(name):
            raise AppError("文档名不合法：只能删除上传区里的文件", 400)
    elif has_control_chars(name):
        raise AppError("文件名含有控制字符", 400)
    return name


# ---- 访问令牌：API（require_token）、/mcp 端点与 python -m helpers.mcp --http 同一条规则 ----
UNAUTHORIZED = "未授权：请在请求头中加入 Authorization: Bearer <APP_TOKEN>"


def token_matches(given: bytes | str, token: str) -> bool:
    """令牌比较：都按 UTF-8 字节、用 hmac.compare_digest 定长比较，中文令牌也行（第 7 章）。"""
    if isinstance(given, str):
        given = given.encode("utf-8", errors="surrogatepass")
    return hmac.compare_digest(given, token.encode("utf-8", errors="surrogatepass"))


def bearer_ok(scope: Scope, token: str) -> bool:
    """请求头 Authorization: Bearer <令牌> 是否与 token 相同（取原始字节：非 ASCII 的令牌按 UTF-8 比）（第 7 章）。"""
    raw = dict(scope["headers"]).get(b"authorization", b"")
    scheme, _, given = raw.partition(b" ")
    return scheme.lower() == b"bearer" and token_matches(given.strip(), token)


class BearerGuard:
    """ASGI 中间件：设置了令牌时，没带对 Authorization: Bearer <令牌> 的 HTTP 请求一律 401（第 8 章）。"""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token and not bearer_ok(scope, self.token):
            await JSONResponse({"detail": UNAUTHORIZED}, status_code=401,
                               headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self.app(scope, receive, send)
