"""办公、网页与字幕文件（.docx .pptx .xlsx .csv .html .srt .vtt）逐段加载，元数据记下能定位原文的位置（第 8 章）。

每种格式交给一个维护良好的库（python-docx、python-pptx、openpyxl、csv、BeautifulSoup + lxml、webvtt-py），
这里只做两件库不做的事：按"能定位到原文的单位"（标题小节、幻灯片、表格行、字幕时间段）切成 Document，
以及把损坏、加密、没有正文的文件翻译成一句中文 LoadError。文本格式的解码（UTF-8/GBK）由 load.load_file 先做好。
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from langchain_core.documents import Document

from helpers.errors import LoadError

OFFICE_SUFFIXES = (".docx", ".pptx", ".xlsx")
TEXT_BASED_SUFFIXES = (".csv", ".html", ".htm", ".srt", ".vtt")  # 先解码成文字再交给 load_structured
STRUCTURED_SUFFIXES = OFFICE_SUFFIXES + TEXT_BASED_SUFFIXES
HEADING_LEVELS = 3  # Word 的"标题 1/2/3"开新小节；更深的标题算正文
HTML_HEADINGS = ("h1", "h2", "h3", "h4")
SUBTITLE_PASSAGE_CHARS = 200  # 相邻字幕条合并成不超过约 200 字的段落（一条字幕不拆开）
HEADING_SEP = " > "
DOC_TITLE_KEY = "doc_title"  # 元数据：整份文件的标题（Office 文档属性里的标题、网页 <title>，没有就用文件名）
CSV_DELIMITERS = (",", "\t", ";", "|")

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # OLE 复合文件：加密的 Office 文件与旧版 .doc/.ppt/.xls
_HTML_DROP = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template",
              "iframe", "svg", "button", "select")
_HTML_BLOCKS = ("p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "br", "tr",
                "table", "blockquote", "pre", "figure", "figcaption", "address", "hr") + HTML_HEADINGS + (
                "h5", "h6")
_MARK = "\x00"  # 标题标记：用 get_text 前把 <h1>…<h4> 换成"\x00级别\x00标题"这样的一行
_ASS_TAG = re.compile(r"\{\\[^}]*\}")  # SRT 里常见的 {\an8} 一类样式标签
_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)


def _meta(source: str, **extra: Any) -> dict[str, Any]:
    """每个 Document 都有 source 与 file；其余定位信息里的空值不写（Chroma 不收 None）。"""
    meta: dict[str, Any] = {"source": source, "file": source}
    meta.update({k: v for k, v in extra.items() if v is not None and v != ""})
    return meta


def _doc_title(source: str, title: object = None) -> str:
    """整份文件的标题：文档属性或 <title> 里写了就用它，否则用不带扩展名的文件名。"""
    text = re.sub(r"\s+", " ", str(title or "")).strip()
    return text or PurePosixPath(source).stem


def _cell_text(value: object) -> str:
    """单元格的值转成文字：整数样的浮点去掉 .0，日期只留日期，空白合并。"""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        value = value.date()
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return re.sub(r"\s+", " ", str(value)).strip()


def row_text(header: Sequence[str], values: Sequence[object]) -> str:
    """把表格的一行写成"表头1：值1；表头2：值2"（空单元格跳过，缺表头的列叫"第 N 列"）（第 8 章）。"""
    parts = []
    for i, value in enumerate(values):
        text = _cell_text(value)
        if text:
            name = header[i] if i < len(header) and header[i] else f"第{i + 1}列"
            parts.append(f"{name}：{text}")
    return "；".join(parts)


def _table_lines(rows: list[list[str]]) -> list[str]:
    """一张表（首行是表头）写成逐行的"列名：值"；只有一行时直接用"；"连起来。"""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) <= 1:
        return ["；".join(c for c in r if c) for r in rows]
    return [line for r in rows[1:] if (line := row_text(rows[0], r))]


# ---- Office：打开前先认出加密与损坏 ----------------------------------------------------------
def _open_office(path: Path, opener: Callable[[Any], Any]) -> Any:
    """用各自的库打开 Office 文件；加密、旧格式、损坏都变成一句中文 LoadError。"""
    ext = path.suffix.lower()
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(_OLE_MAGIC):
        raise LoadError("文件已加密（或是旧版 .doc/.ppt/.xls 格式），无法读取：请用 Office/WPS 打开后"
                        "另存为不加密的 .docx/.pptx/.xlsx 再入库")
    if not zipfile.is_zipfile(path):
        raise LoadError(f"不是有效的 {ext} 文件（文件损坏或只是改了扩展名）：请用 Office/WPS 打开后重新另存为 {ext}")
    try:
        return opener(path)
    except Exception as exc:  # 各库对缺部件、坏 XML 抛多种异常
        raise LoadError(f"{ext} 文件损坏或内容不是 {ext}，无法打开（{type(exc).__name__}）："
                        f"请用 Office/WPS 打开后重新另存为 {ext}") from None


def _docx_blocks(document: Any) -> Iterator[tuple[int, str]]:
    """Word 正文按顺序给出 (标题级别, 文字)：级别 0 是正文段落或表格的一行。"""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = []
            for row in block.rows:
                cells, seen = [], set()
                for cell in row.cells:  # 合并单元格会重复出现：按底层元素去重
                    if id(cell._tc) not in seen:
                        seen.add(id(cell._tc))
                        cells.append(cell.text.strip())
                rows.append(cells)
            for line in _table_lines(rows):
                yield 0, line
            continue
        text = block.text.strip()
        if text:
            yield _docx_heading_level(block), text


def _docx_heading_level(paragraph: Any) -> int:
    """段落的标题级别（1–3）；正文与更深的标题返回 0。样式名或它所基于的样式是"Heading N"/"标题 N"都算。"""
    style = paragraph.style
    while style is not None:
        m = _HEADING_STYLE.match(style.name or "")
        if m:
            level = int(m.group(1))
            return level if 1 <= level <= HEADING_LEVELS else 0
        style = style.base_style
    return 0


def _sections(blocks: Iterable[tuple[int, str]]) -> Iterator[tuple[str, list[str]]]:
    """按标题把 (级别, 文字) 流分成小节，给出 (标题路径, 正文行)；第一个标题前的文字是路径为空的小节。"""
    path: list[str] = []
    body: list[str] = []
    for level, text in blocks:
        if level:
            if body:
                yield HEADING_SEP.join(path), body
            path = path[: level - 1] + [text]
            body = []
        else:
            body.append(text)
    if body:
        yield HEADING_SEP.join(path), body


def _section_docs(sections: Iterable[tuple[str, list[str]]], source: str, **extra: Any) -> list[Document]:
    """每个小节一个 Document：开头一行写标题路径，元数据 heading 就是这条路径。"""
    docs = []
    for heading, body in sections:
        text = "\n".join(([heading] if heading else []) + body)
        docs.append(Document(page_content=text, metadata=_meta(source, heading=heading, **extra)))
    return docs


def _load_docx(path: Path, source: str) -> list[Document]:
    """Word：按"标题 1/2/3"分节，每节一个 Document，heading 是"一级 > 二级"路径，表格逐行写成"列名：值"（第 8 章）。"""
    import docx

    document = _open_office(path, docx.Document)
    title = _doc_title(source, document.core_properties.title)
    docs = _section_docs(_sections(_docx_blocks(document)), source, doc_title=title)
    if not docs:
        raise LoadError("Word 文档里没有文字（可能只有图片）：请确认内容后再入库")
    return docs


def _shape_lines(shapes: Iterable[Any], skip: Any = None) -> Iterator[str]:
    """幻灯片里各形状的文字（组合形状逐层展开），表格逐行写成"列名：值"。"""
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if skip is not None and shape.shape_id == skip:
            continue
        if isinstance(shape, GroupShape):
            yield from _shape_lines(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text.strip() for cell in row.cells] for row in shape.table.rows]
            yield from _table_lines(rows)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = shape.text_frame.text.strip()
            if text:
                yield text


def _load_pptx(path: Path, source: str) -> list[Document]:
    """PowerPoint：每张幻灯片一个 Document（slide 从 1 开始，title 是标题），带上表格与演讲者备注（第 8 章）。"""
    import pptx

    prs = _open_office(path, pptx.Presentation)
    deck = _doc_title(source, prs.core_properties.title)
    docs = []
    for number, slide in enumerate(prs.slides, 1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        lines = ([title] if title else []) + list(_shape_lines(
            slide.shapes, title_shape.shape_id if title_shape is not None else None))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                lines.append(f"备注：{notes}")
        if lines:
            docs.append(Document(page_content="\n".join(lines),
                                 metadata=_meta(source, slide=number, title=title, doc_title=deck)))
    if not docs:
        raise LoadError("演示文稿里没有文字（可能只有图片）：请确认内容后再入库")
    return docs


def _row_docs(rows: Iterable[tuple[int, Sequence[object]]], source: str, **extra: Any) -> list[Document]:
    """(行号, 各单元格) → 每个非空数据行一个 Document；第一个非空行当表头。"""
    header: list[str] | None = None
    docs = []
    for number, values in rows:
        if not any(_cell_text(v) for v in values):
            continue
        if header is None:
            header = [_cell_text(v) for v in values]
            continue
        text = row_text(header, values)
        docs.append(Document(page_content=text, metadata=_meta(source, row=number, **extra)))
    return docs


def _load_xlsx(path: Path, source: str) -> list[Document]:
    """Excel：每个工作表的每个数据行一个 Document，写成"表头：值"，元数据 sheet 与 row（Excel 行号）（第 8 章）。"""
    import openpyxl

    wb = _open_office(path, lambda p: openpyxl.load_workbook(p, read_only=True, data_only=True))
    docs: list[Document] = []
    title = _doc_title(source, wb.properties.title)
    try:
        for ws in wb.worksheets:  # 只读模式下公式给的是 Excel 上次保存时算好的值
            docs.extend(_row_docs(enumerate(ws.iter_rows(values_only=True), 1), source, sheet=ws.title,
                                  doc_title=title))
    except Exception as exc:
        raise LoadError(f".xlsx 文件内容损坏，读取工作表失败（{type(exc).__name__}）："
                        "请用 Excel/WPS 打开后重新另存") from None
    finally:
        wb.close()
    if not docs:
        raise LoadError("工作簿里没有数据行（每个工作表都是空的或只有表头）：请确认内容后再入库")
    return docs


def _load_csv(text: str, source: str) -> list[Document]:
    """CSV：每个数据行一个 Document，写成"表头：值"；row 是该行在文件里的行号（表头是第 1 行）（第 8 章）。"""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = max(CSV_DELIMITERS, key=first.count)  # 看表头那一行：逗号、制表符、分号还是竖线最多
    reader = csv.reader(io.StringIO(text), delimiter=delimiter if first.count(delimiter) else ",")

    def numbered() -> Iterator[tuple[int, list[str]]]:
        start = 1
        for values in reader:
            yield start, values
            start = reader.line_num + 1

    try:
        docs = _row_docs(numbered(), source, doc_title=_doc_title(source))
    except csv.Error as exc:
        raise LoadError(f"CSV 第 {reader.line_num} 行格式不对（{exc}）：请检查引号是否成对") from None
    if not docs:
        raise LoadError("CSV 里没有数据行（空表或只有表头）：请确认内容后再入库")
    return docs


def _html_sections(soup: Any) -> Iterator[tuple[str, list[str]]]:
    """把清理过的网页按 h1–h4 分节：标题换成标记行，块级元素后补换行，再按行分组。"""
    from bs4 import NavigableString

    for node in soup.find_all(string=True):  # 源码里的换行缩进只是空白（<pre> 除外）
        if node.find_parent("pre") is None:
            node.replace_with(re.sub(r"\s+", " ", str(node)))
    for table in soup.find_all("table"):
        rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")]
        table.replace_with(NavigableString("\n" + "\n".join(_table_lines(rows)) + "\n"))
    for tag in soup.find_all(HTML_HEADINGS):
        level = HTML_HEADINGS.index(tag.name) + 1
        tag.replace_with(NavigableString(f"\n{_MARK}{level}{_MARK}{tag.get_text(' ', strip=True)}\n"))
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.append(NavigableString("\n"))
    blocks = []
    for line in soup.get_text().split("\n"):
        line = line.strip()
        if line.startswith(_MARK):
            _, level, text = line.split(_MARK, 2)
            if text.strip():
                blocks.append((int(level), text.strip()))
        elif line:
            blocks.append((0, line))
    return _sections(blocks)


def _load_html(text: str, source: str) -> list[Document]:
    """网页：去掉脚本、样式、导航、页眉页脚与表单，按 h1–h4 分节，元数据 heading 路径与网页 title（第 8 章）。"""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(text, "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_HTML_DROP):
        if tag.name == "header" and tag.find_parent(["article", "main"]) is not None:
            continue  # <article> 里的 <header> 是文章自己的标题，不是网站页眉
        if not tag.decomposed:
            tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    if title_tag is not None and title_tag.parent is not None:
        title_tag.decompose()
    root = soup.body or soup
    docs = _section_docs(_html_sections(root), source, title=title, doc_title=_doc_title(source, title))
    if not docs:
        raise LoadError("网页里没有正文文字（可能全是脚本、靠 JavaScript 生成内容）："
                        "请在浏览器里打开后复制正文另存为 .txt 或 .md 再入库")
    return docs


def _hms(timestamp: str) -> str:
    """字幕时间 "00:01:05.500" → "00:01:05"（去掉毫秒）。"""
    return timestamp.split(".")[0].split(",")[0]


def _load_subtitles(text: str, source: str, fmt: str = "srt") -> list[Document]:
    """SRT/WebVTT 字幕：相邻字幕条合并成约 200 字的段落（不拆开一条），元数据 time_start/time_end（第 8 章）。"""
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    how = "00:01:02,000 --> 00:01:05,000" if fmt == "srt" else "WEBVTT 开头，时间行如 00:01:02.000 --> 00:01:05.000"
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=fmt).captions
    except (MalformedFileError, MalformedCaptionError, ValueError) as exc:
        raise LoadError(f"字幕文件格式不对（{exc}）：应为 {how}") from None
    cues = [(c.start, c.end, " ".join(ln.strip() for ln in _ASS_TAG.sub("", c.text).splitlines() if ln.strip()))
            for c in captions]
    cues = [c for c in cues if c[2]]
    if not cues:
        raise LoadError(f"字幕文件里没有可识别的字幕条（时间行格式不对或全是空字幕）：时间行应为 {how}")
    groups: list[list[tuple[str, str, str]]] = []
    size = 0
    for cue in cues:
        if groups and size + len(cue[2]) <= SUBTITLE_PASSAGE_CHARS:
            groups[-1].append(cue)
            size += len(cue[2]) + 1
        else:
            groups.append([cue])
            size = len(cue[2])
    return [Document(page_content="\n".join(c[2] for c in g),
                     metadata=_meta(source, time_start=_hms(g[0][0]), time_end=_hms(g[-1][1]),
                                    doc_title=_doc_title(source)))
            for g in groups]


def load_structured(path: Path, source: str, text: str | None = None) -> list[Document]:
    """按扩展名加载办公、网页或字幕文件；csv/html/srt/vtt 传入已解码的 text（不传就按 UTF-8 读）（第 8 章）。"""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in STRUCTURED_SUFFIXES:
        raise LoadError(f"不支持的文件类型 {ext or '（无扩展名）'}：这里只处理 {' '.join(STRUCTURED_SUFFIXES)}")
    if ext == ".docx":
        return _load_docx(path, source)
    if ext == ".pptx":
        return _load_pptx(path, source)
    if ext == ".xlsx":
        return _load_xlsx(path, source)
    if text is None:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise LoadError("文件不是 UTF-8 编码：请用 load_file 加载（会自动识别 GBK），或另存为 UTF-8") from None
    if ext == ".csv":
        return _load_csv(text, source)
    if ext in (".html", ".htm"):
        return _load_html(text, source)
    return _load_subtitles(text, source, ext[1:])
