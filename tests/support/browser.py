"""测试用的浏览器：优先 Playwright 自己装的 Chromium，其次系统的 chromium；都没有时跳过（CI=true 时失败）。"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SKIP_VAR = "LLM_UNIVERSE_SKIP_BROWSER"
SYSTEM_CHROMIUM = "/usr/bin/chromium"
NO_BROWSER = "没有找到浏览器：运行 uv run playwright install chromium 或 apt-get install chromium"


def find_chromium(bundled: str | None, system: str | None = SYSTEM_CHROMIUM) -> str | None:
    """Playwright 自己装的 Chromium 优先，其次是系统的 chromium；都没有时返回 None。"""
    for candidate in (bundled, system):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def require_browser(found: str | None) -> str:
    """找到了就用；没找到时跳过并说明怎么装，CI（CI=true）里则算失败。"""
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(NO_BROWSER)
    pytest.skip(NO_BROWSER)


def browser_or_skip() -> str:
    """本机可用的 Chromium 路径；设了 LLM_UNIVERSE_SKIP_BROWSER=1 或找不到时跳过（CI 里找不到算失败）。"""
    if os.environ.get(SKIP_VAR) == "1":
        pytest.skip(f"{SKIP_VAR}=1：跳过浏览器测试")
    from playwright.sync_api import sync_playwright  # 启动 Playwright 的驱动要 0.3 秒左右：用到浏览器时才导入

    with sync_playwright() as p:
        bundled = p.chromium.executable_path
    system = shutil.which("chromium") or SYSTEM_CHROMIUM
    return require_browser(find_chromium(bundled, system))
