"""核对 helpers/ 文档字符串里的章节标注“（第 N 章）”：被标注的章的笔记本代码里真的用到了这个名字。

    uv run python -m tools.chapter_tags            # 列出标注与笔记本用法不符的名字
    uv run python -m tools.chapter_tags --unused   # 另外列出有标注、但没有任何一章用到的名字

“用到”指笔记本（notebooks/C{N}_*/*.ipynb）的代码单元里出现 `name(`、`.name` 或 `from … import name`；
私有名字（以 _ 开头，或属于私有类）不检查。方法名（如 ask、key）可能误配到别的库的同名方法，这是启发式检查。
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat

from helpers.config import PROJECT_ROOT

HELPERS_DIR = PROJECT_ROOT / "helpers"
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
KNOWN_FILE = Path(__file__).with_name("chapter_tags_known.txt")
TAG_RE = re.compile(r"（第\s*([0-9][0-9、，,\s]*?)\s*章[^）]*）")
_IMPORT_RE = re.compile(r"^\s*from\s+[\w.]+\s+import\s+(\([^)]*\)|[^\n#]*)", re.M)
_CHAPTER_DIR_RE = re.compile(r"^C(\d+)_")


@dataclass(frozen=True)
class Tag:
    """一处章节标注：名字（类.方法）、出处与标注的章。"""

    qualname: str
    where: str
    chapters: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.qualname.rpartition(".")[2]


@dataclass(frozen=True)
class Mismatch:
    """标注的章没有用到这个名字：连同实际用到它的章。"""

    tag: Tag
    used_in: tuple[int, ...]

    @property
    def key(self) -> str:
        """允许清单里的一行：名字与标注的章（不含文件与行号，模块搬家时不变）。"""
        return f"{self.tag.qualname} 第 {'、'.join(map(str, self.tag.chapters))} 章"

    def describe(self) -> str:
        used = f"第 {'、'.join(map(str, self.used_in))} 章" if self.used_in else "没有一章"
        return f"{self.tag.qualname}  {self.tag.where}  标注：{self.key.split(' ', 1)[1]}  实际用到：{used}"


def parse_chapters(text: str) -> tuple[int, ...]:
    """“2、3”“4” → (2, 3)、(4,)。"""
    return tuple(int(n) for n in re.split(r"[、，,\s]+", text) if n)


def tags(root: Path = HELPERS_DIR) -> list[Tag]:
    """helpers/ 里全部公开的类与函数（含方法）上的章节标注。"""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()

        def visit(node: ast.AST, prefix: str, rel: str = rel) -> None:
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                if child.name.startswith("_"):
                    continue  # 私有名字与私有类里的一切都不检查
                qualname = f"{prefix}{child.name}"
                doc = ast.get_docstring(child) or ""
                m = TAG_RE.search(doc)
                if m:
                    found.append(Tag(qualname, f"{rel}:{child.lineno}", parse_chapters(m[1])))
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{qualname}.")

        visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


@cache
def chapter_code(notebooks: Path = NOTEBOOK_DIR) -> dict[int, str]:
    """每章全部笔记本（含 *_solutions）代码单元的源码。"""
    code: dict[int, list[str]] = {}
    for path in sorted(notebooks.glob("C*/*.ipynb")):
        m = _CHAPTER_DIR_RE.match(path.parent.name)
        if not m or ".ipynb_checkpoints" in path.parts:
            continue
        nb = nbformat.read(path, as_version=4)
        code.setdefault(int(m[1]), []).extend(c.source for c in nb.cells if c.cell_type == "code")
    return {n: "\n".join(parts) for n, parts in sorted(code.items())}


def _imported_names(code: str) -> set[str]:
    """from … import a, b as c, (d, e) 里导入的名字。"""
    names = set()
    for group in _IMPORT_RE.findall(code):
        for item in group.strip("()").replace("\n", " ").split(","):
            if item.strip():
                names.add(item.split()[0])
    return names


def uses(code: str, name: str) -> bool:
    """代码里有没有 name(、.name 或 from … import name。"""
    pattern = rf"(?<![\w.]){re.escape(name)}\s*\(|\.{re.escape(name)}\b"
    return bool(re.search(pattern, code)) or name in _imported_names(code)


def mismatches(all_tags: list[Tag] | None = None,
               code: dict[int, str] | None = None) -> tuple[list[Mismatch], list[Tag]]:
    """(标注的某一章没用到、而别的章用到的名字, 有标注但没有任何一章用到的名字)。"""
    code = chapter_code() if code is None else code
    wrong, unused = [], []
    for tag in tags() if all_tags is None else all_tags:
        # 方法名（ask、search、add…）到处都有：一章用到了它的类，也算用到了这个方法
        owner = tag.qualname.split(".")[0] if "." in tag.qualname else None
        used_in = tuple(n for n, text in code.items()
                        if uses(text, tag.name) or (owner is not None and uses(text, owner)))
        if not used_in:
            unused.append(tag)
        elif any(n not in used_in for n in tag.chapters):
            wrong.append(Mismatch(tag, used_in))
    return wrong, unused


def known(path: Path = KNOWN_FILE) -> set[str]:
    """允许清单（今天已知、待修的标注）：每行“名字 第 N 章”，# 之后是注释。"""
    if not path.is_file():
        return set()
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines())
    return {ln for ln in lines if ln}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chapter_tags", description="核对 helpers 里的章节标注")
    parser.add_argument("--unused", action="store_true", help="也列出有标注、但没有任何一章用到的名字")
    parser.add_argument("--write-known", action="store_true", help="把当前的不符之处写进允许清单（慎用）")
    args = parser.parse_args(argv)
    wrong, unused = mismatches()
    allow = known()
    print(f"章节标注与笔记本用法不符 {len(wrong)} 处（其中 {sum(m.key in allow for m in wrong)} 处在允许清单里）：")
    for m in wrong:
        print(("  · " if m.key in allow else "  ✗ ") + m.describe())
    stale = sorted(allow - {m.key for m in wrong})
    if stale:
        print(f"允许清单里已不存在的条目 {len(stale)} 条（可以删掉）：" + "、".join(stale))
    print(f"有标注但没有任何一章用到的名字 {len(unused)} 个" + ("：" if args.unused and unused else ""))
    if args.unused:
        for tag in unused:
            print(f"  {tag.qualname}  {tag.where}  标注：第 {'、'.join(map(str, tag.chapters))} 章")
    if args.write_known:
        header = "# 今天已知的章节标注不符（python -m tools.chapter_tags --write-known 生成）；修好标注后删掉对应行\n"
        KNOWN_FILE.write_text(header + "".join(f"{m.key}\n" for m in sorted(wrong, key=lambda m: m.key)),
                              encoding="utf-8")
        print(f"已写入 {KNOWN_FILE.relative_to(PROJECT_ROOT)}")
    return 1 if any(m.key not in allow for m in wrong) and not args.write_known else 0


if __name__ == "__main__":
    sys.exit(main())
