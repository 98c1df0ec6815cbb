"""承诺 2：把 .env 换成另一个模型，同样的单元格一个也不报错。

聊天模型换成回环地址上的“另一个模型”（tests/support/othermodel.py，措辞与离线模型完全不同），
用 nbval 宽松模式（只要求不报错、不比对输出）把笔记本从头跑到尾。嵌入仍用离线嵌入。
每一章（连同它的 *_solutions）都在这里跑一遍，新加的章自动包括在内。
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers import netguard
from helpers.config import PROJECT_ROOT
from tests.support.othermodel import create_app
from tests.support.servers import serve_in_thread
from tools.notebooks import chapter_notebooks

CHAPTERS = [path.parent.name for path in chapter_notebooks()]


@pytest.fixture(scope="module")
def other_model_url() -> str:
    with serve_in_thread(create_app()) as base:
        yield base + "/v1"


def _notebooks(chapter: str) -> list[str]:
    folder = PROJECT_ROOT / "notebooks" / chapter
    return [str(p.relative_to(PROJECT_ROOT)) for p in sorted(folder.glob("*.ipynb"))]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_cell_runs_on_another_model(chapter: str, other_model_url: str) -> None:
    env = netguard.offline_env()
    env.update({"LLM_UNIVERSE_LIVE": "1", "LLM_PROVIDER": "vllm", "VLLM_BASE_URL": other_model_url,
                "LLM_MODEL": "other-model", "EMBEDDING_PROVIDER": "offline"})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "-o", "addopts=", "--color=no", "--nbval-cell-timeout=300", *_notebooks(chapter)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)  # 内核回溯里的颜色码
    failed = re.findall(r"^FAILED (.+)$", out, flags=re.MULTILINE)
    assert run.returncode == 0, (
        f"{chapter} 换成另一个模型后有单元格报错（{len(failed)} 个）：\n" + "\n".join(failed)
        + "\n\n" + out[-4000:] + run.stderr[-2000:]
    )
    assert re.search(r"\d+ passed", out), out[-2000:]
