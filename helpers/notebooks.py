"""重新执行全部笔记本并就地保存输出（离线、从上到下），提交前运行：python -m helpers.notebooks。"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from helpers.config import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


def offline_env() -> dict[str, str]:
    """与 pytest 相同的离线环境：忽略 .env、禁止外网、固定哈希种子（测试约定）。"""
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("_API_KEY") or k.endswith("_BASE_URL") or k.startswith("LLM_"))}
    env.pop("CHROMA_HOST", None)
    env.update({
        "LLM_UNIVERSE_IGNORE_DOTENV": "1", "LLM_UNIVERSE_NO_NETWORK": "1",
        "LLM_PROVIDER": "offline", "EMBEDDING_PROVIDER": "offline",
        "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    })
    return env


def all_notebooks() -> list[Path]:
    """课程的全部笔记本，按章节排序（测试约定）。"""
    return sorted(p for p in NOTEBOOK_DIR.glob("C*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def execute(path: Path, timeout: int = 600, save: bool = True) -> float:
    """在笔记本所在目录执行并就地保存（save=False 只计时），返回耗时（秒）（测试约定）。"""
    import nbformat
    from nbclient import NotebookClient

    old, env = dict(os.environ), offline_env()  # 先算好离线环境：清空之后就读不到 PATH 等变量了
    os.environ.clear()
    os.environ.update(env)
    try:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        nb.metadata.pop("widgets", None)
        for cell in nb.cells:  # 执行时间戳每次都变，不写进仓库
            cell.metadata.pop("execution", None)
        if save:
            nbformat.write(nb, path)
        return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="离线重新执行笔记本并保存输出")
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
