"""练习一览：从各章笔记本读出练习与自检单元，写进教师指南 docs/teaching.md 的标记之间。"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from helpers.config import PROJECT_ROOT
from tools.notebooks import chapter_notebooks, solutions_for
from tools.site.pages import render_title

TEACHING_DOC = PROJECT_ROOT / "docs" / "teaching.md"
EXERCISES_BEGIN = "<!-- 练习一览：由 uv run python -m tools.site exercises --write 生成，勿手改 -->"
EXERCISES_END = "<!-- 练习一览结束 -->"
# 章末练习的单元标签：留给同学作答的单元、自检单元、（*_solutions 里的）参考答案
SCAFFOLD_TAG, CHECK_TAG, ANSWER_TAG = "练习", "自检", "参考答案"
_CHECK_CALL_RE = re.compile(r"check_exercise\(\s*(\d+)")
_EX_HEADING_RE = re.compile(r"^#{3,4}\s*练习\s*(\d+)\s*[：:.、]?\s*(.*)$")
_EX_BOLD_RE = re.compile(r"^\*\*练习\s*(\d+)\s*(?:[（(](.*?)[)）])?\s*\*\*\s*[：:]?[\s\u3000]*(.*)$")


@dataclass(frozen=True)
class Exercise:
    """一道练习：所在章、编号、题目与自检单元里的断言数。"""

    chapter: str
    number: int
    title: str
    asserts: int


def _short_title(text: str) -> str:
    """没有小标题的练习取题干第一句（去掉 Markdown 标记）。"""
    text = re.sub(r"[*`]", "", text).strip()
    first = re.split(r"[：。；:]", text, maxsplit=1)[0].strip()
    return first if len(first) <= 40 else first[:39] + "…"


def exercises(path: Path) -> list[Exercise]:
    """读出一章“## 练习”之后的每道练习与它的自检单元。"""
    nb = nbformat.read(path, as_version=4)
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                  and any(ln.strip() == "## 练习" for ln in c.source.splitlines())), None)
    if start is None:
        return []
    titles: dict[int, str] = {}
    checks: dict[int, int] = {}
    for cell in nb.cells[start:]:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = _EX_HEADING_RE.match(line.strip())
                if m:
                    titles.setdefault(int(m[1]), _short_title(m[2]))
                    continue
                m = _EX_BOLD_RE.match(line.strip())
                if m:
                    titles.setdefault(int(m[1]), _short_title(m[2] or m[3]))
        elif cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", []):
            for num in map(int, _CHECK_CALL_RE.findall(cell.source)):
                checks[num] = len(re.findall(r"^\s*assert\b", cell.source, re.M))
    return [Exercise(path.stem, n, titles[n], checks.get(n, 0)) for n in sorted(titles)]


def exercises_markdown(notebooks: list[Path] | None = None) -> str:
    """全部章节的练习一览（Markdown 表格），写进教师指南。"""
    lines = ["| 章 | 练习 | 自检 |", "|---|---|---|"]
    for path in chapter_notebooks() if notebooks is None else notebooks:
        title = render_title(path)
        for ex in exercises(path):
            check = (f"{ex.asserts} 条断言，报告 尚未作答 / 通过 ✓ / 未通过；答案见 {solutions_for(path).name}"
                     if ex.asserts else "（没有自检单元）")
            lines.append(f"| {title} | 练习 {ex.number}：{ex.title} | {check} |")
    return "\n".join(lines)


def update_teaching_doc(doc: Path = TEACHING_DOC) -> bool:
    """把练习一览写进教师指南的标记之间；内容有变化时返回 True。"""
    text = doc.read_text(encoding="utf-8")
    head, sep, rest = text.partition(EXERCISES_BEGIN)
    _, sep2, tail = rest.partition(EXERCISES_END)
    if not (sep and sep2):
        raise ValueError(f"{doc} 里缺少练习一览的标记 {EXERCISES_BEGIN} … {EXERCISES_END}")
    new = f"{head}{EXERCISES_BEGIN}\n{exercises_markdown()}\n{EXERCISES_END}{tail}"
    if new != text:
        doc.write_text(new, encoding="utf-8")
    return new != text
