"""PDF 版面取字：双栏页先左后右，公式碎片拼回一行、式号留在公式那一行，普通页与 PyMuPDF 原样一致（第 8 章）。"""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from helpers.errors import LoadError
from helpers.knowledge import load_file, split_documents
from helpers.knowledge.clean import join_formula_fragments
from helpers.knowledge.pdf import page_text, pdf_pages
from tests.support.corpus import make_pdf

CJK = pymupdf.Font("china-s")
ITALIC = pymupdf.Font("tiit")
ROMAN = pymupdf.Font("tiro")

LEFT = [f"左栏第{i}行讲的是线性回归的闭式解推导" for i in range(12)]
RIGHT = [f"右栏第{i}行讲的是逻辑回归的极大似然估计" for i in range(12)]


def two_column_pdf(path: Path) -> Path:
    """双栏页：左右两栏同一高度的行交错写进内容流（朴素抽取会把两栏串在一起）。"""
    doc = pymupdf.open()
    page = doc.new_page()
    tw = pymupdf.TextWriter(page.rect)
    tw.append((60, 60), "第 3 章 线性模型（页眉）", font=CJK, fontsize=8)
    for i, (left, right) in enumerate(zip(LEFT, RIGHT)):
        y = 100 + 18 * i
        tw.append((60, y), left, font=CJK, fontsize=10)
        tw.append((320, y), right, font=CJK, fontsize=10)
    tw.write_text(page)
    doc.save(path)
    return path


def formula_pdf(path: Path) -> Path:
    """LaTeX 式的公式：求和号的上下限、分式的分子分母、下标都在不同高度，式号右对齐。"""
    doc = pymupdf.open()
    page = doc.new_page()
    tw = pymupdf.TextWriter(page.rect)
    tw.append((72, 100), "均方误差定义为下式，后文由式(9.35)求导：", font=CJK, fontsize=11)
    y = 150  # 公式基线
    tw.append((200, y), "E", font=ITALIC, fontsize=11)
    tw.append((212, y), "=", font=ROMAN, fontsize=11)
    tw.append((226, y - 9), "1", font=ROMAN, fontsize=9)  # 分子
    tw.append((225, y + 9), "m", font=ITALIC, fontsize=9)  # 分母
    tw.append((240, y + 2), "∑", font=CJK, fontsize=16)
    tw.append((241, y - 14), "m", font=ITALIC, fontsize=7)  # 上限
    tw.append((238, y + 11), "i=1", font=ROMAN, fontsize=7)  # 下限
    x = 258.0
    for base, sub in (("(y", "i"), (" - f(x", "i"), ("))", "")):  # 下标紧跟在字母右下方
        tw.append((x, y), base, font=ITALIC, fontsize=11)
        x += ITALIC.text_length(base, 11) + 0.5
        if sub:
            tw.append((x, y + 3), sub, font=ITALIC, fontsize=7)
            x += ITALIC.text_length(sub, 7) + 0.5
    tw.append((500, y), "(9.35)", font=ROMAN, fontsize=11)  # 式号
    tw.append((72, 200), "其中 m 是样本数，这一行是普通正文。", font=CJK, fontsize=11)
    tw.write_text(page)
    doc.save(path)
    return path


def test_two_column_page_reads_left_column_then_right(tmp_path):
    pdf = two_column_pdf(tmp_path / "two.pdf")
    with pymupdf.open(pdf) as doc:
        naive = doc[0].get_text("text")
    assert LEFT[1] not in naive.split("\n") or naive.index(RIGHT[0]) < naive.index(LEFT[11])  # 朴素抽取串栏
    lines = [ln for ln in pdf_pages(pdf)[0].split("\n") if ln]
    assert lines == ["第 3 章 线性模型（页眉）"] + LEFT + RIGHT


def test_formula_fragments_join_into_one_line_with_the_equation_number(tmp_path):
    pdf = formula_pdf(tmp_path / "eq.pdf")
    lines = [ln for ln in pdf_pages(pdf)[0].split("\n") if ln]
    assert len(lines) == 3
    formula = lines[1]
    assert formula.startswith("E =") and formula.endswith("(9.35)")
    assert "∑" in formula and "i=1" in formula and "yi" in formula and "xi" in formula
    assert lines[2] == "其中 m 是样本数，这一行是普通正文。"
    # 入库后，式号和公式在同一块里："式(9.35)" 搜得到公式本身
    (chunk,) = [c for c in split_documents(load_file(pdf, tmp_path)) if "(9.35)" in c.page_content][-1:]
    assert "∑" in chunk.page_content


def test_plain_pages_are_extracted_exactly_as_before(tmp_path):
    pdf = make_pdf(tmp_path / "plain.pdf", ["第一页讲嵌入。\n第二行。", "第二页讲切分。"])
    with pymupdf.open(pdf) as doc:
        assert [page_text(p) for p in doc] == [p.get_text("text", sort=False) for p in doc]


def test_table_rows_are_not_glued_together(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page()
    for x, cell in ((72, "方案"), (200, "输入价格"), (330, "延迟")):
        page.insert_text((x, 100), cell, fontname="china-s", fontsize=10)
    for x, cell in ((72, "旗舰级"), (200, "20"), (330, "0.8 秒")):
        page.insert_text((x, 120), cell, fontname="china-s", fontsize=10)
    doc.save(tmp_path / "table.pdf")
    lines = pdf_pages(tmp_path / "table.pdf")[0].split("\n")
    assert lines[:6] == ["方案", "输入价格", "延迟", "旗舰级", "20", "0.8 秒"]


def test_bad_pdfs_still_get_one_clear_line(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really a pdf")
    with pytest.raises(LoadError, match="损坏"):
        pdf_pages(broken)
    locked = tmp_path / "locked.pdf"
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    doc.save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    with pytest.raises(LoadError, match="加密"):
        pdf_pages(locked)


def test_join_formula_fragments_on_plain_text():
    text = "错误率可以写成\nE(f;D) =\n1\nm\nm∑\ni = 1\nI(f(xi) ≠ yi)\n(1.3)\n由式(1.3)可知，错误率越低越好。"
    assert join_formula_fragments(text).split("\n") == [
        "错误率可以写成", "E(f;D) = 1 m m∑ i = 1 I(f(xi) ≠ yi) (1.3)", "由式(1.3)可知，错误率越低越好。"]
    assert join_formula_fragments("f(x) = wx + b\n(3.1)") == "f(x) = wx + b (3.1)"


def test_join_formula_fragments_leaves_prose_tables_and_english_alone():
    for text in ("旗舰级闭源接口\n20\n60\n0.8 秒", "第一段。\n第二段。",
                 "Retrieval augmented generation grounds answers\nin documents.\nA new paragraph starts here.",
                 "（1）先加载文档；\n（2）再切块。"):
        assert join_formula_fragments(text) == text
