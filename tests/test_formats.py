"""办公、网页与字幕文件（第 8 章）：每种格式读出能定位原文的元数据，坏文件给一句中文，整个文件夹照常入库。"""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from pptx.util import Inches

from helpers.app.validation import sanitize_filename
from helpers.knowledge import SUPPORTED, IngestStatus, KnowledgeBase, LoadError, load_directory, load_file
from helpers.knowledge.formats import STRUCTURED_SUFFIXES, load_structured, row_text


def make_docx(path):
    doc = docx.Document()
    doc.add_paragraph("青溪市图书馆读者须知。")
    doc.add_heading("借阅规则", 1)
    doc.add_paragraph("成人读者证可借 10 册。")
    doc.add_heading("少儿借阅", 2)
    doc.add_paragraph("少儿读者证可借 5 册。")
    table = doc.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "类型", (0, 1): "期限", (1, 0): "绘本", (1, 1): "21 天"}.items():
        table.cell(r, c).text = text
    doc.add_heading("逾期", 1)
    doc.add_paragraph("逾期每天每册 0.1 元。")
    doc.save(path)
    return path


def make_pptx(path):
    prs = pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "开放时间"
    slide.placeholders[1].text = "周一闭馆\n周二至周日 9:00–21:00"
    slide.notes_slide.notes_text_frame.text = "讲到春节安排"
    blank = prs.slides.add_slide(prs.slide_layouts[6])
    table = blank.shapes.add_table(2, 2, Inches(1), Inches(1), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "考核", (0, 1): "分值", (1, 0): "笔试", (1, 1): "60"}.items():
        table.cell(r, c).text = text
    prs.save(path)
    return path


def make_xlsx(path, *, data=True):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "新书"
    ws.append(["书名", "作者", "可借册数"])
    if data:
        ws.append(["边城", "沈从文", 3])
        ws.append([])
        ws.append(["围城", None, 2.0])
    wb.create_sheet("空表")
    wb.save(path)
    return path


def test_docx_one_document_per_heading_section(tmp_path):
    docs = load_file(make_docx(tmp_path / "规则.docx"), tmp_path)
    assert [d.metadata.get("heading") for d in docs] == [None, "借阅规则", "借阅规则 > 少儿借阅", "逾期"]
    assert docs[0].page_content == "青溪市图书馆读者须知。"  # 第一个标题前的文字单独一节
    assert "少儿读者证可借 5 册" in docs[2].page_content and "类型：绘本；期限：21 天" in docs[2].page_content
    assert all(d.metadata["source"] == d.metadata["file"] == "规则.docx" for d in docs)


def test_pptx_one_document_per_slide_with_notes_and_tables(tmp_path):
    docs = load_file(make_pptx(tmp_path / "培训.pptx"), tmp_path)
    assert [d.metadata["slide"] for d in docs] == [1, 2]
    assert docs[0].metadata["title"] == "开放时间" and "周一闭馆" in docs[0].page_content
    assert "备注：讲到春节安排" in docs[0].page_content
    assert docs[1].page_content == "考核：笔试；分值：60" and "title" not in docs[1].metadata


def test_xlsx_rows_with_header_names_sheet_and_excel_row(tmp_path):
    docs = load_file(make_xlsx(tmp_path / "目录.xlsx"), tmp_path)
    assert [(d.metadata["sheet"], d.metadata["row"]) for d in docs] == [("新书", 2), ("新书", 4)]
    assert docs[0].page_content == "书名：边城；作者：沈从文；可借册数：3"
    assert docs[1].page_content == "书名：围城；可借册数：2"  # 空单元格跳过，2.0 写成 2


def test_xlsx_formulas_give_cached_values(tmp_path):
    path = make_xlsx(tmp_path / "f.xlsx")
    with zipfile.ZipFile(path) as z:  # 手写一个带缓存值的公式：openpyxl 写文件时不算公式
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = parts[sheet].replace(b'<c r="C2" t="n"><v>3</v></c>', b'<c r="C2"><f>1+2</f><v>3</v></c>')
    assert b"<f>1+2</f>" in parts[sheet]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    assert load_file(path, tmp_path)[0].page_content.endswith("可借册数：3")


def test_csv_rows_numbered_like_the_file_gbk_too(tmp_path):
    text = '问题,回答\n能带水吗,"可以，但要有盖"\n\n办证要钱吗,免费\n'
    (tmp_path / "问答.csv").write_bytes(text.encode("gbk"))
    docs = load_file(tmp_path / "问答.csv", tmp_path)
    assert [d.metadata["row"] for d in docs] == [2, 4]
    assert docs[1].page_content == "问题：办证要钱吗；回答：免费"
    (tmp_path / "tab.csv").write_text("区域\t座位\n三楼\t120\n", encoding="utf-8")
    assert load_file(tmp_path / "tab.csv", tmp_path)[0].page_content == "区域：三楼；座位：120"


def test_html_drops_boilerplate_and_splits_by_heading(tmp_path):
    html = """<html><head><title>数字资源</title><style>p{color:red}</style></head><body>
      <nav>首页 关于我们</nav><header>青溪市图书馆</header>
      <h1>电子书</h1><p>用读者证号<b>登录</b>即可借阅电子书。</p>
      <h2>远程访问</h2><ul><li>第一步：登录</li><li>第二步：选库</li></ul>
      <table><tr><th>数据库</th><th>期限</th></tr><tr><td>期刊库</td><td>一年</td></tr></table>
      <script>document.write("广告")</script><footer>版权所有</footer></body></html>"""
    (tmp_path / "资源.html").write_text(html, encoding="utf-8")
    docs = load_file(tmp_path / "资源.html", tmp_path)
    assert [d.metadata["heading"] for d in docs] == ["电子书", "电子书 > 远程访问"]
    assert all(d.metadata["title"] == "数字资源" for d in docs)
    assert docs[0].page_content == "电子书\n用读者证号登录即可借阅电子书。"
    assert "第二步：选库" in docs[1].page_content and "数据库：期刊库；期限：一年" in docs[1].page_content
    everything = "".join(d.page_content for d in docs)
    assert not any(w in everything for w in ("首页", "版权", "广告", "color"))
    article = ("<body><header>网站名</header>"
               "<article><header><h1>闭馆通知</h1></header><p>周一闭馆。</p></article></body>")
    (tmp_path / "通知.htm").write_text(article, encoding="utf-8")
    assert [(d.metadata["heading"], d.page_content) for d in load_file(tmp_path / "通知.htm", tmp_path)] == [
        ("闭馆通知", "闭馆通知\n周一闭馆。")]


def test_subtitles_merge_cues_with_time_range(tmp_path):
    cues = [f"{i + 1}\n00:00:{2 * i:02d},500 --> 00:00:{2 * i + 1:02d},900\n第{i}句：{'字' * 40}\n" for i in range(8)]
    (tmp_path / "教程.srt").write_text("\n".join(cues), encoding="utf-8")
    docs = load_file(tmp_path / "教程.srt", tmp_path)
    assert len(docs) > 1 and all(len(d.page_content) <= 210 for d in docs)
    assert docs[0].metadata["time_start"] == "00:00:00" and docs[-1].metadata["time_end"] == "00:00:15"
    assert "-->" not in "".join(d.page_content for d in docs)
    assert sum(d.page_content.count("第") for d in docs) == 8  # 一条字幕不会被拆开
    vtt = "WEBVTT\n\n00:01:05.000 --> 00:01:07.250\n<v 馆员>欢迎来到青溪市图书馆</v>\n"
    (tmp_path / "礼仪.vtt").write_text(vtt, encoding="utf-8")
    doc = load_file(tmp_path / "礼仪.vtt", tmp_path)[0]
    assert doc.page_content == "欢迎来到青溪市图书馆"
    assert (doc.metadata["time_start"], doc.metadata["time_end"]) == ("00:01:05", "00:01:07")


@pytest.mark.parametrize("name, data, message", [
    ("坏.docx", b"PK\x03\x04 truncated zip", "不是有效的 .docx"),
    ("假.pptx", "这其实是一段文字".encode(), "不是有效的 .pptx"),
    ("加密.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "文件已加密"),
    ("旧版.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "另存为不加密的 .docx/.pptx/.xlsx"),
    ("脚本.html", b"<html><head><script>render()</script></head><body><script>app()</script></body></html>",
     "网页里没有正文文字"),
    ("空.csv", "书名,作者\n".encode(), "CSV 里没有数据行"),
    ("坏.srt", "1\n00:00:01 --> 稍后\n你好\n".encode(), "没有可识别的字幕"),
    ("坏.vtt", "这不是字幕\n".encode(), "字幕文件格式不对"),
])
def test_bad_files_get_one_chinese_line(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(LoadError) as err:
        load_file(tmp_path / name, tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_office_zip_that_is_not_office(tmp_path):
    with zipfile.ZipFile(tmp_path / "打包.docx", "w") as z:
        z.writestr("readme.txt", "一个普通的压缩包")
    with pytest.raises(LoadError, match="文件损坏或内容不是 .docx"):
        load_file(tmp_path / "打包.docx", tmp_path)


def test_legacy_office_files_are_told_to_save_as_new_format(tmp_path):
    (tmp_path / "旧表.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(LoadError, match="另存为 .docx/.pptx/.xlsx"):
        load_file(tmp_path / "旧表.xls", tmp_path)


def test_workbook_without_data_rows_is_rejected(tmp_path):
    with pytest.raises(LoadError, match="工作簿里没有数据行"):
        load_file(make_xlsx(tmp_path / "空.xlsx", data=False), tmp_path)


def test_every_format_is_supported_and_uploadable():
    for ext in STRUCTURED_SUFFIXES:
        assert ext in SUPPORTED
        assert sanitize_filename(f"资料{ext}") == f"资料{ext}"
    assert row_text(["甲", ""], ["1", "2"]) == "甲：1；第2列：2"
    with pytest.raises(LoadError, match="不支持的文件类型"):
        load_structured(Path("笔记.txt"), "笔记.txt")


def test_folder_with_one_bad_file_ingests_the_rest(tmp_path):
    docs_dir = tmp_path / "docs"
    (docs_dir / "规章").mkdir(parents=True)
    make_docx(docs_dir / "规章" / "借阅.docx")
    make_pptx(docs_dir / "培训.pptx")
    make_xlsx(docs_dir / "目录.xlsx")
    (docs_dir / "加密.pptx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    (docs_dir / "教程.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n先刷读者证\n", encoding="utf-8")
    errors: list[tuple[str, str]] = []
    assert {d.metadata["source"] for d in load_directory(docs_dir, errors=errors)} == {
        "规章/借阅.docx", "培训.pptx", "目录.xlsx", "教程.srt"}
    assert [e[0] for e in errors] == ["加密.pptx"]
    kb = KnowledgeBase("formats", persist_dir=tmp_path / "db", chunk_size=300, chunk_overlap=0)
    report = kb.ingest(docs_dir)
    assert [f.source for f in report.failed] == ["加密.pptx"] and "文件已加密" in report.failed[0].detail
    assert report.count(IngestStatus.ADDED) == 4
    hits = [d.metadata for d, _ in kb.bm25("少儿读者证可借几册", k=3)]
    assert hits[0]["source"] == "规章/借阅.docx" and hits[0]["heading"] == "借阅规则 > 少儿借阅"
    hits = [d.metadata for d, _ in kb.bm25("边城 沈从文", k=3)]
    assert (hits[0]["sheet"], hits[0]["row"]) == ("新书", 2)


def test_citation_labels_locate_the_passage():
    """引用里看得到页码以外的位置：幻灯片、工作表与行、字幕时间段。"""
    from langchain_core.documents import Document

    from helpers.rag import format_context, locator

    slide = Document(page_content="开馆时间", metadata={"source": "介绍.pptx", "slide": 3})
    row = Document(page_content="书名：三体", metadata={"source": "馆藏.xlsx", "sheet": "三月", "row": 7})
    cue = Document(page_content="大家好", metadata={"source": "讲座.srt", "time_start": "00:01:05",
                                                   "time_end": "00:01:40"})
    assert locator(slide.metadata) == "第 3 张幻灯片"
    assert locator(row.metadata) == "工作表「三月」第 7 行"
    assert locator({"source": "a.md"}) is None
    text = format_context([slide, row, cue])
    assert "[1] 来源：介绍.pptx 第 3 张幻灯片" in text
    assert "[2] 来源：馆藏.xlsx 工作表「三月」第 7 行" in text
    assert "[3] 来源：讲座.srt 00:01:05–00:01:40" in text
