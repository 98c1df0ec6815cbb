"""课程知识库的 MCP 服务：检索工具、文档清单工具与文档资源，用官方 mcp SDK 的 FastMCP 搭建（第 8 章）。"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

import anyio
from langchain_core.documents import Document
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, Resource, TextContent, ToolAnnotations
from pydantic import Field, ValidationError
from typing_extensions import TypedDict  # pydantic 在 Python 3.11 上要求 typing_extensions 的 TypedDict

from helpers.app.service import Assistant
from helpers.app.validation import BearerGuard  # noqa: F401  python -m helpers.mcp --http 用它把关（由 helpers.mcp 转出）
from helpers.config import PROJECT_ROOT
from helpers.errors import AppError
from helpers.knowledge import load_file
from helpers.rag import UNKNOWN_SOURCE, format_context, locator

log = logging.getLogger("helpers.mcp")
log.addHandler(logging.NullHandler())

SERVER_NAME = "course-kb"
DOCUMENT_PREFIX = "kb://documents/"
DOCUMENT_TEMPLATE = DOCUMENT_PREFIX + "{name}"
TEXT_SUFFIXES = (".md", ".txt")  # 原样给出；其余格式经课程的加载器取文字
SEARCH_DESCRIPTION = (
    "在课程知识库（《动手学大模型应用开发》的讲义与用户上传的文档）里检索与问题最相关的原文片段。"
    "回答关于课程内容（大模型、提示词、LangChain、向量库、RAG、评估、部署等）或知识库里文档的问题之前先调用它，"
    "用返回片段里的原文作答，并用 source（文件名）和 page（PDF 页码，从 0 数）标明出处；"
    "没找到相关片段时换个说法（换关键词、拆成小问题）再检索一次，仍然没有就如实说知识库里没有。"
    "query 写成一句完整的问题或几个关键词；k 是返回条数（1–50，默认 4）。"
)
LIST_DESCRIPTION = (
    "列出知识库里的全部文档：文件名、切成了多少块、是否为用户上传的。"
    "想知道知识库里有哪些资料、某个文件在不在、或要按文件名读取原文（资源 kb://documents/{文件名}）时调用它。"
)
_FIELDS = {"query": "查询 query", "k": "条数 k"}
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)  # 只读、不连外网
Query = Annotated[str, Field(description="要检索的问题或关键词（1–2000 字）")]
TopK = Annotated[int, Field(ge=1, le=50, description="返回几块原文（1–50）")]


class Chunk(TypedDict):
    """检索到的一块原文：全文、来源文件、页码、页码以外的位置与分数（第 8 章）。"""

    text: str
    source: str
    page: int | None
    where: str | None
    score: float | None


class DocumentInfo(TypedDict):
    """知识库里的一个文档：名称、块数、是否为上传的文件（第 8 章）。"""

    name: str
    chunks: int
    uploaded: bool


def _chunk(doc: Document) -> Chunk:
    score = doc.metadata.get("score")
    return Chunk(text=doc.page_content.strip(), source=doc.metadata.get("source", UNKNOWN_SOURCE),
                 page=doc.metadata.get("page"), where=locator(doc.metadata),
                 score=None if score is None else round(float(score), 4))


def search_chunks(assistant: Assistant, query: Any, k: Any = 4) -> list[Chunk]:
    """与助手的 /api/search 同样检查参数、同样的检索方式，但返回每块的全文（第 8 章）。"""
    return [_chunk(d) for d in assistant.retrieve(query, k)]


def search_result(assistant: Assistant, query: Any, k: Any = 4) -> CallToolResult:
    """search_knowledge 的结果：给模型读的编号资料（同检索问答链的 [n] 来源格式）+ 给程序读的结构化块（第 8 章）。"""
    docs = assistant.retrieve(query, k)
    return CallToolResult(content=[TextContent(type="text", text=format_context(docs))],
                          structuredContent={"result": [_chunk(d) for d in docs]})


def document_uri(name: str) -> str:
    """文档在 MCP 里的资源地址：kb://documents/<按 URL 编码的文件名>（子目录的 / 也编码）（第 8 章）。"""
    return DOCUMENT_PREFIX + quote(name, safe="")


def document_text(path: Path) -> str:
    """文档的文字：md/txt 原样，PDF 与办公等格式用课程的加载器提取后拼起来（PDF 标出页码）（第 8 章）。"""
    if path.suffix.lower() in TEXT_SUFFIXES:
        return path.read_text(encoding="utf-8", errors="replace")
    docs = load_file(path)
    if path.suffix.lower() == ".pdf":
        return "\n\n".join(f"## 第 {d.metadata['page'] + 1} 页\n\n{d.page_content}" for d in docs)
    return "\n\n".join(d.page_content for d in docs)


def _mime(name: str) -> str:
    return "text/markdown" if name.lower().endswith(".md") else "text/plain"


def _describe_validation(exc: ValidationError) -> str:
    """把 pydantic 的英文参数错误翻成一句中文。"""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "arguments"]
        name = _FIELDS.get(loc[0] if loc else "", loc[0] if loc else "参数")
        kind = err.get("type", "")
        if kind == "missing":
            parts.append(f"缺少{name}")
        elif kind.startswith("int") or kind in ("greater_than_equal", "less_than_equal"):
            parts.append(f"{name} 必须是 1 到 50 之间的整数")
        elif kind.startswith("string"):
            parts.append(f"{name} 必须是文字")
        else:
            parts.append(f"{name} 不合法")
    return "参数不对：" + "；".join(parts)


class KnowledgeServer(FastMCP):
    """课程知识库的 FastMCP 服务：资源清单随知识库变化，出错时给一句中文而不是英文堆栈（第 8 章）。"""

    def __init__(self, assistant: Assistant, **kwargs: Any) -> None:
        root = logging.getLogger()
        guard = logging.NullHandler()
        root.addHandler(guard)  # FastMCP() 会调 logging.basicConfig 改根日志；根上已有处理器时它什么也不做
        try:
            super().__init__(**kwargs)
        finally:
            root.removeHandler(guard)
        self.assistant = assistant

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """调用工具；未知工具、参数不对、检索出错都变成一句中文的错误结果（isError），会话照常可用（第 8 章）。"""
        if self._tool_manager.get_tool(name) is None:
            known = "、".join(t.name for t in self._tool_manager.list_tools())
            raise ToolError(f"没有名为 {name!r} 的工具：可用的工具是 {known}")
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, AppError):
                raise ToolError(cause.message) from None
            if isinstance(cause, ValidationError):
                raise ToolError(_describe_validation(cause)) from None
            _, message = self.assistant.explain_failure(cause or exc)  # 原文遮盖密钥后只写进日志
            raise ToolError(message) from None

    async def list_resources(self) -> list[Resource]:
        """资源清单：知识库里当前的每个文档（之后上传的也能经模板 kb://documents/{name} 读取）（第 8 章）。"""
        docs = await anyio.to_thread.run_sync(self.assistant.documents)
        return [Resource(uri=document_uri(d["name"]), name=d["name"], mimeType=_mime(d["name"]),
                         description=f"知识库文档 {d['name']}（{d['chunks']} 块{'，上传的' if d['uploaded'] else ''}）")
                for d in docs]

    async def read_resource(self, uri: Any) -> Iterable[ReadResourceContents]:
        """读一个文档资源：文件只从上传区与课程文档目录里找（Assistant.document_path），跳不出这两个目录（第 8 章）。"""
        text = str(uri)
        if not text.startswith(DOCUMENT_PREFIX) or len(text) == len(DOCUMENT_PREFIX):
            raise ResourceError(f"没有这个资源 {text!r}：文档资源形如 {DOCUMENT_TEMPLATE}，文件名见 list_documents")
        name = unquote(text[len(DOCUMENT_PREFIX):])
        try:
            path = await anyio.to_thread.run_sync(self.assistant.document_path, name)
            content = await anyio.to_thread.run_sync(document_text, path)
        except AppError as exc:
            raise ResourceError(exc.message) from None
        except Exception as exc:  # 文件读不出来（如损坏的 PDF）：一句中文，服务照常
            _, message = self.assistant.explain_failure(exc)
            raise ResourceError(f"读取 {name} 失败：{message}") from None
        return [ReadResourceContents(content=content, mime_type=_mime(name))]


def build_server(assistant: Assistant, *, host: str = "127.0.0.1", port: int = 8765,
                 stateless: bool = False, transport_security: TransportSecuritySettings | None = None
                 ) -> KnowledgeServer:
    """在助手的知识库上建 MCP 服务：工具 search_knowledge、list_documents，资源 kb://documents/{name}（第 8 章）。"""
    server = KnowledgeServer(
        assistant, name=SERVER_NAME, log_level="WARNING", host=host, port=port, stateless_http=stateless,
        transport_security=transport_security,
        instructions="《动手学大模型应用开发》课程知识库：先用 search_knowledge 检索原文再回答，并标明出处。")

    @server.tool(name="search_knowledge", title="检索课程知识库", description=SEARCH_DESCRIPTION,
                 annotations=READ_ONLY)
    async def search_knowledge(query: Query, k: TopK = 4) -> Annotated[CallToolResult, list[Chunk]]:
        return await anyio.to_thread.run_sync(search_result, assistant, query, k)  # 检索是阻塞的：放到线程里

    @server.tool(name="list_documents", title="列出知识库文档", description=LIST_DESCRIPTION, annotations=READ_ONLY)
    async def list_documents() -> list[DocumentInfo]:
        docs = await anyio.to_thread.run_sync(assistant.documents)
        return [DocumentInfo(name=d["name"], chunks=d["chunks"], uploaded=d["uploaded"]) for d in docs]

    @server.resource(DOCUMENT_TEMPLATE, name="document", title="知识库文档原文", mime_type="text/plain",
                     description="知识库里一个文档的文字（文件名按 URL 编码，见 list_documents）")
    def document(name: str) -> str:  # 只为让模板出现在 resources/templates/list 里；读取走 read_resource
        return document_text(assistant.document_path(unquote(name)))

    return server


def _server_args(collection: str | None, sync: bool) -> list[str]:
    args = ["-m", "helpers.mcp"]
    if collection:
        args += ["--collection", collection]
    if not sync:
        args.append("--no-sync")
    return args


def client_config(name: str = SERVER_NAME, *, collection: str | None = None, sync: bool = True,
                  env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """MultiServerMCPClient 的连接配置：用当前解释器在子进程里跑 python -m helpers.mcp（stdio）（第 8 章）。"""
    # 显式传出当前环境：mcp 的 stdio_client 在 env 为空时只传 HOME、PATH 等几个变量
    # （mcp/client/stdio/__init__.py 的 get_default_environment），子进程就会去读项目的 .env，
    # 而不是笔记本/测试里的离线设置（LLM_UNIVERSE_IGNORE_DOTENV、VECTOR_DB_DIR 等）
    return {name: {"transport": "stdio", "command": sys.executable, "args": _server_args(collection, sync),
                   "env": dict(os.environ if env is None else env), "cwd": str(PROJECT_ROOT)}}


def desktop_config(name: str = SERVER_NAME, *, collection: str | None = None, vscode: bool = False
                   ) -> dict[str, Any]:
    """MCP 桌面客户端的配置：Claude Desktop、Cursor 用 {"mcpServers": …}，VS Code 用 {"servers": …}（第 8 章）。"""
    # 格式来源（2026-12-01 核对）：https://modelcontextprotocol.io/quickstart/user（Claude Desktop 的
    # claude_desktop_config.json：mcpServers → command/args/env）；https://cursor.com/docs/mcp（Cursor 的
    # ~/.cursor/mcp.json 或项目里的 .cursor/mcp.json，同一形状）；
    # https://code.visualstudio.com/docs/copilot/reference/mcp-configuration
    # （VS Code 的 mcp.json：servers，每项必须写 type）
    # 不写 env：桌面客户端启动的服务读项目根目录的 .env（按 helpers 所在位置找），密钥不必抄进这个文件
    entry: dict[str, Any] = {"command": sys.executable, "args": _server_args(collection, True)}
    if vscode:
        return {"servers": {name: {"type": "stdio", **entry}}}
    return {"mcpServers": {name: entry}}
