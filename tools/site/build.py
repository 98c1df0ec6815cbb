"""拼装静态网站：每章一页、文档页、首页与全书单页 course.html，连同样式与中文字体。"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter

from helpers.config import PROJECT_ROOT
from helpers.course import CJK_FONT_RANGES, cjk_font_path
from tools.notebooks import chapter_notebooks
from tools.site.pages import (
    COURSE_BLURB,
    COURSE_TITLE,
    DOC_PAGES,
    EXTERNAL_SCHEMES,
    PDF_NAME,
    SITE_DIR,
    Page,
    exporter,
    render_markdown_doc,
    render_notebook,
    sub_attrs,
)

MAX_COPY_BYTES = 5_000_000  # 被链接的仓库文件小于此大小时复制进网站
SITE_CSS_FILE = Path(__file__).with_name("site.css")

# 只用本地字体。中文字形交给 "LLMU CJK"：先找系统里的中文字体（local），没有时用随 PyMuPDF 分发、
# 复制进网站的 Droid Sans Fallback。它必须排在字体列表最前、用 unicode-range 只管中文：
# Chromium 在系统字体（如 DejaVu Sans）之后不会再回退到网页字体，中文会变成方框。
FONT_FACE_CSS = f"""@font-face {{
  font-family: "LLMU CJK"; font-display: swap; unicode-range: {CJK_FONT_RANGES};
  src: local("PingFang SC"), local("PingFangSC-Regular"), local("Microsoft YaHei"), local("Noto Sans CJK SC"),
    local("NotoSansCJKsc-Regular"), local("Source Han Sans SC"), url("cjk.ttf") format("truetype");
}}
"""


def site_css() -> str:
    """网站样式表：中文字体的 @font-face 加上 site.css。"""
    return FONT_FACE_CSS + SITE_CSS_FILE.read_text(encoding="utf-8")


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
        if not value or urlsplit(value).scheme in EXTERNAL_SCHEMES or value.startswith("//"):
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

    return sub_attrs(page.body, fix)


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
<p class="llmu-note">本网站由 <code>uv run python -m tools.site build</code> 从提交的笔记本输出生成，
构建时不执行代码、不访问网络。</p>
</div>"""


def _write_assets(out: Path, export: HTMLExporter) -> None:
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    lab_static = _lab_static(export)
    css = [(lab_static / "index.css").read_text(encoding="utf-8"),
           (lab_static / "theme-light.css").read_text(encoding="utf-8"),
           HtmlFormatter(style="default").get_style_defs(".highlight")]
    (assets / "notebook.css").write_text("\n".join(css), encoding="utf-8")
    (assets / "site.css").write_text(site_css(), encoding="utf-8")
    shutil.copyfile(cjk_font_path(), assets / "cjk.ttf")


def _lab_static(export: HTMLExporter) -> Path:
    """nbconvert 自带的 JupyterLab 样式所在目录。"""
    for base in export.template_paths:
        candidate = Path(base) / "static"
        if (candidate / "index.css").is_file() and (candidate / "theme-light.css").is_file():
            return candidate
    raise FileNotFoundError("找不到 nbconvert 的 lab 模板样式：请运行 uv sync 重新安装依赖")


def discover_pages(notebooks: list[Path] | None = None, docs: dict[str, tuple[str, str]] | None = None,
                   export: HTMLExporter | None = None) -> list[Page]:
    """渲染全部章节笔记本与文档页，按章节排序。"""
    export = export or exporter()
    pages = [render_notebook(p, export) for p in (chapter_notebooks() if notebooks is None else notebooks)]
    for rel, (slug, title) in (DOC_PAGES if docs is None else docs).items():
        path = PROJECT_ROOT / rel
        if path.is_file():
            pages.append(render_markdown_doc(path, slug, title))
    return pages


def build(out: Path = SITE_DIR, notebooks: list[Path] | None = None,
          docs: dict[str, tuple[str, str]] | None = None, pdf_link: bool | None = None) -> list[Page]:
    """生成静态网站：index.html、每章一页、文档页与全书单页 course.html。"""
    out = Path(out)
    export = exporter()
    pages = discover_pages(notebooks, docs, export)
    out.mkdir(parents=True, exist_ok=True)
    _write_assets(out, export)
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
