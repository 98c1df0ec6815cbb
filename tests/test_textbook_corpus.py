"""教材代理集渲染器：一页 JSON 渲染成 PDF 后，抽取文字里公式碎成多行、式号可检索、问题带页码。"""
import json

import pymupdf

from tools.corpora.textbook import build

PAGE = {"blocks": [
    {"h": "1.2 最小二乘法"},
    {"p": "给定数据集 D，令 x_{i} 为第 i 个样本，我们希望预测值尽量接近真实标记。" * 3},
    {"eq": "E_{w} = \\sum_{i=1}^{m} (y_{i} - w^{T} x_{i})^{2}", "no": "1.5"},
    {"p": "将式(1.5)对 w 求导并令其为零。"},
    {"eq": "w^{*} = \\frac{\\sum_{i} y_{i} x_{i}}{\\sum_{i} x_{i}^{2}}", "no": "1.6"}],
    "questions": [{"q": "根据上下文推导式(1.5)对 w 求偏导的结果", "type": "derive"}]}


def test_one_page_renders_broken_formula_and_equation_number(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01.json").write_text(json.dumps({"chapter": 1, "title": "线性模型", "pages": [PAGE]},
                                              ensure_ascii=False), encoding="utf-8")
    pdf, queries = build(src, tmp_path / "out")
    doc = pymupdf.open(pdf)
    assert doc.page_count == 2  # 书名页 + 一页正文
    text = doc[1].get_text()
    lines = [ln.strip() for ln in text.splitlines()]
    assert "(1.5)" in lines and "(1.6)" in lines  # 式号单独一行、右对齐
    assert "i = 1" in lines and "∑" in lines  # 求和号与其下限各占一行：公式被拆碎
    assert "将式(1.5)对w 求导并令其为零。" in text.replace("\n", "")
    assert "线性模型" in lines[0] and lines[-1] == "1"  # 页眉章名、页脚页码
    rows = [json.loads(x) for x in queries.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"id": "tb-0001", "question": PAGE["questions"][0]["q"],
                     "gold": [{"source": "textbook.pdf", "page": 1}], "type": "derive", "split": "test"}]
    pdf2, _ = build(src, tmp_path / "again")  # 同一份 JSON → 同样的抽取文字
    assert [p.get_text() for p in pymupdf.open(pdf2)] == [p.get_text() for p in doc]
