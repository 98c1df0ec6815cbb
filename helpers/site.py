"""课程网站与 PDF：把提交的笔记本输出（不重新执行）做成离线可看的静态网站和一本 PDF，并检查链接。

    uv run python -m helpers.site build    # → site/index.html、每章一页、course.html（全书一页）
    uv run python -m helpers.site pdf      # → site/llm-universe.pdf（Chromium 打印，内嵌中文字体）
    uv run python -m helpers.site links    # 检查内部链接是否可达，列出外部链接（从不访问）
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from helpers.config import PROJECT_ROOT, ConfigError
from helpers.course import cjk_font_path
from helpers.notebooks import all_notebooks

SITE_DIR = PROJECT_ROOT / "site"
PDF_NAME = "llm-universe.pdf"
COURSE_TITLE = "动手学大模型应用开发（LLM Universe）"
COURSE_BLURB = ("面向 Python 开发者的中文大模型应用开发课程：从调用大模型 API、LangChain、Chroma 向量知识库、"
                "Prompt 设计、评估迭代，一直做到一个可用的个人知识库助手。每一章都不需要 API Key、不需要联网，"
                "这里展示的每一个输出都是在离线默认环境下真实运行得到的。")
DOC_PAGES = {"docs/teaching.md": ("teaching", "教师指南")}  # 额外渲染成网页的 Markdown 文档
MAX_COPY_BYTES = 5_000_000  # 被链接的仓库文件小于此大小时复制进网站

# 只用本地字体。中文字形交给 "LLMU CJK"：先找系统里的中文字体（local），没有时用随 PyMuPDF 分发、
# 复制进网站的 Droid Sans Fallback。它必须排在字体列表最前、用 unicode-range 只管中文：
# Chromium 在系统字体（如 DejaVu Sans）之后不会再回退到网页字体，中文会变成方框。
CJK_RANGES = ("U+2E80-2FFF, U+3000-33FF, U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+FE30-FE4F, "
              "U+FF00-FFEF, U+20000-2FFFF")
FONT_CSS = f"""@font-face {{
  font-family: "LLMU CJK"; font-display: swap; unicode-range: {CJK_RANGES};
  src: local("PingFang SC"), local("PingFangSC-Regular"), local("Microsoft YaHei"), local("Noto Sans CJK SC"),
    local("NotoSansCJKsc-Regular"), local("Source Han Sans SC"), url("cjk.ttf") format("truetype");
}}
:root {{
  --llmu-sans: "LLMU CJK", "Segoe UI", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif;
  --llmu-mono: "LLMU CJK", "DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", monospace;
}}
"""

SITE_CSS = """
:root {
  --jp-content-font-family: var(--llmu-sans); --jp-ui-font-family: var(--llmu-sans);
  --jp-code-font-family: var(--llmu-mono); --jp-code-font-family-default: var(--llmu-mono);
  --llmu-accent: #1a73e8; --llmu-border: #e0e0e0;
}
html, body { margin: 0; padding: 0; }
body { font-family: var(--llmu-sans); color: #1f2328; background: #fff; }
body.jp-Notebook { overflow: visible; padding: 0; }
.llmu-layout { display: flex; align-items: flex-start; min-height: 100vh; }
.llmu-nav { position: sticky; top: 0; flex: 0 0 17rem; height: 100vh; overflow-y: auto; box-sizing: border-box;
  padding: 1rem 1rem 2rem; background: #f6f8fa; border-right: 1px solid var(--llmu-border); font-size: 14px; }
.llmu-nav .llmu-brand { display: block; font-weight: 700; font-size: 16px; color: #1f2328; text-decoration: none;
  margin-bottom: 1rem; line-height: 1.4; }
.llmu-nav ol, .llmu-nav ul { list-style: none; margin: 0; padding: 0; }
.llmu-nav li { margin: 0.15rem 0; }
.llmu-nav a { color: #1f2328; text-decoration: none; display: block; padding: 0.2rem 0.4rem; border-radius: 4px; }
.llmu-nav a:hover { background: #eaeef2; }
.llmu-nav li.current > a { background: var(--llmu-accent); color: #fff; }
.llmu-nav ul.llmu-toc { margin: 0.2rem 0 0.4rem 0.8rem; border-left: 2px solid var(--llmu-border); }
.llmu-nav ul.llmu-toc a { font-size: 13px; color: #57606a; }
.llmu-nav .llmu-extra { margin-top: 1.2rem; padding-top: 0.8rem; border-top: 1px solid var(--llmu-border); }
.llmu-main { flex: 1 1 auto; min-width: 0; max-width: 62rem; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
.llmu-main .jp-Cell { padding: 4px 0; }
.llmu-main .jp-InputPrompt, .llmu-main .jp-OutputPrompt { display: none; }
.llmu-main .jp-RenderedHTMLCommon { font-size: 15px; line-height: 1.75; padding-right: 0; }
.llmu-main img { max-width: 100%; height: auto; }
.llmu-main pre, .llmu-main code, .llmu-main kbd, .llmu-main samp { font-family: var(--llmu-mono); }
.llmu-main .jp-InputArea-editor pre, .llmu-main .jp-RenderedText pre { font-size: 13px; line-height: 1.5; margin: 0; }
.llmu-main .jp-InputArea-editor .highlight pre { padding: 6px 8px; }
.llmu-main .jp-RenderedMarkdown pre { background: #f6f8fa; padding: 8px 10px; border-radius: 4px; }
.llmu-main math[display="block"] { margin: 0.8em 0; font-size: 1.1em; }
.llmu-main .jp-OutputArea-output pre { white-space: pre-wrap; word-break: break-word; }
details.llmu-answer { margin: 0.5rem 0; border: 1px dashed #d0a000; border-radius: 6px; padding: 0.3rem 0.6rem;
  background: #fffbe6; }
details.llmu-answer > summary { cursor: pointer; color: #8a6d00; font-weight: 600; }
.llmu-pager { display: flex; justify-content: space-between; gap: 1rem; margin-top: 3rem; padding-top: 1rem;
  border-top: 1px solid var(--llmu-border); }
.llmu-pager a { color: var(--llmu-accent); text-decoration: none; }
.llmu-chapters { border-collapse: collapse; width: 100%; margin: 1rem 0; }
.llmu-main .llmu-chapters td { border: 0; border-bottom: 1px solid var(--llmu-border); padding: 0.6rem 0.4rem;
  vertical-align: top; text-align: left; background: none; }
.llmu-main .llmu-chapters td:first-child { width: 18rem; padding-right: 1.5rem; }
.llmu-main .llmu-doc pre code { background: none; padding: 0; }
.llmu-main .llmu-doc pre { margin: 0.5rem 0; }
.llmu-chapters a { color: var(--llmu-accent); text-decoration: none; font-weight: 600; }
.llmu-note { color: #57606a; font-size: 14px; }
.llmu-doc { font-size: 15px; line-height: 1.75; }
.llmu-doc pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-family: var(--llmu-mono); }
.llmu-doc code { font-family: var(--llmu-mono); }
.llmu-doc table { border-collapse: collapse; }
.llmu-doc th, .llmu-doc td { border: 1px solid var(--llmu-border); padding: 0.3rem 0.6rem; }
@media (max-width: 800px) {
  .llmu-layout { display: block; }
  .llmu-nav { position: static; height: auto; border-right: 0; border-bottom: 1px solid var(--llmu-border); }
  .llmu-main { padding: 1rem; }
}
@media print {
  .llmu-nav, .llmu-pager, a.anchor-link { display: none !important; }
  .llmu-main { max-width: none; padding: 0; }
  section.llmu-chapter { break-before: page; }
  .jp-OutputArea-output img, .jp-OutputArea-output svg { break-inside: avoid; }
  .llmu-main .jp-InputArea-editor pre, .llmu-main pre { white-space: pre-wrap; word-break: break-all; }
  h1, h2, h3 { break-after: avoid; }
}
.llmu-cover { text-align: center; padding-top: 25vh; }
.llmu-cover h1 { font-size: 34px; }
"""

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


def _sub_attrs(body: str, fix) -> str:
    """对每个 HTML 开始标签里的 href/src/id 属性调用 fix(match)。"""
    return _TAG_OPEN_RE.sub(lambda tag: _ATTR_RE.sub(fix, tag[0]), body)

_H2_RE = re.compile(r'<h2 id="([^"]*)">(.*?)<a class="anchor-link"', re.S)
_TAG_RE = re.compile(r"<[^>]+>")
_BARE_URL_RE = re.compile(r"https?://[^\s<>()（）\[\]，。；、]+")
_EXTERNAL_SCHEMES = ("http", "https", "mailto", "ftp", "data", "javascript")


@dataclass
class Page:
    """网站的一页：一章笔记本或一篇文档（发布）。"""

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


def _h1_and_subtitle(nb) -> tuple[str, str]:
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


def _trusted_html(text: str) -> str:
    return text


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """把 LaTeX 公式转成 MathML，浏览器原生显示，不需要 MathJax（发布）。"""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # 转不了的公式原样显示，不让整页失败
        return f'<code class="llmu-tex">{html.escape(tex)}</code>'


def _exporter():
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class MathMLRenderer(IPythonRenderer):  # nbconvert 把公式留给 MathJax（CDN），这里在构建时转成 MathML
        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    class Exporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = MathMLRenderer(escape=False, attachments=cell.get("attachments", {}),
                                      embed_images=self.embed_images,
                                      path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                                      anchor_link_text=self.anchor_link_text,
                                      exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
            return MarkdownWithMath(renderer=renderer).render(source)

    # 代码已由 pygments 转义；课程自己的笔记本无需再用 bleach 逐格清洗（它占了构建时间的三分之一）
    return Exporter(template_name="lab", extra_loaders=[DictLoader({"llmu.html.j2": _FRAGMENT_TEMPLATE})],
                    template_file="llmu.html.j2", filters={"clean_html": _trusted_html})


def _count_images(nb) -> int:
    """笔记本输出中的图片数（png/jpeg/svg）。"""
    kinds = ("image/png", "image/jpeg", "image/svg+xml")
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if any(k in o.get("data", {}) for k in kinds))


def notebook_has_plots(path: Path) -> bool:
    """笔记本提交的输出里是否有图（发布测试用）。"""
    import nbformat

    return _count_images(nbformat.read(path, as_version=4)) > 0


def render_notebook(path: Path, exporter=None) -> Page:
    """把一个已执行的笔记本转成网页片段（不执行，使用提交的输出）（发布）。"""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    title, subtitle = _h1_and_subtitle(nb)
    body, _ = (exporter or _exporter()).from_notebook_node(nb)
    body = _sub_attrs(body, lambda m: f' {m[1]}="{_decode_local(m[2]) if m[1] != "src" else m[2]}"')
    headings = [(html.unescape(hid), html.unescape(_TAG_RE.sub("", text)).strip())
                for hid, text in _H2_RE.findall(body)]
    return Page(slug=path.stem, title=title or path.stem, source=path, subtitle=subtitle, body=body,
                headings=headings)


def _decode_local(value: str) -> str:
    """把 nbconvert 百分号编码的中文锚点还原（id="小结"、href="#小结"）。"""
    if value.startswith("#") or "://" not in value:
        return html.escape(unquote(html.unescape(value)), quote=True)
    return value


def render_markdown_doc(path: Path, slug: str, title: str) -> Page:
    """把仓库里的 Markdown 文档（如教师指南）转成网页片段（发布）。"""
    from markdown_it import MarkdownIt

    text = path.read_text(encoding="utf-8")
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
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


# ---------------------------------------------------------------- 链接改写与页面拼装

def _rewrite_links(page: Page, pages: list[Page], out: Path, combined: bool) -> str:
    """仓库内的相对链接改成网站内链接：笔记本 → 章节页，其他文件复制进 site/files/。"""
    by_source = {p.source.resolve(): p for p in pages}

    def anchor(target: Page, frag: str) -> str:
        if combined:
            return f"#{target.slug}--{frag}" if frag else f"#{target.slug}"
        return f"{target.filename}#{frag}" if frag else target.filename

    def fix(m: re.Match) -> str:
        attr, value = m[1], m[2]
        if attr == "id":
            return f' id="{page.slug}--{value}"' if combined else m[0]
        if not value or urlsplit(value).scheme in _EXTERNAL_SCHEMES or value.startswith("//"):
            return m[0]
        if value.startswith("#"):
            return f' {attr}="{anchor(page, value[1:])}"'
        parts = urlsplit(html.unescape(value))
        target = (page.source.parent / unquote(parts.path)).resolve()
        frag = unquote(parts.fragment)
        if target in by_source:
            return f' {attr}="{html.escape(anchor(by_source[target], frag), quote=True)}"'
        try:
            rel = target.relative_to(PROJECT_ROOT)
        except ValueError:
            return m[0]
        if target.is_file() and target.stat().st_size <= MAX_COPY_BYTES:
            dest = out / "files" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, dest)
            new = "files/" + rel.as_posix() + (f"#{parts.fragment}" if parts.fragment else "")
            return f' {attr}="{html.escape(new, quote=True)}"'
        return m[0]

    return _sub_attrs(page.body, fix)


def _nav(pages: list[Page], current: Page | None, has_pdf: bool) -> str:
    def item(p: Page) -> str:
        if p is not current:
            return f'<li><a href="{p.filename}">{html.escape(p.title)}</a></li>'
        toc = "".join(f'<li><a href="#{html.escape(hid, quote=True)}">{html.escape(text)}</a></li>'
                      for hid, text in p.headings)
        toc = f'<ul class="llmu-toc">{toc}</ul>' if toc else ""
        return f'<li class="current"><a href="{p.filename}">{html.escape(p.title)}</a>{toc}</li>'

    items = [item(p) for p in pages if p.is_chapter]
    extra = [item(p) for p in pages if not p.is_chapter]
    if has_pdf:
        extra.append(f'<li><a href="{PDF_NAME}">下载全书 PDF</a></li>')
    return (f'<nav class="llmu-nav" aria-label="章节导航"><a class="llmu-brand" href="index.html">'
            f'{html.escape(COURSE_TITLE)}</a><ol>{"".join(items)}</ol>'
            f'<ul class="llmu-extra">{"".join(extra)}</ul></nav>')


def _document(title: str, inner: str, nav: str = "") -> str:
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="assets/notebook.css">
<link rel="stylesheet" href="assets/site.css">
</head>
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<div class="llmu-layout">
{nav}
<main class="llmu-main">
{inner}
</main>
</div>
</body>
</html>
"""


def _pager(pages: list[Page], page: Page) -> str:
    chapters = [p for p in pages if p.is_chapter]
    if page not in chapters:
        return ""
    i = chapters.index(page)
    prev = f'<a href="{chapters[i - 1].filename}">← {html.escape(chapters[i - 1].title)}</a>' if i else "<span></span>"
    nxt = (f'<a href="{chapters[i + 1].filename}">{html.escape(chapters[i + 1].title)} →</a>'
           if i + 1 < len(chapters) else "<span></span>")
    return f'<div class="llmu-pager">{prev}{nxt}</div>'


def _index_body(pages: list[Page], has_pdf: bool) -> str:
    rows = "".join(
        f'<tr><td><a href="{p.filename}">{html.escape(p.title)}</a></td><td>{html.escape(p.subtitle)}</td></tr>'
        for p in pages if p.is_chapter)
    docs = "".join(f'<li><a href="{p.filename}">{html.escape(p.title)}</a></li>' for p in pages if not p.is_chapter)
    pdf = f'<li><a href="{PDF_NAME}">全书 PDF（{PDF_NAME}）</a></li>' if has_pdf else ""
    return f"""<div class="jp-RenderedHTMLCommon llmu-doc">
<h1>{html.escape(COURSE_TITLE)}</h1>
<p>{html.escape(COURSE_BLURB)}</p>
<h2>章节</h2>
<table class="llmu-chapters"><tbody>{rows}</tbody></table>
<ul>{docs}{pdf}</ul>
<h2>自己动手运行</h2>
<pre><code>uv run jupyter lab     # 打开课程（无需任何密钥）
uv run pytest          # 运行全部测试（离线）</code></pre>
<p class="llmu-note">本网站由 <code>uv run python -m helpers.site build</code> 从提交的笔记本输出生成，
构建时不执行代码、不访问网络。</p>
</div>"""


def _write_assets(out: Path, exporter) -> None:
    from pygments.formatters import HtmlFormatter

    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    lab_static = _lab_static(exporter)
    css = [(lab_static / "index.css").read_text(encoding="utf-8"),
           (lab_static / "theme-light.css").read_text(encoding="utf-8"),
           HtmlFormatter(style="default").get_style_defs(".highlight")]
    (assets / "notebook.css").write_text("\n".join(css), encoding="utf-8")
    (assets / "site.css").write_text(FONT_CSS + SITE_CSS, encoding="utf-8")
    shutil.copyfile(cjk_font_path(), assets / "cjk.ttf")


def _lab_static(exporter) -> Path:
    """nbconvert 自带的 JupyterLab 样式所在目录。"""
    for base in exporter.template_paths:
        candidate = Path(base) / "static"
        if (candidate / "index.css").is_file() and (candidate / "theme-light.css").is_file():
            return candidate
    raise FileNotFoundError("找不到 nbconvert 的 lab 模板样式：请运行 uv sync 重新安装依赖")


def discover_pages(notebooks: list[Path] | None = None, docs: dict[str, tuple[str, str]] | None = None,
                   exporter=None) -> list[Page]:
    """渲染全部章节笔记本与文档页，按章节排序（发布）。"""
    exporter = exporter or _exporter()
    pages = [render_notebook(p, exporter) for p in (all_notebooks() if notebooks is None else notebooks)]
    for rel, (slug, title) in (DOC_PAGES if docs is None else docs).items():
        path = PROJECT_ROOT / rel
        if path.is_file():
            pages.append(render_markdown_doc(path, slug, title))
    return pages


def build(out: Path = SITE_DIR, notebooks: list[Path] | None = None,
          docs: dict[str, tuple[str, str]] | None = None, pdf_link: bool | None = None) -> list[Page]:
    """生成静态网站：index.html、每章一页、文档页与全书单页 course.html（发布）。"""
    out = Path(out)
    exporter = _exporter()
    pages = discover_pages(notebooks, docs, exporter)
    out.mkdir(parents=True, exist_ok=True)
    _write_assets(out, exporter)
    has_pdf = (out / PDF_NAME).is_file() if pdf_link is None else pdf_link
    for page in pages:
        inner = _rewrite_links(page, pages, out, combined=False) + _pager(pages, page)
        (out / page.filename).write_text(
            _document(f"{page.title} · {COURSE_TITLE}", inner, _nav(pages, page, has_pdf)), encoding="utf-8")
    (out / "index.html").write_text(
        _document(COURSE_TITLE, _index_body(pages, has_pdf), _nav(pages, None, has_pdf)), encoding="utf-8")
    (out / "course.html").write_text(_combined(pages, out), encoding="utf-8")
    return pages


def _combined(pages: list[Page], out: Path) -> str:
    """全书单页（打印成 PDF 用）：封面、目录、各章依次排列，参考答案展开。"""
    chapters = [p for p in pages if p.is_chapter]
    toc = "".join(f'<li><a href="#{p.slug}">{html.escape(p.title)}</a></li>' for p in chapters)
    cover = (f'<section class="llmu-cover"><h1>{html.escape(COURSE_TITLE)}</h1>'
             f'<p>{html.escape(COURSE_BLURB)}</p></section>'
             f'<section class="llmu-chapter jp-RenderedHTMLCommon"><h2>目录</h2><ol>{toc}</ol></section>')
    body = "".join(
        f'<section class="llmu-chapter" id="{p.slug}">'
        + _rewrite_links(p, pages, out, combined=True).replace('<details class="llmu-answer">',
                                                                '<details class="llmu-answer" open>')
        + "</section>" for p in chapters)
    return _document(COURSE_TITLE, cover + body)


# ---------------------------------------------------------------- PDF

def chromium_executable() -> str | None:
    """找本机的 Chromium（Debian 的 /usr/bin/chromium 等）；找不到返回 None（发布）。"""
    env = os.environ.get("LLM_UNIVERSE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def build_pdf(out: Path = SITE_DIR, timeout_s: float = 180) -> Path:
    """用无头 Chromium 把全书单页打印成 PDF（内嵌中文字体，书签按标题生成）（发布）。"""
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    out = Path(out)
    source = out / "course.html"
    if not source.is_file():
        raise FileNotFoundError(f"没有 {source}：先运行 uv run python -m helpers.site build")
    target = out / PDF_NAME
    external: list[str] = []

    def only_local(route) -> None:  # 不允许任何外部请求：网站必须自给自足
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium_executable(), args=args, timeout=timeout_s * 1000)
        except PlaywrightError as exc:
            raise ConfigError("无法启动 Chromium：Debian/Ubuntu 上运行 apt-get install -y chromium，"
                              "其他系统运行 uv run playwright install chromium，"
                              "或用 LLM_UNIVERSE_CHROMIUM 指定浏览器路径") from exc
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            page.route("**/*", only_local)
            page.goto(source.as_uri(), wait_until="load")
            page.evaluate("document.fonts.ready.then(() => document.fonts.size)")
            page.pdf(path=str(target), format="A4", print_background=True, outline=True, tagged=True,
                     margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
                     display_header_footer=True, header_template="<span></span>",
                     footer_template='<div style="font-size:8px;width:100%;text-align:center;color:#888">'
                                     '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
        finally:
            browser.close()
    if external:
        raise RuntimeError("网页请求了外部资源（网站应当自给自足）：" + ", ".join(external[:5]))
    return target


# ---------------------------------------------------------------- 链接检查

@dataclass(frozen=True)
class Link:
    """Markdown 中的一个链接：出处、目标与问题（为空表示可达）（发布）。"""

    where: str
    target: str
    problem: str = ""

    @property
    def external(self) -> bool:
        return urlsplit(self.target).scheme in _EXTERNAL_SCHEMES


def github_slug(text: str) -> str:
    """GitHub 给 Markdown 标题生成锚点的规则：小写、去标点、空格变连字符（发布）。"""
    text = re.sub(r"[^\w\- ]", "", _TAG_RE.sub("", text).strip().lower())
    return text.replace(" ", "-")


def _jupyter_slug(text: str) -> str:
    """JupyterLab / nbconvert 的标题锚点：空格变连字符，其余保留。"""
    return _TAG_RE.sub("", text).strip().replace(" ", "-")


def _markdown_units(path: Path) -> list[tuple[str, str]]:
    """文件中的 Markdown 文本：.md 整篇，.ipynb 每个 Markdown 单元一段（出处带单元号）。"""
    rel = _display(path)
    if path.suffix == ".ipynb":
        import nbformat

        nb = nbformat.read(path, as_version=4)
        return [(f"{rel} 单元 {i}", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    return [(rel, path.read_text(encoding="utf-8"))]


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _md():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def _targets_and_headings(text: str) -> tuple[list[str], list[str]]:
    """一段 Markdown 中的链接/图片目标与标题文字（代码块里的不算）。"""
    targets, headings = [], []
    tokens = _md().parse(text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            headings.append(tokens[i + 1].content)
        if tok.type in ("html_block",):
            targets += re.findall(r'\b(?:href|src)="([^"]+)"', tok.content)
        for child in tok.children or []:
            if child.type == "link_open":  # markdown-it 会把中文百分号编码，这里还原
                targets.append(unquote(str(child.attrGet("href"))))
            elif child.type == "image":
                targets.append(unquote(str(child.attrGet("src"))))
            elif child.type == "html_inline":
                targets += re.findall(r'\b(?:href|src)="([^"]+)"', child.content)
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
            slugs |= {f"cell-id={c.get('id')}" for c in __import__("nbformat").read(path, as_version=4).cells}
        cache[path] = slugs
    return cache[path]


def link_sources() -> list[Path]:
    """要检查链接的文件：README、docs/ 下的文档与全部笔记本（发布）。"""
    files = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md")), *all_notebooks()]
    return [p for p in files if p.is_file()]


def check_links(files: list[Path] | None = None, root: Path = PROJECT_ROOT) -> list[Link]:
    """收集链接并检查内部链接（相对路径与标题锚点）；外部链接只列出、从不访问（发布）。"""
    cache: dict[Path, set[str]] = {}
    links: list[Link] = []
    for path in link_sources() if files is None else files:
        for where, text in _markdown_units(path):
            for target in _targets_and_headings(text)[0]:
                links.append(Link(where, target, _problem(path, target, cache, root.resolve())))
    return links


def _problem(source: Path, target: str, cache: dict[Path, set[str]], root: Path) -> str:
    parts = urlsplit(target)
    if parts.scheme in _EXTERNAL_SCHEMES or target.startswith(("//", "attachment:")):
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


# ---------------------------------------------------------------- 练习一览（教师指南）

TEACHING_DOC = PROJECT_ROOT / "docs" / "teaching.md"
EXERCISES_BEGIN = "<!-- 练习一览：由 uv run python -m helpers.site exercises --write 生成，勿手改 -->"
EXERCISES_END = "<!-- 练习一览结束 -->"
_EX_HEADING_RE = re.compile(r"^#{3,4}\s*练习\s*(\d+)\s*[：:.、]?\s*(.*)$")
_EX_BOLD_RE = re.compile(r"^\*\*练习\s*(\d+)\s*(?:[（(](.*?)[)）])?\s*\*\*\s*[：:]?[\s\u3000]*(.*)$")


@dataclass(frozen=True)
class Exercise:
    """一道练习：所在章、编号、题目与自检单元里的断言数（发布）。"""

    chapter: str
    number: int
    title: str
    asserts: int


def _short_title(text: str) -> str:
    """没有小标题的练习取题干第一句（去掉 Markdown 标记）。"""
    text = re.sub(r"[*`]", "", text).strip()
    first = re.split(r"[：。；:]", text, maxsplit=1)[0].strip()
    return first if len(first) <= 40 else first[:39] + "…"


def exercises(path: Path) -> list[Exercise]:
    """读出一章“## 练习”之后的每道练习与它的自检单元（发布）。"""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                  and any(ln.strip() == "## 练习" for ln in c.source.splitlines())), None)
    if start is None:
        return []
    titles: dict[int, str] = {}
    checks: dict[int, int] = {}
    for cell in nb.cells[start:]:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = _EX_HEADING_RE.match(line.strip())
                if m:
                    titles.setdefault(int(m[1]), _short_title(m[2]))
                    continue
                m = _EX_BOLD_RE.match(line.strip())
                if m:
                    titles.setdefault(int(m[1]), _short_title(m[2] or m[3]))
        elif cell.cell_type == "code" and "参考答案" not in cell.metadata.get("tags", []):
            for num in map(int, re.findall(r"练习\s*(\d+)\s*通过", cell.source)):
                checks[num] = len(re.findall(r"^\s*assert\b", cell.source, re.M))
    return [Exercise(path.stem, n, titles[n], checks.get(n, 0)) for n in sorted(titles)]


def exercises_markdown(notebooks: list[Path] | None = None) -> str:
    """全部章节的练习一览（Markdown 表格），写进教师指南（发布）。"""
    lines = ["| 章 | 练习 | 自检 |", "|---|---|---|"]
    for path in all_notebooks() if notebooks is None else notebooks:
        title = render_title(path)
        for ex in exercises(path):
            check = f"断言通过后打印“练习 {ex.number} 通过 ✓”" if ex.asserts else "（没有自检单元）"
            lines.append(f"| {title} | 练习 {ex.number}：{ex.title} | {check} |")
    return "\n".join(lines)


def render_title(path: Path) -> str:
    """笔记本第一个 Markdown 单元里的 H1 标题（发布）。"""
    import nbformat

    return _h1_and_subtitle(nbformat.read(path, as_version=4))[0] or path.stem


def update_teaching_doc(doc: Path = TEACHING_DOC) -> bool:
    """把练习一览写进教师指南的标记之间；内容有变化时返回 True（发布）。"""
    text = doc.read_text(encoding="utf-8")
    head, sep, rest = text.partition(EXERCISES_BEGIN)
    _, sep2, tail = rest.partition(EXERCISES_END)
    if not (sep and sep2):
        raise ValueError(f"{doc} 里缺少练习一览的标记 {EXERCISES_BEGIN} … {EXERCISES_END}")
    new = f"{head}{EXERCISES_BEGIN}\n{exercises_markdown()}\n{EXERCISES_END}{tail}"
    if new != text:
        doc.write_text(new, encoding="utf-8")
    return new != text


# ---------------------------------------------------------------- 命令行

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.site", description="课程网站、PDF 与链接检查")
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
            print(f"{_display(TEACHING_DOC)}：" + ("已更新练习一览" if changed else "练习一览已是最新"))
        else:
            print(exercises_markdown())
        return 0

    if args.command == "links":
        links = check_links()
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
