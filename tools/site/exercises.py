"""练习一览与课时表：从各章笔记本读出练习、自检单元与篇幅，写进教师指南 docs/teaching.md 的标记之间。"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from helpers.config import PROJECT_ROOT
from helpers.text import CJK_CLASS
from tools.notebooks import chapter_notebooks, solutions_for
from tools.site.pages import render_title

TEACHING_DOC = PROJECT_ROOT / "docs" / "teaching.md"
EXERCISES_BEGIN = "<!-- 练习一览：由 uv run python -m tools.site exercises --write 生成，勿手改 -->"
EXERCISES_END = "<!-- 练习一览结束 -->"
LESSONS_BEGIN = "<!-- 课时表：由 uv run python -m tools.site exercises --write 生成，勿手改 -->"
LESSONS_END = "<!-- 课时表结束 -->"
# 课时估算：讲解正文约 300 字/分钟，每个代码单元约 1 分钟（运行并看懂输出），每道练习约 12 分钟；按 45 分钟一节向上取整
_WORD_RE = re.compile(f"[{CJK_CLASS}]|[A-Za-z0-9]+")  # 一个汉字或一个英文单词算一个“字”
CHARS_PER_MINUTE, MINUTES_PER_CELL, MINUTES_PER_EXERCISE, LESSON_MINUTES = 300, 1, 12, 45
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


def exercises(path: Path, nb: nbformat.NotebookNode | None = None) -> list[Exercise]:
    """读出一章“## 练习”之后的每道练习与它的自检单元（已读入的 nb 可直接传进来）。"""
    nb = nbformat.read(path, as_version=4) if nb is None else nb
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


@dataclass(frozen=True)
class Lesson:
    """一章的篇幅：正文字数（Markdown 单元里的汉字数加英文单词数）、代码单元数、练习数与估算的课时。"""

    chapter: str
    prose_chars: int
    code_cells: int
    exercises: int

    @property
    def minutes(self) -> int:
        return round(self.prose_chars / CHARS_PER_MINUTE + self.code_cells * MINUTES_PER_CELL
                     + self.exercises * MINUTES_PER_EXERCISE)

    @property
    def lessons(self) -> int:
        return -(-self.minutes // LESSON_MINUTES)


def lesson(path: Path) -> Lesson:
    """读出一章笔记本的篇幅（不含 *_solutions）。"""
    nb = nbformat.read(path, as_version=4)
    prose = sum(len(_WORD_RE.findall(c.source)) for c in nb.cells if c.cell_type == "markdown")
    code = sum(1 for c in nb.cells if c.cell_type == "code")
    return Lesson(path.stem, prose, code, len(exercises(path, nb)))


def lessons_markdown(notebooks: list[Path] | None = None) -> str:
    """各章的篇幅与建议课时（Markdown 表格），写进教师指南。"""
    lines = ["| 章 | 正文 / 代码单元 / 练习 | 估算 | 建议课时 |", "|---|---|---|---|"]
    paths = chapter_notebooks() if notebooks is None else notebooks
    rows = [lesson(path) for path in paths]
    for path, row in zip(paths, rows):
        size = f"约 {round(row.prose_chars, -2):,} 字 / {row.code_cells} / {row.exercises}"
        lines.append(f"| {render_title(path)} | {size} | {row.minutes} 分钟 "
                     f"| {row.lessons} 节（{row.lessons * LESSON_MINUTES} 分钟） |")
    total = sum(r.lessons for r in rows)
    hours = f"{total * LESSON_MINUTES / 60:g} 小时"
    lines.append(f"| 合计 | | {sum(r.minutes for r in rows)} 分钟 | {total} 节（{hours}） |")
    return "\n".join(lines).replace(",", " ")


def _replace_block(text: str, begin: str, end: str, body: str, doc: Path) -> str:
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not (sep and sep2):
        raise ValueError(f"{doc} 里缺少标记 {begin} … {end}")
    return f"{head}{begin}\n{body}\n{end}{tail}"


def update_teaching_doc(doc: Path = TEACHING_DOC) -> bool:
    """把练习一览与课时表写进教师指南的标记之间；内容有变化时返回 True。"""
    text = doc.read_text(encoding="utf-8")
    new = _replace_block(text, EXERCISES_BEGIN, EXERCISES_END, exercises_markdown(), doc)
    new = _replace_block(new, LESSONS_BEGIN, LESSONS_END, lessons_markdown(), doc)
    if new != text:
        doc.write_text(new, encoding="utf-8")
    return new != text
