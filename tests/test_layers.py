"""架构由测试守住：读 helpers/ 的全部 import 语句（顶层、函数内、TYPE_CHECKING 块），不许循环、不许逆着层次导入。"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.config import PROJECT_ROOT

# 层次表，从地基往上：同一行（同一元组）里的模块同层，可以互相导入（但不能成环）；只能导入更低层或同层。
# 名字相对 helpers；没有列出的子模块按最长的已列出前缀定层（如 offline.engine → offline，course.setup → course）。
# 表里写了但还不存在的模块不影响测试。包的 __init__ 可以导入自己的子模块。
LAYERS: list[tuple[str, ...]] = [
    ("", "errors", "text", "prompts", "netguard", "tinylm"),  # "" 是 helpers/__init__.py；tinylm 只用 numpy
    ("providers",),  # 提供方一览表只依赖 errors
    ("config",),  # 读 .env 时要用提供方表
    ("course",),  # 笔记本的统一开头、字体与第 1 章一览表：只依赖 config 与 providers
    ("offline",),
    ("callbacks", "history"),  # 回调与会话历史只依赖 providers 与 text
    ("llm",),
    ("knowledge.clean",),  # 纯文本清洗：load 读 PDF 时调用它，所以在 load 之下
    ("knowledge.formats", "knowledge.pdf"),  # Office/网页/字幕解析与 PDF 版面：load 按扩展名调用它们
    ("knowledge.load",),
    ("knowledge.split",),
    ("knowledge.collection",),
    ("knowledge.process",),  # 嵌入式 Chroma 放进子进程：助手（app.service）用它代替进程内的客户端
    ("knowledge.search",),  # 纯排序：index 调用它
    ("knowledge.rerank",),  # 重排：离线重排器与服务商重排 API，store 的两阶段检索调用它
    ("knowledge.ingest", "knowledge.index"),
    ("knowledge.store",),
    ("knowledge",),  # knowledge/__init__ 转出各子模块的名字
    ("rag",),
    ("transforms",),  # 查询变换（多查询、HyDE、后退一步、分解、自查询）：建在检索器与问答链之上
    ("agent",),
    ("evaluation.dataset",),
    ("evaluation.metrics",),
    ("evaluation.compare",),  # 自助法置信区间与检索器对比
    ("evaluation.agreement",),  # 一致性：κ、Spearman、混淆表
    ("evaluation.judge",),
    ("evaluation.experiment",),
    ("evaluation.labels", "evaluation.dialogue"),  # 人工标注与自动归类对照；多轮追问评估集
    ("evaluation.agent",),
    ("evaluation.bench",),
    ("evaluation",),  # evaluation/__init__ 转出各子模块的名字
    ("app.validation", "app.disk"),
    ("app.service",),
    ("app.settings",),  # APP_* 设置与向量库写入锁：python -m helpers.app 与 python -m helpers.mcp 共用
    ("mcp",),  # 第 8 章的 MCP 服务：建在助手的服务层上，app.api 把它挂在 /mcp
    ("app.api",),
    ("app.ui",),
    ("app", "app.server", "app.client", "app.load"),
    ("app.scenarios",),  # 可靠性场景：在压测（app.load）之上
    ("doctor", "bench"),  # bench：python -m helpers.bench 的命令入口（实现在 evaluation.bench）
]

# 允许的例外，逐条列出（现在一条也没有）。列出的违规不再存在时测试也会失败，提醒把它删掉。
# ("循环", 模块…) 是一个强连通分量（按名字排序）；("逆序", 导入方, 被导入方)。
KNOWN_VIOLATIONS: set[tuple[str, ...]] = set()

PACKAGE = "helpers"


@dataclass(frozen=True)
class Edge:
    """一条导入：导入方、被导入方（都是完整模块名）与出处（文件:行）。"""

    importer: str
    imported: str
    where: str


@dataclass(frozen=True)
class Violation:
    """一条违规：比对用的键（不含行号）与给人看的中文说明。"""

    key: tuple[str, ...]
    message: str


def module_files(root: Path, package: str) -> dict[str, Path]:
    """包里每个模块的完整名字 → 文件（__init__.py 对应包名本身）。"""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """把导入名落到包里真实存在的模块上（a.b.c 不是模块时退到 a.b）；包外的返回 None。"""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(root: Path, package: str) -> list[Edge]:
    """包内模块之间的全部导入（ast 读取，包括函数里和 TYPE_CHECKING 下的，相对导入换成绝对名）。"""
    modules = module_files(root, package)
    edges = []
    for name, path in modules.items():
        is_init = path.name == "__init__.py"
        base = name if is_init else name.rpartition(".")[0]  # 相对导入以所在的包为起点
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    start = ".".join(parts[:len(parts) - (node.level - 1)])
                    source = ".".join(p for p in (start, node.module) if p)
                else:
                    source = node.module or ""
                # from pkg import sub：sub 是子模块时，依赖的是子模块而不是 pkg 的 __init__
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                           for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    edges.append(Edge(name, resolved, f"{rel}:{node.lineno}"))
    return edges


def _rank(module: str, package: str, layers: list[tuple[str, ...]]) -> int | None:
    """模块所在的层：按最长的已列出前缀；都不匹配返回 None。"""
    short = module[len(package) + 1:] if module != package else ""
    ranks = {name: i for i, row in enumerate(layers) for name in row}
    while short:
        if short in ranks:
            return ranks[short]
        short = short.rpartition(".")[0]
    return ranks[""] if module == package else None  # helpers/__init__ 不给子模块兜底


def _short(module: str, package: str) -> str:
    return module[len(package) + 1:] if module != package else "__init__"


def _cycle_in(component: set[str], graph: dict[str, dict[str, Edge]]) -> list[Edge]:
    """强连通分量里的一个环（沿边走到重复的模块为止），用来在报错里点名每一条边。"""
    start = min(component)
    path, seen, node = [], {start: 0}, start
    while True:
        nxt = min(n for n in graph[node] if n in component)
        path.append(graph[node][nxt])
        if nxt in seen:
            return path[seen[nxt]:]
        seen[nxt] = len(path)
        node = nxt


def _components(graph: dict[str, dict[str, Edge]]) -> list[set[str]]:
    """强连通分量（Tarjan），只返回含两个以上模块的。"""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                item = stack.pop()
                component.add(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def check_layers(root: Path, package: str, layers: list[tuple[str, ...]]) -> list[Violation]:
    """导入循环、逆着层次的导入和不在层次表里的模块，每条一句中文。"""
    violations = []
    graph: dict[str, dict[str, Edge]] = {}
    for edge in sorted(import_edges(root, package), key=lambda e: (e.importer, e.imported, e.where)):
        graph.setdefault(edge.importer, {}).setdefault(edge.imported, edge)  # 同一对模块只记第一处
    for module in sorted(module_files(root, package)):
        if _rank(module, package, layers) is None:
            violations.append(Violation(("未分层", _short(module, package)),
                                        f"模块 {module} 不在层次表 LAYERS 里：请把它加到它该在的层"))
    for component in _components(graph):
        cycle = _cycle_in(component, graph)
        steps = "，".join(f"{e.importer}（{e.where}）导入 {e.imported}" for e in cycle)
        violations.append(Violation(("循环", *sorted(_short(m, package) for m in component)),
                                    f"导入循环：{steps}"))
    for importer, targets in sorted(graph.items()):
        for imported, edge in sorted(targets.items()):
            low, high = _rank(importer, package, layers), _rank(imported, package, layers)
            own_submodule = imported.startswith(importer + ".")  # 包的 __init__ 导入自己的子模块
            if low is None or high is None or own_submodule or high <= low:
                continue
            violations.append(Violation(
                ("逆序", _short(importer, package), _short(imported, package)),
                f"逆着层次导入：{importer}（{edge.where}）导入了更上层的 {imported}"
                f"（第 {low} 层导入第 {high} 层；只能导入同层或更低层）"))
    return violations


def test_helpers_imports_follow_the_layers_without_circles():
    found = check_layers(PROJECT_ROOT, PACKAGE, LAYERS)
    new = [v.message for v in found if v.key not in KNOWN_VIOLATIONS]
    gone = sorted(KNOWN_VIOLATIONS - {v.key for v in found})
    assert not new, "helpers 的导入违反了层次：\n" + "\n".join(new)
    assert not gone, "这些已知违规已经不存在了，请从 KNOWN_VIOLATIONS 删掉：\n" + "\n".join(map(str, gone))


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


FAKE_LAYERS = [("", "base"), ("mid",), ("sub.low",), ("sub", "sub.high"), ("top",)]


def test_checker_reports_a_circle_even_inside_a_function(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": "",
        "pkg/mid.py": "from pkg import base\n\n\ndef f():\n    from pkg.top import g\n    return g\n",
        "pkg/top.py": "from . import mid\n\n\ndef g():\n    return mid\n",
    })
    found = {v.key: v.message for v in check_layers(tmp_path, "pkg", FAKE_LAYERS)}
    assert set(found) == {("循环", "mid", "top"), ("逆序", "mid", "top")}, found
    assert "pkg.mid（pkg/mid.py:5）导入 pkg.top" in found[("循环", "mid", "top")]
    assert "pkg.top（pkg/top.py:1）导入 pkg.mid" in found[("循环", "mid", "top")]
    assert "pkg/mid.py:5" in found[("逆序", "mid", "top")] and "更上层的 pkg.top" in found[("逆序", "mid", "top")]


def test_checker_resolves_relative_and_type_checking_imports(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg import sub\n",
        "pkg/base.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .sub.high import X\n",
        "pkg/sub/__init__.py": "from .high import X\nfrom .low import Y\n",  # 包的 __init__ 导入自己的子模块：允许
        "pkg/sub/low.py": "from ..base import Z\nY = 1\n",
        "pkg/sub/high.py": "from . import low\nfrom .. import mid\nX = 1\n",
        "pkg/mid.py": "",
        "pkg/extra.py": "",
    })
    found = {v.key: v.message for v in check_layers(tmp_path, "pkg", FAKE_LAYERS)}
    assert ("逆序", "base", "sub.high") in found and "pkg/base.py:4" in found[("逆序", "base", "sub.high")]
    assert ("未分层", "extra") in found
    assert ("循环", "base", "sub.high", "sub.low") in found  # base → sub.high → sub.low → base
    assert not any(key[0] == "逆序" and key[1] in ("sub", "__init__") for key in found)


def _layer_of(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


@pytest.mark.parametrize("module, rank", [("helpers.offline.engine", _layer_of("offline")),
                                          ("helpers.knowledge", _layer_of("knowledge")),
                                          ("helpers.unknown", None), ("helpers", 0),
                                          ("helpers.course.survey", _layer_of("course"))])
def test_rank_uses_the_longest_listed_prefix(module: str, rank: int | None):
    assert _rank(module, PACKAGE, LAYERS) == rank
