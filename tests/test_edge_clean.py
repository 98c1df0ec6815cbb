"""清洗与切分在大输入下是线性的：可靠性探测 F1 的两个文件（60,000 行的 PDF、334 KB 无标点的 .txt）几秒内入库。"""

from __future__ import annotations

import time
from pathlib import Path

import pymupdf

from helpers.knowledge import clean_text, join_broken_lines, load_file, split_documents

# 修复前：6,000 行的 .txt 要 42 秒，60,000 行的 PDF 要几个小时（join_broken_lines 是平方复杂度）；修复后都在 1 秒内
BUDGET_S = 10.0


def amplify_pdf(path: Path, lines: int) -> Path:
    """探测用的 text_amplify.pdf：一页、几万行很短的文字，压缩后只有几 KB。"""
    doc = pymupdf.open()
    page = doc.new_page(width=120, height=lines * 3 + 20)
    page.insert_text((5, 10), "\n".join(f"ab{i % 10}" for i in range(lines)), fontsize=2, lineheight=1.5)
    doc.save(path, garbage=3, deflate=True)
    return path


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def test_pdf_page_of_sixty_thousand_short_lines_loads_in_seconds(tmp_path):
    pdf = amplify_pdf(tmp_path / "amplify.pdf", 60_000)
    assert pdf.stat().st_size < 64 * 1024  # 小文件，大工作量
    seconds, docs = timed(lambda: split_documents(load_file(pdf, tmp_path)))
    assert seconds < BUDGET_S, f"{seconds:.1f} 秒"
    text = "".join(d.page_content for d in docs)
    assert text.count("ab7") >= 5_000  # 文字都还在


def test_text_file_without_punctuation_loads_in_seconds(tmp_path):
    # 6,000 行、每行 56 个字符、没有句末标点：每行都"排满"，全部接成一行（334 KB）
    txt = tmp_path / "nopunct.txt"
    txt.write_text("\n".join(f"word{i:05d} " * 5 + "endline" for i in range(6000)) + "\n", encoding="utf-8")
    assert 300_000 < txt.stat().st_size < 400_000
    seconds, chunks = timed(lambda: split_documents(load_file(txt, tmp_path)))
    assert seconds < BUDGET_S, f"{seconds:.1f} 秒"
    assert chunks and all(len(c.page_content) <= 300 for c in chunks)


def test_long_runs_of_broken_lines_are_still_joined_exactly():
    lines = ["检索增强生成把外部知识接入大模型"] * 3000
    assert join_broken_lines("\n".join(lines)) == "".join(lines)
    words = ["retrieval augmented generation"] * 3000
    assert clean_text("\n".join(words)) == " ".join(words)  # 英文单词之间补一个空格
    assert join_broken_lines("排满的一行没有句号\n排满的一行没有句号\n# 标题\n短。") == (
        "排满的一行没有句号排满的一行没有句号\n# 标题\n短。")
