"""章末练习的自检：报告“尚未作答”“通过 ✓”或“未通过：原因”，从不抛出异常（各章练习）。

练习的写法（每章相同）：题目之后是一个留给同学的单元（带 `...` 的函数或值为 None 的变量），
再是一个自检单元——把断言写进函数 verify，交给 check(编号, verify, 要检查的答案…)。
参考答案在同目录的 *_solutions.ipynb 里，那里的自检单元与章节里一字不差。
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

# 还没作答时告诉同学下一步做什么
_HOW_TO_ANSWER = "把上面单元里的 ... 或 None 换成你的答案，再运行这个单元"


class Status(StrEnum):
    """一道练习的自检结果：值就是打印出来的中文（各章练习）。"""

    UNANSWERED = "尚未作答"
    PASSED = "通过 ✓"
    FAILED = "未通过"


def _is_stub_body(body: list[ast.stmt]) -> bool:
    """函数体里只有文档字符串、...、pass 或 raise NotImplementedError。"""
    for stmt in body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # 文档字符串或 ...
        if isinstance(stmt, ast.Raise) and stmt.exc is not None and "NotImplementedError" in ast.unparse(stmt.exc):
            continue
        return False
    return True


def is_unanswered(answer: object) -> bool:
    """答案还没写：None、...，或函数体只有 ... / pass 的函数（各章练习）。"""
    if answer is None or answer is Ellipsis:
        return True
    if inspect.isfunction(answer):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(answer)))
        except (OSError, TypeError, SyntaxError):  # 取不到源码（如 lambda 写在一行里的一部分）：当作已作答
            return False
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        return bool(funcs) and _is_stub_body(funcs[0].body)
    return False


def _why(exc: BaseException) -> str:
    """断言没有说明时，指出没通过的那一行代码。"""
    if isinstance(exc, AssertionError):
        if str(exc):
            return str(exc)
        frames = traceback.extract_tb(exc.__traceback__)
        line = (frames[-1].line or "").strip() if frames else ""
        return f"这一条不成立：{line}" if line else "有一条断言不成立"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"运行出错 {type(exc).__name__}" + (f"：{first[:200]}" if first else "")


def evaluate(number: int, verify: Callable[[], object], *answers: object) -> tuple[Status, str]:
    """练习 number 的自检结果与要打印的一行：有答案没写就是“尚未作答”，否则运行 verify（可为 async）（各章练习）。"""
    if any(is_unanswered(a) for a in answers):
        return Status.UNANSWERED, f"练习 {number} {Status.UNANSWERED}：{_HOW_TO_ANSWER}"
    try:
        result = verify()
        if inspect.iscoroutine(result):  # async def verify()：笔记本里已有事件循环，放到另一个线程的新循环里跑完
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(asyncio.run, result).result()
    except Exception as exc:  # noqa: BLE001 - 自检只报告，不让笔记本停下
        return Status.FAILED, f"练习 {number} {Status.FAILED}：{_why(exc)}"
    return Status.PASSED, f"练习 {number} {Status.PASSED}"


def check(number: int, verify: Callable[[], object], *answers: object) -> None:
    """练习的自检单元：打印“尚未作答”“通过 ✓”或“未通过：原因”，从不抛出异常（各章练习）。"""
    print(evaluate(number, verify, *answers)[1])
