"""办公、网页与字幕文件的检索（第 8 章）：表格行、字幕段这样的小块带上文件标题与工作表名再建索引，
提问用的虚词不参与字级匹配。"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from langchain_core.documents import Document

from helpers.knowledge import KnowledgeBase, load_file
from helpers.knowledge.formats import DOC_TITLE_KEY
from helpers.knowledge.search import content_query
from helpers.knowledge.split import document_context, with_document_context


def make_signups(path: Path) -> Path:
    """两张工作表的报名表：两行只差月份和人数，只有工作表名能分出是哪个月。"""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for month, people in (("三月", 80), ("四月", 120)):
        ws = wb.create_sheet(month)
        ws.append(["活动", "地点", "人数"])
        ws.append(["作家讲座", "报告厅", people])
    wb.save(path)
    return path


def test_loaders_record_the_file_title(tmp_path):
    """每个办公/字幕块的元数据都有 doc_title：文档属性里没写标题时用文件名。"""
    (tmp_path / "常见问题.csv").write_text("问题,解答\n办证要钱吗,免费\n", encoding="utf-8")
    (tmp_path / "借还教程.srt").write_text("1\n00:00:01,000 --> 00:00:03,000\n大家好\n", encoding="utf-8")
    make_signups(tmp_path / "活动报名.xlsx")
    assert load_file(tmp_path / "常见问题.csv", tmp_path)[0].metadata[DOC_TITLE_KEY] == "常见问题"
    assert load_file(tmp_path / "借还教程.srt", tmp_path)[0].metadata[DOC_TITLE_KEY] == "借还教程"
    rows = load_file(tmp_path / "活动报名.xlsx", tmp_path)
    assert {(r.metadata["sheet"], r.metadata[DOC_TITLE_KEY]) for r in rows} == {
        ("三月", "活动报名"), ("四月", "活动报名")}
    assert rows[0].page_content == "活动：作家讲座；地点：报告厅；人数：80"  # 给人看的正文不变


def test_index_text_carries_file_and_sheet():
    """建索引的文字 = "文件标题 > 工作表 > 标题" + 正文；Markdown/PDF 的块没有 doc_title，原样不变。"""
    row = Document("活动：作家讲座；人数：120", metadata={DOC_TITLE_KEY: "活动报名", "sheet": "四月", "row": 2})
    assert with_document_context(row) == "活动报名 > 四月\n活动：作家讲座；人数：120"
    slide = Document("开幕式\n时间：上午十点", metadata={DOC_TITLE_KEY: "读书月", "title": "开幕式", "slide": 2})
    assert document_context(slide.metadata) == "读书月 > 开幕式"
    page = Document("第一页正文。", metadata={"source": "a.pdf", "page": 0, "title": "不是文件级的标题"})
    assert with_document_context(page) == "第一页正文。"
    heading = Document("块大小常取 300 字。", metadata={"source": "a.md", "heading": "三、块大小"})
    assert with_document_context(heading, heading=True) == "三、块大小\n块大小常取 300 字。"


def test_split_sections_keep_their_heading_in_the_index(tmp_path):
    """Word 里很长的一节切成几块：后面的块正文里没有标题行，建索引时补上"文件标题"与标题路径。"""
    import docx

    from helpers.knowledge.split import split_documents

    doc = docx.Document()
    doc.add_heading("逾期与赔偿", 1)
    doc.add_paragraph("图书遗失按书价的2倍赔偿。" * 30)
    doc.save(tmp_path / "借阅规则.docx")
    chunks = split_documents(load_file(tmp_path / "借阅规则.docx", tmp_path), chunk_size=120, chunk_overlap=0)
    assert len(chunks) > 1 and not chunks[1].page_content.startswith("逾期与赔偿")
    assert with_document_context(chunks[1]).startswith("借阅规则\n逾期与赔偿\n图书遗失")
    assert with_document_context(chunks[0]).count("逾期与赔偿") == 1  # 正文已有标题行的块不重复加


def test_asking_words_are_dropped_from_the_char_query():
    """"要收费吗""有什么"这类提问字眼不参与字级匹配，内容字眼留下。"""
    assert content_query("行李箱放哪儿？要收费吗？").split() == ["行李箱放", "？要收费", "？"]
    assert content_query("馆员接听电话有什么规矩？").split() == ["馆员接听电话有", "规矩？"]
    assert content_query("RAG 的检索") == "RAG 的检索"


@pytest.fixture(scope="module")
def signup_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    docs = tmp_path_factory.mktemp("docs")
    make_signups(docs / "活动报名.xlsx")
    for name in ("电话服务", "自助借书"):  # 两个字幕文件的字幕一字不差
        (docs / f"{name}.srt").write_text("1\n00:00:01,000 --> 00:00:04,000\n响三声以内要处理好\n", encoding="utf-8")
    kb = KnowledgeBase("office", persist_dir=tmp_path_factory.mktemp("db"), chunk_size=300, chunk_overlap=0)
    kb.ingest(docs)
    return kb


@pytest.mark.parametrize("month,people", [("三月", 80), ("四月", 120)])
def test_sheet_name_finds_the_right_row(signup_kb, month, people):
    """两行只差工作表名：问"四月"就先给四月那张表的行（行本身不提月份）。"""
    top = signup_kb.hybrid(f"{month}的作家讲座有多少人？", k=1)[0][0]
    assert (top.metadata["sheet"], top.page_content.endswith(str(people))) == (month, True)


@pytest.mark.parametrize("topic", ["电话服务", "自助借书"])
def test_file_title_finds_the_right_subtitle(signup_kb, topic):
    """两个字幕文件的字幕一样：只有文件名（字幕的主题）能把问题引到对的那个文件。"""
    top = signup_kb.hybrid(f"{topic}时响几声以内要处理？", k=1)[0][0]
    assert top.metadata["source"] == f"{topic}.srt"
