"""把一章笔记本或一篇 Markdown 文档渲染成网页片段（Page），不执行代码、使用提交的输出。"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import nbformat
from jinja2 import DictLoader, pass_context
from latex2mathml.converter import convert
from markdown_it import MarkdownIt
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from helpers.config import PROJECT_ROOT

SITE_DIR = PROJECT_ROOT / "site"
PDF_NAME = "llm-universe.pdf"
COURSE_TITLE = "动手学大模型应用开发（LLM Universe）"
COURSE_BLURB = ("面向 Python 开发者的中文大模型应用开发课程：从调用大模型 API、LangChain、Chroma 向量知识库、"
                "Prompt 设计、评估迭代，一直做到一个可用的个人知识库助手。每一章都不需要 API Key、不需要联网，"
                "这里展示的每一个输出都是在离线默认环境下真实运行得到的。")
DOC_PAGES = {"docs/teaching.md": ("teaching", "教师指南")}  # 额外渲染成网页的 Markdown 文档
EXTERNAL_SCHEMES = ("http", "https", "mailto", "ftp", "data", "javascript")

# 参考答案单元在网站上折叠显示（与 JupyterLab 中 source_hidden 的效果一致）
_FRAGMENT_TEMPLATE = """{%- extends 'base.html.j2' -%}
{% block codecell %}
{%- if '参考答案' in cell.metadata.get('tags', []) -%}
<details class="llmu-answer"><summary>参考答案（先自己写，再展开对照）</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{% endblock codecell %}
"""

_ATTR_RE = re.compile(r'\s(href|src|id)="([^"]*)"')
_TAG_OPEN_RE = re.compile(r"<[a-zA-Z][^<>]*>")  # 只改真正标签里的属性：代码里的 href="…" 是转义过的文字
_H2_RE = re.compile(r'<h2 id="([^"]*)">(.*?)<a class="anchor-link"', re.S)
TAG_RE = re.compile(r"<[^>]+>")


@dataclass
class Page:
    """网站的一页：一章笔记本或一篇文档。"""

    slug: str
    title: str
    source: Path
    subtitle: str = ""
    body: str = ""
    headings: list[tuple[str, str]] = field(default_factory=list)
    is_chapter: bool = True

    @property
    def filename(self) -> str:
        return f"{self.slug}.html"


def sub_attrs(body: str, fix) -> str:
    """对每个 HTML 开始标签里的 href/src/id 属性调用 fix(match)。"""
    return _TAG_OPEN_RE.sub(lambda tag: _ATTR_RE.sub(fix, tag[0]), body)


@cache
def markdown_parser() -> MarkdownIt:
    """全站共用的 Markdown 解析器（CommonMark + 表格，允许 HTML）。"""
    return MarkdownIt("commonmark", {"html": True}).enable("table")


def github_slug(text: str) -> str:
    """GitHub 给 Markdown 标题生成锚点的规则：小写、去标点、空格变连字符。"""
    text = re.sub(r"[^\w\- ]", "", TAG_RE.sub("", text).strip().lower())
    return text.replace(" ", "-")


def display_path(path: Path) -> str:
    """相对仓库根目录的路径（仓库外的文件原样显示）。"""
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def h1_and_subtitle(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """从第一个 Markdown 单元取 H1 标题和紧随其后的一句副标题。"""
    markdown = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title, subtitle = "", ""
    lines = [ln.strip() for ln in markdown.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("# ") and not title:
            title = line[2:].strip()
            rest = [ln for ln in lines[i + 1:] if ln]
            if rest and not rest[0].startswith(("#", "-", "*", "学完本章")):
                subtitle = rest[0]
            break
    return title, subtitle


def render_title(path: Path) -> str:
    """笔记本第一个 Markdown 单元里的 H1 标题。"""
    return h1_and_subtitle(nbformat.read(path, as_version=4))[0] or path.stem


def _trusted_html(text: str) -> str:
    return text


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """把 LaTeX 公式转成 MathML，浏览器原生显示，不需要 MathJax。"""
    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # 转不了的公式原样显示，不让整页失败
        return f'<code class="llmu-tex">{html.escape(tex)}</code>'


class _MathMLRenderer(IPythonRenderer):
    """nbconvert 把公式留给 MathJax（CDN），这里在构建时转成 MathML。"""

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, display=True)

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body)

    def latex_environment(self, name: str, body: str) -> str:
        return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)


class _Exporter(HTMLExporter):
    @pass_context
    def markdown2html(self, context, source):
        cell = context.get("cell", {})
        renderer = _MathMLRenderer(escape=False, attachments=cell.get("attachments", {}),
                                   embed_images=self.embed_images,
                                   path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                                   anchor_link_text=self.anchor_link_text,
                                   exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


def exporter() -> HTMLExporter:
    """nbconvert 的 lab 模板导出器：公式转 MathML，参考答案折叠。"""
    # 代码已由 pygments 转义；课程自己的笔记本无需再用 bleach 逐格清洗（它占了构建时间的三分之一）
    return _Exporter(template_name="lab", extra_loaders=[DictLoader({"llmu.html.j2": _FRAGMENT_TEMPLATE})],
                     template_file="llmu.html.j2", filters={"clean_html": _trusted_html})


def _decode_local(value: str) -> str:
    """把 nbconvert 百分号编码的中文锚点还原（id="小结"、href="#小结"）。"""
    if value.startswith("#") or "://" not in value:
        return html.escape(unquote(html.unescape(value)), quote=True)
    return value


def render_notebook(path: Path, export: HTMLExporter | None = None) -> Page:
    """把一个已执行的笔记本转成网页片段（不执行，使用提交的输出）。"""
    nb = nbformat.read(path, as_version=4)
    title, subtitle = h1_and_subtitle(nb)
    body, _ = (export or exporter()).from_notebook_node(nb)
    body = sub_attrs(body, lambda m: f' {m[1]}="{_decode_local(m[2]) if m[1] != "src" else m[2]}"')
    headings = [(html.unescape(hid), html.unescape(TAG_RE.sub("", text)).strip())
                for hid, text in _H2_RE.findall(body)]
    return Page(slug=path.stem, title=title or path.stem, source=path, subtitle=subtitle, body=body,
                headings=headings)


def render_markdown_doc(path: Path, slug: str, title: str) -> Page:
    """把仓库里的 Markdown 文档（如教师指南）转成网页片段。"""
    text = path.read_text(encoding="utf-8")
    md = markdown_parser()
    tokens = md.parse(text)
    headings = []
    for i, tok in enumerate(tokens):  # 给标题加 GitHub 风格的 id，文档内锚点才能跳转
        if tok.type == "heading_open":
            inline = tokens[i + 1].content
            tok.attrSet("id", github_slug(inline))
            if tok.tag == "h2":
                headings.append((github_slug(inline), inline))
    body = md.renderer.render(tokens, md.options, {})
    h1 = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), title)
    return Page(slug=slug, title=h1, source=path, body=f'<div class="llmu-doc">{body}</div>',
                headings=headings, is_chapter=False)
