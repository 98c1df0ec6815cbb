"""python -m helpers.mcp：把课程知识库作为 MCP 服务跑起来，默认走 stdio，--http 走 streamable HTTP（第 8 章）。

设置与助手（python -m helpers.app）相同：LLM/嵌入提供方、VECTOR_DB_DIR、CHROMA_HOST/PORT、APP_TOKEN、
APP_COLLECTION、APP_CORPUS_DIR、APP_UPLOADS_DIR（环境变量优先，其次项目根目录的 .env）。
stdio 模式下标准输出只走协议消息：提示、日志与进度条都写到标准错误。
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from helpers.app.service import Assistant

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """命令行参数（第 8 章）。"""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.mcp",
        description="课程知识库的 MCP 服务：工具 search_knowledge、list_documents，资源 kb://documents/{文件名}。"
                    "默认经标准输入输出（stdio）与 MCP 客户端通信。", add_help=False)
    parser.add_argument("-h", "--help", action="help", help="显示这段帮助并退出")
    parser.add_argument("--http", action="store_true", help="改用 streamable HTTP（地址 http://主机:端口/mcp）")
    parser.add_argument("--host", default="127.0.0.1",
                        help="--http 的监听地址（默认只允许本机；非本机地址必须先设置 APP_TOKEN）")
    parser.add_argument("--port", type=int, default=8765, help="--http 的端口（默认 8765）")
    parser.add_argument("--collection", help="知识库集合名（默认与助手相同：APP_COLLECTION，否则 assistant）")
    parser.add_argument("--no-sync", action="store_true", help="启动时不与文档目录、上传区同步，直接用库里现有的内容")
    return parser.parse_args(argv)


def sync_with_lock(assistant: Assistant, settings: Settings) -> str:
    """与文档目录、上传区同步；嵌入式库先拿助手用的同一把写入锁，拿不到（助手正在运行）就跳过同步（第 8 章）。"""
    from helpers.app.service import sync_knowledge_base  # noqa: PLC0415
    from helpers.app.settings import StoreBusyError, store_lock  # noqa: PLC0415

    def sync() -> str:
        return sync_knowledge_base(assistant.kb, assistant.corpus_dir, assistant.config.uploads_dir).summary()

    if settings.chroma_host:  # Chroma 服务自己管并发写入
        return sync()
    db = Path(settings.vector_db_dir)
    try:
        lock = store_lock(db)  # 与 python -m helpers.app 同一把锁：两个进程不会同时写嵌入式 Chroma
    except StoreBusyError:
        return f"助手进程正在使用向量库 {db}（由它负责同步）：本服务跳过同步，直接检索库里现有的内容"
    try:
        return sync()
    finally:
        lock.release()


def open_assistant(settings: Settings, collection: str | None, sync: bool) -> tuple[Assistant, str]:
    """按助手的设置打开同一个知识库；MCP 只检索，不调用聊天模型，所以配离线模型、不要密钥（第 8 章）。"""
    from helpers.app.service import Assistant  # noqa: PLC0415
    from helpers.app.settings import collection_from_env, config_from_env, corpus_from_env  # noqa: PLC0415
    from helpers.llm import get_chat_model  # noqa: PLC0415

    assistant = Assistant.from_settings(  # 同步放到下面，在写入锁里做
        settings, config_from_env(settings.app_token), collection=collection or collection_from_env(),
        corpus_dir=corpus_from_env(), sync=False, llm=get_chat_model("offline", settings=settings))
    note = sync_with_lock(assistant, settings) if sync else "跳过同步（--no-sync）"
    return assistant, note


def main(argv: list[str] | None = None) -> int:
    """启动 MCP 服务（第 8 章）。重的导入（chromadb、langchain、mcp）放在函数里：--help 与拒绝监听立刻答复。"""
    args = _parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        settings = load_settings()
        if args.http and args.host not in LOOPBACK and not settings.app_token:
            print(f"拒绝监听 {args.host}：非本机地址必须先设置 APP_TOKEN（客户端带 Authorization: Bearer <令牌>），"
                  "或去掉 --host 只在本机 127.0.0.1 上服务", file=sys.stderr)
            return 2
        assistant, note = open_assistant(settings, args.collection, not args.no_sync)
    except (ConfigError, ValueError) as exc:
        print(f"配置错误：{exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # 向量库损坏、Chroma 服务连不上等：一句中文，不打堆栈
        print(f"知识库打不开：{exc}", file=sys.stderr)
        return 2
    print(note, file=sys.stderr, flush=True)
    from helpers.mcp.server import BearerGuard, build_server  # noqa: PLC0415

    assistant.warm_up()  # 第一次检索不必等分词词典与 BM25 索引
    if not args.http:
        build_server(assistant).run("stdio")
        return 0
    import uvicorn  # noqa: PLC0415  只有 HTTP 模式用得到
    from mcp.server.transport_security import TransportSecuritySettings  # noqa: PLC0415

    # 本机地址：SDK 默认的防 DNS 重绑定检查（Host/Origin 只许本机）；非本机地址靠令牌把关
    security = None if args.host in LOOPBACK else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server = build_server(assistant, host=args.host, port=args.port, transport_security=security)
    app = BearerGuard(server.streamable_http_app(), settings.app_token)
    where = f"http://{args.host}:{args.port}/mcp"
    print(f"MCP 服务（streamable HTTP）：{where}（Ctrl+C 停止）", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    # jsonschema（mcp 用它校验参数）一见装了 rfc3987_syntax（jupyter 的可选依赖）就在导入时编译它的 IRI 文法，
    # 要 2 秒；mcp 从不检查 "iri" 格式。只在服务自己的进程里挡掉这个导入：每个 stdio 客户端起一次服务都省下它
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    sys.exit(main())
