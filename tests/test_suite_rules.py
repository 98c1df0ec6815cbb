"""测试本身的规矩：测试模块之间不互相导入（共用的放 conftest.py 与 tests/support/），每个测试都有断言。"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
MODULES = sorted(TESTS.glob("test_*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> set[str]:
    """模块里 import 的顶层名字。"""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _asserts(func: ast.FunctionDef) -> bool:
    """函数体里有 assert，或者用 pytest.raises / pytest.warns 断言了异常与警告。"""
    for node in ast.walk(func):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("raises", "warns", "fail", "assert_allclose"):
            return True
    return False


def test_no_test_module_imports_another():
    stems = {p.stem for p in MODULES}
    crossing = {p.name: sorted(_imported(_tree(p)) & stems) for p in MODULES}
    found = {name: imported for name, imported in crossing.items() if imported}
    assert found == {}, "共用的夹具放 conftest.py，函数放 tests/support/"


def test_every_test_asserts_something():
    silent = [f"{p.name}::{node.name}" for p in MODULES for node in ast.walk(_tree(p))
              if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and not _asserts(node)]
    assert silent == [], "这些测试什么也没断言：只要不报错就算通过"
