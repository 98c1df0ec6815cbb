"""requirements.txt 与 uv.lock 保持一致：pip 用户装到的版本与 uv 用户相同。"""

import re
import tomllib

from helpers.config import PROJECT_ROOT


def test_requirements_pinned_from_lock_and_end_with_editable_install():
    lines = (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert lines[-1].strip() == "-e .", "requirements.txt 最后一行应为 -e .（安装 helpers 包）"
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked: dict[str, set[str]] = {}
    for pkg in lock["package"]:
        locked.setdefault(pkg["name"].lower(), set()).add(pkg.get("version", ""))
    pins = [re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", ln) for ln in lines]
    pins = [m for m in pins if m]
    assert len(pins) > 100
    for m in pins:
        name = m.group(1).lower().replace("_", "-")
        assert m.group(2) in locked.get(name, set()), f"{name}=={m.group(2)} 与 uv.lock 不一致：请重新导出"
    for core in ["langchain", "chromadb", "openai", "zhipuai", "pymupdf", "nbval", "jupyterlab"]:
        assert any(m.group(1).lower() == core for m in pins), core
