"""重新执行全部笔记本并就地保存输出（离线、从上到下），提交前在仓库根目录运行：uv run python -m tools.notebooks。"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from helpers.config import PROJECT_ROOT
from helpers.netguard import offline_env

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


SOLUTIONS_SUFFIX = "_solutions"  # 每章的参考答案：CN_xxx/CN_xxx_solutions.ipynb


def all_notebooks() -> list[Path]:
    """课程的全部笔记本（各章与它们的参考答案），按章节排序。"""
    return sorted(p for p in NOTEBOOK_DIR.glob("C*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def chapter_notebooks() -> list[Path]:
    """各章的正文笔记本（不含 *_solutions 参考答案），按章节排序。"""
    return [p for p in all_notebooks() if not p.stem.endswith(SOLUTIONS_SUFFIX)]


def solutions_for(chapter: Path) -> Path:
    """一章的参考答案笔记本：同目录的 <章名>_solutions.ipynb。"""
    return chapter.with_name(chapter.stem + SOLUTIONS_SUFFIX + chapter.suffix)


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    """去掉每次运行都会变的元数据：单元的执行时间戳与小部件状态，不写进仓库。"""
    # 为什么手写：nbstripout / nbdev_clean 不在 uv.lock 里，而这里只需去掉两个键
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def execute(path: Path, timeout: int = 600, save: bool = True) -> float:
    """在笔记本所在目录用离线环境启动内核、执行并就地保存（save=False 只计时），返回耗时（秒）。"""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # 离线环境只传给内核进程（jupyter_client 的 start_kernel(env=…)），本进程的 os.environ 不动
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=offline_env())
    strip_volatile_metadata(nb)
    if save:
        nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.notebooks", description="离线重新执行笔记本并保存输出")
    parser.add_argument("names", nargs="*", help="章节名或路径，如 C1 或 notebooks/C2_api/C2_api.ipynb；缺省为全部")
    parser.add_argument("--no-save", action="store_true", help="只执行并计时，不改动笔记本（教师估算课时用）")
    args = parser.parse_args(argv)
    targets = all_notebooks()
    if args.names:
        targets = [p for p in targets if any(n in str(p) for n in args.names)]
    if not targets:
        print("没有找到要执行的笔记本", file=sys.stderr)
        return 1
    for path in targets:
        secs = execute(path, save=not args.no_save)
        print(f"{path.relative_to(PROJECT_ROOT)}：{secs:.1f} 秒")
    return 0


if __name__ == "__main__":
    sys.exit(main())
