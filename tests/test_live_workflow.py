"""每周的真实检查（live.yml）：每个配了密钥的提供方跑 doctor --strict，能失败；没密钥的跳过并记进摘要。

actionlint 在 lint 工作流里检查语法；这里检查离线也能验证的部分：YAML 能解析、矩阵覆盖提供方表的每一行、
严格那一步没有 continue-on-error 且管道不吞掉退出码、run 块是合法的 bash、读提供方表的那行 Python 真能运行。
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers.config import PROJECT_ROOT
from helpers.providers import PROVIDERS

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "live.yml"
KEYED = sorted(name for name, spec in PROVIDERS.items() if spec.needs_key)


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 把 on 读成 True
    return data


def _step(job: dict, name: str) -> dict:
    [step] = [s for s in job["steps"] if s.get("name") == name]
    return step


def test_strict_job_covers_every_keyed_provider_and_keeps_keys_in_secrets(workflow):
    assert "schedule" in workflow["on"] and "workflow_dispatch" in workflow["on"]
    job = workflow["jobs"]["strict"]
    assert sorted(job["strategy"]["matrix"]["provider"]) == KEYED
    assert job["strategy"]["fail-fast"] is False  # 一家坏了，别的照样查
    for name in ("strict", "live"):
        env = workflow["jobs"][name]["env"]
        for provider in KEYED:
            key_env = PROVIDERS[provider].key_env
            assert env[key_env] == f"${{{{ secrets.{key_env} }}}}", (name, key_env)
        assert env["LLM_UNIVERSE_LIVE"] == "1"


def test_strict_step_can_fail_and_skipped_rows_are_reported(workflow):
    job = workflow["jobs"]["strict"]
    assert "continue-on-error" not in job
    strict = _step(job, "Doctor, strict (chat, stream usage, embeddings, tool call)")
    assert "python -m helpers.doctor --strict" in strict["run"] and not strict.get("continue-on-error")
    assert "set -o pipefail" in strict["run"]  # | tee 不能吞掉 doctor 的退出码
    assert strict["if"] == "steps.secret.outputs.present == 'true'"
    secret = _step(job, "Is the secret present?")
    assert secret["id"] == "secret" and "跳过" in secret["run"] and "GITHUB_STEP_SUMMARY" in secret["run"]
    assert all(not s.get("continue-on-error") for s in job["steps"])


def test_provider_lookup_in_the_secret_step_runs(workflow):
    run = _step(workflow["jobs"]["strict"], "Is the secret present?")["run"]
    [code] = re.findall(r'python -c "([^"]+)"', run)
    for provider in KEYED:
        out = subprocess.run([sys.executable, "-c", code.replace("${LLM_PROVIDER}", provider)], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=30, check=True).stdout.split()
        spec = PROVIDERS[provider]
        assert out == [spec.key_env, provider if spec.embedding_model else "offline"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="没有 bash")
def test_every_run_block_is_valid_bash(workflow):
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                result = subprocess.run(["bash", "-n"], input=step["run"], capture_output=True, text=True, timeout=10)
                assert result.returncode == 0, (step.get("name"), result.stderr)
