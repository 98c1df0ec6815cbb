"""用无头 Chromium 把全书单页 course.html 打印成 PDF。"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError, sync_playwright

from helpers.config import ConfigError
from tools.site.pages import PDF_NAME, SITE_DIR


def chromium_executable() -> str | None:
    """找本机的 Chromium（Debian 的 /usr/bin/chromium 等）；找不到返回 None。"""
    env = os.environ.get("LLM_UNIVERSE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def build_pdf(out: Path = SITE_DIR, timeout_s: float = 180) -> Path:
    """用无头 Chromium 把全书单页打印成 PDF（内嵌中文字体，书签按标题生成）。"""
    out = Path(out)
    source = out / "course.html"
    if not source.is_file():
        raise FileNotFoundError(f"没有 {source}：先运行 uv run python -m tools.site build")
    target = out / PDF_NAME
    external: list[str] = []

    def only_local(route) -> None:  # 不允许任何外部请求：网站必须自给自足
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium_executable(), args=args, timeout=timeout_s * 1000)
        except PlaywrightError as exc:
            raise ConfigError("无法启动 Chromium：Debian/Ubuntu 上运行 apt-get install -y chromium，"
                              "其他系统运行 uv run playwright install chromium，"
                              "或用 LLM_UNIVERSE_CHROMIUM 指定浏览器路径") from exc
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            page.route("**/*", only_local)
            page.goto(source.as_uri(), wait_until="load")
            page.evaluate("document.fonts.ready.then(() => document.fonts.size)")
            page.pdf(path=str(target), format="A4", print_background=True, outline=True, tagged=True,
                     margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
                     display_header_footer=True, header_template="<span></span>",
                     footer_template='<div style="font-size:8px;width:100%;text-align:center;color:#888">'
                                     '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
        finally:
            browser.close()
    if external:
        raise RuntimeError("网页请求了外部资源（网站应当自给自足）：" + ", ".join(external[:5]))
    return target
