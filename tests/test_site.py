"""课程网站与 PDF：用提交的笔记本输出构建（不执行），每章一页、中文、图、导航与离线自给自足。"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.support.browser import browser_or_skip
from tools.notebooks import chapter_notebooks
from tools.site.build import build
from tools.site.exercises import (
    EXERCISES_BEGIN,
    EXERCISES_END,
    LESSONS_BEGIN,
    LESSONS_END,
    TEACHING_DOC,
    Lesson,
    exercises,
    exercises_markdown,
    lessons_markdown,
)
from tools.site.pages import COURSE_TITLE, PDF_NAME, Page
from tools.site.pdf import build_pdf

# 1×1 的 PNG，代替真实的图
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")).decode()


@pytest.fixture
def chromium(monkeypatch) -> str:
    """与浏览器测试同一条找浏览器的规则；找到的路径也交给 PDF 打印（LLM_UNIVERSE_CHROMIUM）。"""
    exe = browser_or_skip()
    monkeypatch.setenv("LLM_UNIVERSE_CHROMIUM", exe)
    return exe


def _has_plots(path: Path) -> bool:
    """笔记本提交的输出里是否有图（png/jpeg/svg）。"""
    kinds = ("image/png", "image/jpeg", "image/svg+xml")
    nb = nbformat.read(path, as_version=4)
    return any(k in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               for k in kinds)


def _demo_notebooks(root: Path) -> list[Path]:
    """两个小笔记本：带图、参考答案、章内锚点与跨章链接。"""
    paths = []
    exercise_titles = {8: "### 练习 1：写点什么", 9: "**练习 1（链）**：写一条链。"}
    for n, name in ((8, "C8_demo"), (9, "C9_more")):
        nb = new_notebook()
        plot = new_code_cell("link = '<a href=\"../C9_more/C9_more.ipynb\">'\nplt.show()", execution_count=1)
        plot.outputs = [new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
        answer = new_code_cell("# 参考答案（先自己写，再展开对照）\nx = 1",
                               metadata={"jupyter": {"source_hidden": True}, "tags": ["参考答案"]})
        nb.cells = [
            new_markdown_cell(f"# 第 {n} 章 演示章节\n\n一句话介绍本章。\n\n学完本章你将能够：\n- 看懂中文"),
            new_markdown_cell("## 1. 画图\n\n见 [小结](#小结)，也见 [另一章](../C9_more/C9_more.ipynb#练习)。"
                              "公式 $\\frac{a}{b}$ 与\n\n$$\\sqrt{x^2}$$"),
            plot,
            new_markdown_cell(f"## 小结\n\n- 中文要显示出来\n\n## 练习\n\n{exercise_titles[n]}"),
            answer,
            new_code_cell("def verify():\n    assert x == 1\n    assert x > 0\n\n\ncheck_exercise(1, verify, x)",
                          metadata={"tags": ["自检"]}),
        ]
        path = root / "notebooks" / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> tuple[Path, list[Page]]:
    root = tmp_path_factory.mktemp("demo")
    out = root / "site"
    return out, build(out, notebooks=_demo_notebooks(root), docs={})


@pytest.fixture(scope="module")
def course_site(tmp_path_factory) -> tuple[Path, list[Page]]:
    out = tmp_path_factory.mktemp("site")
    return out, build(out)


def _h1(page_html: str) -> str:
    m = re.search(r"<h1[^>]*>(.*?)<a class=\"anchor-link\"", page_html, re.S)
    return m[1].strip() if m else ""


@pytest.mark.slow  # 构建网站
def test_every_chapter_has_a_page_with_its_title_and_plots(course_site):
    out, pages = course_site
    notebooks = chapter_notebooks()
    assert [p.slug for p in pages if p.is_chapter] == [nb.stem for nb in notebooks]
    plotted = {nb.stem for nb in notebooks if _has_plots(nb)}
    assert plotted, "提交的笔记本里一张图也没有：输出被清掉了？"
    index = (out / "index.html").read_text(encoding="utf-8")
    for nb_path in notebooks:
        text = (out / f"{nb_path.stem}.html").read_text(encoding="utf-8")
        title = _h1(text)
        assert title.startswith("第 "), f"{nb_path.name} 的页面没有 '# 第 N 章' 标题"
        has_image = '<img' in text and 'src="data:image/' in text
        assert has_image == (nb_path.stem in plotted), f"{nb_path.name}：笔记本里有图 ⇔ 页面里有图"
        assert f'href="{nb_path.stem}.html"' in index


@pytest.mark.slow  # 构建网站
def test_pages_need_nothing_from_the_internet(course_site):
    out, _ = course_site
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text), page.name
        assert "mathjax" not in text.lower() and "require.js" not in text.lower(), page.name
    css = "".join((out / "assets" / name).read_text(encoding="utf-8") for name in ("notebook.css", "site.css"))
    assert not re.search(r"url\(['\"]?(https?:)?//", css) and "@import" not in css
    assert (out / "assets" / "cjk.ttf").stat().st_size > 1_000_000  # 中文字体随网站分发


def _attrs(page: Path, name: str) -> list[str]:
    """页面里真正标签上的属性值（代码块里转义过的 href="…" 文字不算）。"""
    tags = re.findall(r"<[a-zA-Z][^<>]*>", page.read_text(encoding="utf-8"))
    return [v for tag in tags for v in re.findall(rf'\s{name}="([^"]+)"', tag)]


@pytest.mark.slow  # 构建网站
def test_links_inside_the_site_resolve(course_site):
    out, _ = course_site
    ids = {p.name: set(_attrs(p, "id")) for p in out.glob("*.html")}
    for page in out.glob("*.html"):
        for href in _attrs(page, "href"):
            if re.match(r"[a-z]+:", href) or href == PDF_NAME:
                continue
            path, _, frag = href.partition("#")
            target = path or page.name
            assert (out / target).exists(), f"{page.name} → {href}"
            if frag and target.endswith(".html"):
                assert frag in ids[target], f"{page.name} → {href}：锚点不存在"


@pytest.mark.slow  # 构建网站
def test_demo_site_renders_answers_folded_and_links_rewritten(demo_site):
    out, pages = demo_site
    assert [p.title for p in pages] == ["第 8 章 演示章节", "第 9 章 演示章节"]
    assert pages[0].subtitle == "一句话介绍本章。"
    assert [h for _, h in pages[0].headings] == ["1. 画图", "小结", "练习"]
    text = (out / "C8_demo.html").read_text(encoding="utf-8")
    assert '<details class="llmu-answer"><summary>参考答案' in text
    assert text.count("<math") == 2 and "<mfrac>" in text and "$" not in text  # 公式在构建时转成 MathML
    assert 'href="#小结"' in text and 'id="小结"' in text
    assert 'href="C9_more.html#练习"' in text  # 笔记本之间的链接指向网页
    assert "C9_more/C9_more.ipynb" in text  # 代码里的 href 文字原样保留，不被改写
    assert 'href="C9_more.html">第 9 章 演示章节 →' in text  # 下一章
    combined = (out / "course.html").read_text(encoding="utf-8")
    assert 'href="#C9_more--练习"' in combined and 'id="C9_more--练习"' in combined
    assert '<details class="llmu-answer" open>' in combined  # PDF 里参考答案展开


@pytest.mark.slow  # 构建网站
def test_exercises_are_read_from_the_notebooks(demo_site):
    _, pages = demo_site
    found = [exercises(p.source) for p in pages]
    assert [(e.number, e.title, e.asserts) for e in found[0]] == [(1, "写点什么", 2)]
    assert [(e.number, e.title, e.asserts) for e in found[1]] == [(1, "链", 2)]


def test_teaching_guide_lists_every_exercise():
    text = TEACHING_DOC.read_text(encoding="utf-8")
    block = text.split(EXERCISES_BEGIN)[1].split(EXERCISES_END)[0].strip()
    assert block == exercises_markdown(), "练习一览过期：运行 uv run python -m tools.site exercises --write"


def test_teaching_guide_lesson_table_matches_the_notebooks():
    text = TEACHING_DOC.read_text(encoding="utf-8")
    block = text.split(LESSONS_BEGIN)[1].split(LESSONS_END)[0].strip()
    assert block == lessons_markdown(), "课时表过期：运行 uv run python -m tools.site exercises --write"


def test_lesson_estimate_rounds_up_to_whole_lessons():
    row = Lesson("C9_demo", prose_chars=3000, code_cells=20, exercises=3)  # 10 + 20 + 36 分钟
    assert (row.minutes, row.lessons) == (66, 2)
    assert Lesson("C9_demo", 0, 45, 0).lessons == 1


@pytest.mark.slow  # 构建网站
def test_page_renders_chinese_and_navigates_offline(demo_site, chromium):
    from playwright.sync_api import sync_playwright

    out, _ = demo_site
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "index.html").as_uri(), wait_until="load")
            page.click("nav.llmu-nav >> text=第 8 章 演示章节")
            page.wait_for_url("**/C8_demo.html")
            assert page.locator("h1").first.inner_text().startswith("第 8 章 演示章节")
            assert page.evaluate("document.fonts.ready.then(() => [...document.fonts].some("
                                 "f => f.family === 'LLMU CJK' && f.status === 'loaded'))")
            img = page.locator(".jp-OutputArea-output img").first
            assert img.evaluate("i => i.complete && i.naturalWidth > 0")
        finally:
            browser.close()
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests


@pytest.mark.slow  # 构建网站、打印 PDF
def test_pdf_embeds_the_chinese_font(demo_site, chromium):
    import pymupdf

    out, _ = demo_site
    pdf = build_pdf(out, timeout_s=60)
    doc = pymupdf.open(pdf)
    text = "".join(page.get_text() for page in doc)
    assert "第 8 章 演示章节" in text and "中文要显示出来" in text
    fonts = {f[3]: f[0] for page in doc for f in page.get_fonts()}
    embedded = [name for name, xref in fonts.items() if doc.extract_font(xref)[3]]
    assert embedded and len(embedded) == len([n for n in fonts if n]), fonts
    assert [t[1] for t in doc.get_toc()][:2] == [COURSE_TITLE, "目录"]
