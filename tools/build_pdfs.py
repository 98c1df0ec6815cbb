"""把 data/sources/ 下的 Markdown 源文本排版为 data/knowledge_db/ 下的 PDF（可重复生成）。

用法（仓库根目录）：uv run python -m tools.build_pdfs（markdown-it 解析源文本，输出可逐字节复现）
"""
import html
import io
from pathlib import Path

import pymupdf
from markdown_it import MarkdownIt

# 以脚本自身位置解析路径，与当前工作目录无关
ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = ROOT / "data" / "sources"
OUT_DIR = ROOT / "data" / "knowledge_db"

# 要生成的文档：源文件、输出文件、书名、封面副标题
BOOKS = [
    ("llm_app_handbook.md", "llm_app_handbook.pdf", "大模型应用开发实践手册",
     "从需求分析到上线迭代的工程方法"),
    ("case_studies.md", "case_studies.pdf", "大模型应用案例集",
     "客服、法律、医疗、代码与教育五个领域的实践"),
]

MD = MarkdownIt("commonmark").enable("table")  # 源文本只用到标题、段落和管道表格
PAGE = pymupdf.paper_rect("a4")  # A4 页面 595 x 842 pt
BODY = pymupdf.Rect(62, 74, PAGE.width - 62, PAGE.height - 66)  # 正文区域
HEADER = pymupdf.Rect(62, 30, PAGE.width - 62, 64)  # 页眉区域
FOOTER = pymupdf.Rect(62, PAGE.height - 48, PAGE.width - 62, PAGE.height - 14)  # 页脚区域
FIXED_DATE = "D:20240601000000+08'00'"  # 固定的元数据日期，保证可复现

# 内置 CJK 字体（Droid Sans Fallback），放进 Archive 供 Story 的 @font-face 引用
FONT_BUFFER = pymupdf.Font("cjk").buffer
ARCHIVE = pymupdf.Archive()
ARCHIVE.add(FONT_BUFFER, "cjk.ttf")

# 排版样式：所有文字使用嵌入的 CJK 字体
CSS = """
@font-face { font-family: cjk; src: url(cjk.ttf); }
* { font-family: cjk; }
body { margin: 0; font-size: 11pt; line-height: 1.7; color: #111; }
h1 { font-weight: bold; font-size: 19pt; color: #0b3d6e; margin: 0 0 14pt 0; padding-bottom: 5pt;
     border-bottom: 1.2pt solid #0b3d6e; }
h2 { font-weight: bold; font-size: 13.5pt; color: #0b3d6e; margin: 14pt 0 6pt 0; }
p { margin: 0 0 7pt 0; text-align: justify; text-indent: 2em; }
table { border-collapse: collapse; width: 100%; margin: 6pt 0 12pt 0; }
th, td { border: 0.6pt solid #444; padding: 3pt 4pt; font-size: 9.5pt; line-height: 1.4;
         text-align: left; vertical-align: top; }
th { color: #0b3d6e; font-weight: bold; }
.cover-title { font-size: 30pt; color: #0b3d6e; text-align: center; margin-top: 190pt; text-indent: 0; }
.cover-sub { font-size: 15pt; color: #333; text-align: center; margin-top: 20pt; text-indent: 0; }
.cover-note { font-size: 11pt; color: #555; text-align: center; margin-top: 240pt; text-indent: 0; }
.run { font-size: 9pt; color: #555; text-indent: 0; margin: 0; padding-bottom: 3pt;
       border-bottom: 0.6pt solid #888; }
.foot { font-size: 9pt; color: #555; text-align: center; text-indent: 0; margin: 0; }
"""


def md_to_chapters(text):
    """用 markdown-it 解析 Markdown，按一级标题拆成 [(标题, 该章正文的 HTML)]（二级标题、段落和表格）。"""
    tokens = MD.parse(text)
    starts = [i for i, tok in enumerate(tokens) if tok.type == "heading_open" and tok.tag == "h1"]
    chapters = []
    for n, i in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        body = MD.renderer.render(tokens[i:end], MD.options, {})
        chapters.append((tokens[i + 1].content, "<body>" + body + "</body>"))
    return chapters


def draw_html(device, rect, body_html):
    """在当前页的指定区域内绘制一小段 HTML（用于页眉、页脚和封面）。"""
    story = pymupdf.Story(body_html, user_css=CSS, archive=ARCHIVE)
    story.place(rect)
    story.draw(device)


def build(src_name, out_name, book_title, subtitle):
    """生成一本 PDF，返回 (页数, 各章起始页)。"""
    chapters = md_to_chapters((SRC_DIR / src_name).read_text(encoding="utf-8"))
    buf = io.BytesIO()
    writer = pymupdf.DocumentWriter(buf)
    # 封面页：不加页眉页脚
    dev = writer.begin_page(PAGE)
    draw_html(dev, BODY, f'<p class="cover-title">{book_title}</p>'
                         f'<p class="cover-sub">{subtitle}</p>'
                         f'<p class="cover-note">LLM Universe 示例知识库 · 第 1 版</p>')
    writer.end_page()
    page_no, toc = 1, []
    # 每章从新页开始，页眉写书名与章名，页脚写页码
    for title, body_html in chapters:
        toc.append([1, title, page_no + 1])
        story = pymupdf.Story(body_html, user_css=CSS, archive=ARCHIVE)
        more = True
        while more:
            dev = writer.begin_page(PAGE)
            more, _ = story.place(BODY)
            story.draw(dev)
            draw_html(dev, HEADER, f'<p class="run">{book_title} · {html.escape(title)}</p>')
            draw_html(dev, FOOTER, f'<p class="foot">— {page_no} —</p>')
            writer.end_page()
            page_no += 1
    writer.close()
    # 重新打开：写入固定元数据和书签，精简字体后以可复现方式保存
    doc = pymupdf.open("pdf", buf.getvalue())
    doc.set_metadata({"title": book_title, "author": "LLM Universe", "subject": subtitle,
                      "creator": "tools/build_pdfs.py", "producer": "PyMuPDF",
                      "creationDate": FIXED_DATE, "modDate": FIXED_DATE})
    doc.set_toc(toc)
    doc.subset_fonts()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    doc.save(OUT_DIR / out_name, garbage=4, deflate=True, no_new_id=True, reproducible=True)
    n = doc.page_count
    doc.close()
    return n, toc


def main():
    # 逐本生成并打印页数
    for src_name, out_name, title, subtitle in BOOKS:
        n, toc = build(src_name, out_name, title, subtitle)
        print(f"{out_name}: {n} 页, {len(toc)} 章")


if __name__ == "__main__":
    main()
