"""章节标注“（第 N 章）”要名副其实：标注的章的笔记本代码用到了这个名字（python -m tools.chapter_tags 列出不符）。"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.chapter_tags import Tag, chapter_code, known, mismatches, parse_chapters, tags, uses


def test_no_new_chapter_tag_names_a_chapter_that_does_not_use_the_symbol():
    wrong, _ = mismatches()
    allow = known()
    new = [m.describe() for m in wrong if m.key not in allow]
    assert not new, ("章节标注与笔记本用法不符（改标注，或确有理由时加进 tools/chapter_tags_known.txt）：\n"
                     + "\n".join(new))


def test_tags_are_read_from_public_docstrings_only(tmp_path):
    pkg = tmp_path / "helpers"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        'def f():\n    """公开函数（第 2、3 章）。"""\n\n\ndef _g():\n    """私有（第 4 章）。"""\n\n\n'
        'class K:\n    """类（第 5 章 · 标题）。"""\n\n    def ask(self):\n        """方法（第 6 章）。"""\n\n'
        '    def _hidden(self):\n        """私有方法（第 6 章）。"""\n\n\n'
        'class _P:\n    def shown(self):\n        """私有类的方法（第 1 章）。"""\n', encoding="utf-8")
    assert [(t.qualname, t.where, t.chapters) for t in tags(pkg)] == [
        ("f", "helpers/m.py:1", (2, 3)), ("K", "helpers/m.py:9", (5,)), ("K.ask", "helpers/m.py:12", (6,))]
    assert parse_chapters("4") == (4,)


def test_use_means_a_call_an_attribute_or_an_import():
    assert uses("kb = KnowledgeBase(x)", "KnowledgeBase")
    assert uses("r = kb.search('q')", "search")
    assert uses("from helpers.bench import (\n    format_table, load_queries as lq,\n)", "load_queries")
    assert not uses("research = 1  # 搜索 search", "search")
    assert not uses("top = 3\nkey = 'a'", "top")


def test_a_tag_on_a_chapter_that_does_not_use_the_symbol_is_reported(tmp_path):
    for n, code in ((4, "from helpers.bench import retrieval_metrics\nretrieval_metrics([])"), (6, "print(1)")):
        path = tmp_path / f"C{n}_x" / f"C{n}_x.ipynb"
        path.parent.mkdir()
        nbformat.write(new_notebook(cells=[new_markdown_cell("retrieval_metrics("), new_code_cell(code)]), path)
    code = chapter_code.__wrapped__(tmp_path)
    wrong, unused = mismatches([Tag("retrieval_metrics", "helpers/bench.py:1", (6,)),
                                Tag("nowhere", "helpers/x.py:1", (2,)), Tag("retrieval_metrics", "h.py:2", (4,))],
                               code)
    assert [(m.key, m.used_in) for m in wrong] == [("retrieval_metrics 第 6 章", (4,))]
    assert "实际用到：第 4 章" in wrong[0].describe()
    assert [t.qualname for t in unused] == ["nowhere"]
