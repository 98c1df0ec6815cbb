"""链接检查：README、docs/ 与笔记本里的内部链接（相对路径与标题锚点）必须可达；外部链接只列出、从不访问。"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from helpers.config import PROJECT_ROOT
from tools.notebooks import all_notebooks
from tools.site.pages import EXTERNAL_SCHEMES, TAG_RE, display_path, github_slug, markdown_parser

_BARE_URL_RE = re.compile(r"https?://[^\s<>()（）\[\]，。；、]+")
_HTML_LINK_RE = re.compile(r'\b(?:href|src)="([^"]+)"')


@dataclass(frozen=True)
class Link:
    """Markdown 中的一个链接：出处、目标与问题（为空表示可达）。"""

    where: str
    target: str
    problem: str = ""

    @property
    def external(self) -> bool:
        return urlsplit(self.target).scheme in EXTERNAL_SCHEMES


def _jupyter_slug(text: str) -> str:
    """JupyterLab / nbconvert 的标题锚点：空格变连字符，其余保留。"""
    return TAG_RE.sub("", text).strip().replace(" ", "-")


def _markdown_units(path: Path) -> list[tuple[str, str]]:
    """文件中的 Markdown 文本：.md 整篇，.ipynb 每个 Markdown 单元一段（出处带单元号）。"""
    rel = display_path(path)
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [(f"{rel} 单元 {i}", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    return [(rel, path.read_text(encoding="utf-8"))]


def _targets_and_headings(text: str) -> tuple[list[str], list[str]]:
    """一段 Markdown 中的链接/图片目标与标题文字（代码块里的不算）。"""
    targets, headings = [], []
    tokens = markdown_parser().parse(text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            headings.append(tokens[i + 1].content)
        if tok.type in ("html_block",):
            targets += _HTML_LINK_RE.findall(tok.content)
        for child in tok.children or []:
            if child.type == "link_open":  # markdown-it 会把中文百分号编码，这里还原
                targets.append(unquote(str(child.attrGet("href"))))
            elif child.type == "image":
                targets.append(unquote(str(child.attrGet("src"))))
            elif child.type == "html_inline":
                targets += _HTML_LINK_RE.findall(child.content)
            elif child.type == "text":  # GitHub 会把裸网址自动变成链接
                targets += [u.rstrip(".,;:!?") for u in _BARE_URL_RE.findall(child.content)]
    return targets, headings


def _anchors(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        slugs: set[str] = set()
        for _, text in _markdown_units(path):
            for heading in _targets_and_headings(text)[1]:
                slugs |= {github_slug(heading), _jupyter_slug(heading)}
        if path.suffix == ".ipynb":
            slugs |= {f"cell-id={c.get('id')}" for c in nbformat.read(path, as_version=4).cells}
        cache[path] = slugs
    return cache[path]


def link_sources() -> list[Path]:
    """要检查链接的文件：README、docs/ 下的文档与全部笔记本。"""
    files = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md")), *all_notebooks()]
    return [p for p in files if p.is_file()]


def check_links(files: list[Path] | None = None, root: Path = PROJECT_ROOT) -> list[Link]:
    """收集链接并检查内部链接（相对路径与标题锚点）；外部链接只列出、从不访问。"""
    cache: dict[Path, set[str]] = {}
    links: list[Link] = []
    for path in link_sources() if files is None else files:
        for where, text in _markdown_units(path):
            for target in _targets_and_headings(text)[0]:
                links.append(Link(where, target, _problem(path, target, cache, root.resolve())))
    return links


def _problem(source: Path, target: str, cache: dict[Path, set[str]], root: Path) -> str:
    parts = urlsplit(target)
    if parts.scheme in EXTERNAL_SCHEMES or target.startswith(("//", "attachment:")):
        return ""
    if parts.scheme:
        return f"不认识的链接协议 {parts.scheme}:"
    dest = (source.parent / unquote(parts.path)).resolve() if parts.path else source.resolve()
    if not dest.exists():
        return "文件不存在"
    try:
        dest.relative_to(root)
    except ValueError:
        return "指向仓库之外"
    frag = unquote(parts.fragment)
    if frag and dest.suffix in (".md", ".ipynb") and frag not in _anchors(dest, cache):
        return f"找不到标题锚点 #{frag}"
    return ""


def report(links: list[Link]) -> int:
    """打印外部链接清单与失效的内部链接；有失效链接时返回 1。"""
    broken = [ln for ln in links if ln.problem]
    external: dict[str, list[str]] = {}
    for ln in links:
        if ln.external:
            external.setdefault(ln.target, []).append(ln.where)
    print(f"外部链接 {len(external)} 个（只列出，不访问）：")
    for url, wheres in sorted(external.items()):
        print(f"  {url}  ← {wheres[0]}" + (f" 等 {len(wheres)} 处" if len(wheres) > 1 else ""))
    print(f"内部链接 {sum(1 for ln in links if not ln.external)} 个，失效 {len(broken)} 个")
    for ln in broken:
        print(f"  ✗ {ln.where}：{ln.target}（{ln.problem}）")
    return 1 if broken else 0
