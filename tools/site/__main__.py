"""命令行：uv run python -m tools.site build|pdf|links|exercises（在仓库根目录运行）。"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.site.build import build
from tools.site.exercises import TEACHING_DOC, exercises_markdown, update_teaching_doc
from tools.site.links import check_links, report
from tools.site.pages import SITE_DIR, display_path
from tools.site.pdf import build_pdf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site", description="课程网站、PDF 与链接检查")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("build", "生成静态网站（不执行笔记本）"), ("pdf", "生成网站并打印全书 PDF")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--out", type=Path, default=SITE_DIR, help="输出目录（默认 site/）")
    sub.add_parser("links", help="检查内部链接，列出外部链接（不访问网络）")
    ex = sub.add_parser("exercises", help="列出各章练习与自检（--write 写进 docs/teaching.md）")
    ex.add_argument("--write", action="store_true", help="更新教师指南里的练习一览")
    args = parser.parse_args(argv)

    if args.command == "exercises":
        if args.write:
            changed = update_teaching_doc()
            print(f"{display_path(TEACHING_DOC)}：" + ("已更新练习一览" if changed else "练习一览已是最新"))
        else:
            print(exercises_markdown())
        return 0

    if args.command == "links":
        return report(check_links())

    start = time.perf_counter()
    pages = build(args.out, pdf_link=True if args.command == "pdf" else None)
    chapters = [p for p in pages if p.is_chapter]
    print(f"网站：{len(chapters)} 章、{len(pages) - len(chapters)} 篇文档 → {args.out / 'index.html'}"
          f"（{time.perf_counter() - start:.1f} 秒）")
    if args.command == "pdf":
        start = time.perf_counter()
        target = build_pdf(args.out)
        print(f"PDF：{target}（{target.stat().st_size / 1e6:.1f} MB，{time.perf_counter() - start:.1f} 秒）")
    return 0


if __name__ == "__main__":
    sys.exit(main())
