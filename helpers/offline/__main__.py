"""命令行：python -m helpers.offline serve --port 8765 在 127.0.0.1 上启动离线服务（第 2 章）。"""

from __future__ import annotations

import argparse
import sys

from helpers.offline.app import get_app


def main(argv: list[str] | None = None) -> int:
    """解析命令行并启动离线服务（第 2 章）。"""
    parser = argparse.ArgumentParser(prog="python -m helpers.offline", description="离线 OpenAI 兼容服务")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="在本机启动服务")
    serve.add_argument("--host", default="127.0.0.1", help="监听地址（默认只听本机）")
    serve.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)

    import uvicorn  # 导入约 0.27 秒：--help 与参数出错时用不到

    print(f"离线服务：http://{args.host}:{args.port}/v1  （任意 api_key 均可；Ctrl+C 退出）", flush=True)
    uvicorn.run(get_app(), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
