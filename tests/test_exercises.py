"""章末练习：章节里留给同学的单元没作答，自检报告“尚未作答”；同目录的 *_solutions.ipynb 作答后自检全部通过。

看的是提交的输出（nbval 另外保证它们就是现在运行的结果）。

PYTEST_DONT_REWRITE：自检要报告断言的原文，pytest 改写过的断言消息就不一样了。
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.course import Status, check_exercise, evaluate_exercise, is_unanswered
from tools.notebooks import chapter_notebooks, solutions_for
from tools.site.exercises import ANSWER_TAG, CHECK_TAG, SCAFFOLD_TAG, exercises

CHAPTERS = chapter_notebooks()
_CHECK_RE = re.compile(r"check_exercise\(\s*(\d+)")


def _cells(path: Path, tag: str) -> list[nbformat.NotebookNode]:
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def _checks(path: Path) -> dict[int, nbformat.NotebookNode]:
    """练习编号 → 它的自检单元。"""
    found: dict[int, nbformat.NotebookNode] = {}
    for cell in _cells(path, CHECK_TAG):
        numbers = _CHECK_RE.findall(cell.source)
        assert len(numbers) == 1, f"{path.name} 的自检单元应当只检查一道练习：{cell.source[:80]}"
        found[int(numbers[0])] = cell
    return found


def _printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_leaves_every_exercise_for_the_learner(chapter: Path):
    numbers = [e.number for e in exercises(chapter)]
    assert len(numbers) >= 3, f"{chapter.name} 至少要有 3 道练习，现在 {len(numbers)} 道"
    checks = _checks(chapter)
    assert sorted(checks) == numbers, f"{chapter.name}：每道练习一个自检单元"
    assert len(_cells(chapter, SCAFFOLD_TAG)) >= len(numbers), f"{chapter.name}：每道练习要有留给同学作答的单元"
    assert not _cells(chapter, ANSWER_TAG), f"{chapter.name} 里不该有参考答案：放进 {solutions_for(chapter).name}"
    for n, cell in checks.items():
        assert _printed(cell).startswith(f"练习 {n} {Status.UNANSWERED}"), (chapter.name, n, _printed(cell))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_answer_every_exercise_and_pass_the_same_checks(chapter: Path):
    solutions = solutions_for(chapter)
    assert solutions.is_file(), f"缺少参考答案 {solutions.relative_to(chapter.parent.parent)}"
    ours, theirs = _checks(chapter), _checks(solutions)
    assert sorted(theirs) == sorted(ours), f"{solutions.name} 要回答 {chapter.name} 的每一道练习"
    for n in ours:
        assert theirs[n].source == ours[n].source, f"练习 {n}：参考答案里的自检单元要与章节里一字不差"
        assert _printed(theirs[n]).strip() == f"练习 {n} {Status.PASSED}", (solutions.name, n, _printed(theirs[n]))
    assert len(_cells(solutions, ANSWER_TAG)) >= len(ours)


def test_check_reports_unanswered_failed_and_passed(capsys):
    def cite(question: str) -> str:
        ...

    def verify() -> None:
        assert cite("问") == "答"

    assert evaluate_exercise(1, verify, cite)[0] is Status.UNANSWERED
    check_exercise(1, verify, cite)

    def cite(question: str) -> str:  # noqa: F811 - 同学改写了答案
        return "错"

    assert evaluate_exercise(1, verify, cite)[0] is Status.FAILED
    check_exercise(1, verify, cite)

    def cite(question: str) -> str:  # noqa: F811
        return "答"

    assert evaluate_exercise(1, verify, cite)[0] is Status.PASSED
    assert check_exercise(1, verify, cite) is None  # 单元末尾不多显示一个返回值
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("练习 1 尚未作答：")
    assert lines[1] == '练习 1 未通过：这一条不成立：assert cite("问") == "答"'
    assert lines[2] == "练习 1 通过 ✓"


def test_check_never_raises_and_says_why(capsys):
    def crash() -> None:
        raise KeyError("missing")

    def explained() -> None:
        assert 1 + 1 == 3, "应当是 2"

    check_exercise(2, crash, 1)
    check_exercise(3, explained, 1)
    out = capsys.readouterr().out.splitlines()
    assert out == ["练习 2 未通过：运行出错 KeyError：'missing'", "练习 3 未通过：应当是 2"]


@pytest.mark.parametrize("answer, unanswered", [(None, True), (..., True), (0, False), ("", False), ([], False)])
def test_unanswered_values(answer: object, unanswered: bool):
    assert is_unanswered(answer) is unanswered


def test_unanswered_functions():
    def stub(x):
        """写一个函数。"""
        ...

    def todo(x):
        raise NotImplementedError

    def done(x):
        return x

    assert is_unanswered(stub) and is_unanswered(todo) and not is_unanswered(done)


def test_async_verify_runs_to_the_end_even_inside_a_running_event_loop():
    """第 8 章练习 4 的自检是 async def（要连 MCP 服务器）：笔记本里已有事件循环，自检照样跑完并如实报告。"""
    import asyncio

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def good() -> None:
        assert await answer() == 42

    async def bad() -> None:
        assert await answer() == 41, "应当是 41"

    async def inside_loop() -> list[tuple[Status, str]]:
        return [evaluate_exercise(4, good, answer), evaluate_exercise(4, bad, answer)]

    (ok, _), (failed, why) = asyncio.run(inside_loop())
    assert ok is Status.PASSED
    assert failed is Status.FAILED and why.endswith("应当是 41")

    async def stub() -> int:
        ...

    assert evaluate_exercise(4, good, stub)[0] is Status.UNANSWERED
