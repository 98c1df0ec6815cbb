"""环境检查：python -m helpers.doctor 打印一份可以整段贴进 issue 的中文报告（第 2 章）。

每项一行：✓ 正常，✗ 必须修复（离线课程跑不起来），! 提醒（不影响离线课程）。
离线课程能运行时退出码为 0，否则为 1。报告里的密钥一律遮盖。
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from helpers.config import (
    CACHE_DIR,
    ENV_FILE,
    IGNORE_DOTENV_VAR,
    PROJECT_ROOT,
    ConfigError,
    Settings,
    load_settings,
    mask_secret,
)
from helpers.course.notebook import cjk_font_path
from helpers.errors import explain_provider_error
from helpers.llm import default_model, get_openai_client
from helpers.providers import PROVIDERS, get_provider

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 没有 tomllib，用同源的 tomli（pytest 的依赖）
    import tomli as tomllib  # type: ignore[no-redef]

MIN_PYTHON = (3, 10)
MIN_SQLITE = (3, 35, 0)
LOCK_FILE = PROJECT_ROOT / "uv.lock"
KEY_PACKAGES = (
    "langchain", "langchain-core", "langchain-openai", "langchain-chroma", "langchain-community",
    "chromadb", "openai", "zhipuai", "pymupdf", "matplotlib", "fastapi", "gradio", "jieba", "rjieba",
)
PROBE_TIMEOUT = 15.0


@dataclass(frozen=True)
class Check:
    """一项检查的结果；required=False 的失败只是提醒，不影响退出码（第 2 章）。"""

    name: str
    ok: bool
    detail: str
    required: bool = True

    @property
    def symbol(self) -> str:
        """✓ 正常、✗ 必须修复、! 提醒（第 2 章）。"""
        return "✓" if self.ok else ("✗" if self.required else "!")

    def line(self) -> str:
        """报告中的一行。"""
        return f"{self.symbol} {self.name}：{self.detail}"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def check_python(info: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python 版本是否 ≥ 3.10（第 2 章）。"""
    text = ".".join(map(str, info))
    ok = tuple(info[:2]) >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    detail = f"{text}（需要 ≥ {need}）" if ok else f"{text} 太旧：请安装 Python ≥ {need}"
    return Check("Python 版本", ok, detail)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_file: Path = LOCK_FILE) -> dict[str, set[str]]:
    """读取 uv.lock 中每个包锁定的版本（同名包可能按 Python 版本锁定多个）（第 2 章）。"""
    with open(lock_file, "rb") as fh:
        data = tomllib.load(fh)
    out: dict[str, set[str]] = {}
    for pkg in data.get("package", []):
        if "name" in pkg and "version" in pkg:
            out.setdefault(_canonical(pkg["name"]), set()).add(str(pkg["version"]))
    return out


def check_packages(names: tuple[str, ...] = KEY_PACKAGES, lock_file: Path = LOCK_FILE) -> list[Check]:
    """关键依赖是否已安装、版本是否与 uv.lock 一致（第 2 章）。"""
    try:
        locked = locked_versions(lock_file)
    except (OSError, tomllib.TOMLDecodeError):
        locked = {}
    checks = []
    for name in names:
        try:
            installed = version(name)
        except PackageNotFoundError:
            hint = "未安装：请在项目根目录运行 uv sync（或 pip install -r requirements.txt）"
            checks.append(Check(f"依赖 {name}", False, hint))
            continue
        want = locked.get(_canonical(name))
        if not want:
            checks.append(Check(f"依赖 {name}", True, f"{installed}（uv.lock 中没有可比较的版本）"))
        elif installed in want:
            checks.append(Check(f"依赖 {name}", True, f"{installed}（与 uv.lock 一致）"))
        else:
            locked_text = " 或 ".join(sorted(want))
            checks.append(Check(
                f"依赖 {name}", False,
                f"已装 {installed}，uv.lock 锁定 {locked_text}：运行 uv sync 对齐，否则输出可能与课程不同",
                required=False,
            ))
    return checks


def check_env_file(env_file: Path = ENV_FILE) -> Check:
    """项目根目录是否有 .env（没有也能跑离线课程）（第 2 章）。"""
    ignored = os.environ.get(IGNORE_DOTENV_VAR) == "1"
    suffix = f"（{IGNORE_DOTENV_VAR}=1，本次忽略 .env）" if ignored else ""
    if env_file.is_file():
        return Check(".env 文件", True, f"已找到 {env_file.name}{suffix}")
    return Check(
        ".env 文件", False,
        "未找到：离线课程不需要它；要用真实模型请 cp .env.example .env 再填写" + suffix,
        required=False,
    )


def check_keys(settings: Settings) -> Check:
    """列出已设置的提供方密钥（遮盖后）（第 2 章）。"""
    parts = [
        f"{PROVIDERS[name].key_env}={mask_secret(key)}"
        for name, key in settings.api_keys.items() if key
    ]
    if not parts:
        return Check("提供方密钥", True, "一个也没有设置（离线课程不需要）")
    return Check("提供方密钥", True, "；".join(parts))


def check_model_call(settings: Settings) -> Check:
    """用当前提供方真实调用一次：离线时在进程内，真实提供方发一个极小的请求（第 2 章）。"""
    spec = get_provider(settings.llm_provider)
    name = f"模型调用（{spec.name}）"
    offline = spec.name == "offline"
    try:
        client = get_openai_client(settings=settings, timeout=PROBE_TIMEOUT, max_retries=0)
        resp = client.chat.completions.create(
            model=default_model(settings=settings),
            messages=[{"role": "user", "content": "请只回答一个字：好"}],
            max_tokens=8,
        )
    except Exception as exc:  # noqa: BLE001 - 报告里只要一句中文，不要回溯
        detail = explain_provider_error(exc, key_env=spec.key_env, key_url=spec.key_url,
                                        timeout=PROBE_TIMEOUT)
        if not offline:
            detail += "；离线课程不受影响（LLM_PROVIDER=offline）"
        return Check(name, False, detail, required=offline)
    usage = resp.usage.total_tokens if resp.usage else 0
    return Check(name, True, f"{resp.model} 回答正常（{usage} tokens）")


def check_sqlite(text: str = sqlite3.sqlite_version) -> Check:
    """SQLite 版本是否 ≥ 3.35（Chroma 需要）（第 2 章）。"""
    ok = _version_tuple(text) >= MIN_SQLITE
    detail = f"{text}（Chroma 需要 ≥ 3.35）" if ok else (
        f"{text} 太旧，Chroma 需要 ≥ 3.35：请升级 Python 或系统的 SQLite"
    )
    return Check("SQLite 版本", ok, detail)


def check_cjk_font() -> Check:
    """中文字体是否就绪：PyMuPDF 自带字体写到缓存并被 matplotlib 找到（第 2 章）。"""
    try:
        from matplotlib import font_manager  # 放在 try 里：matplotlib 坏了也只是一行报告

        path = cjk_font_path()
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
        found = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
    except Exception as exc:  # noqa: BLE001
        return Check("中文字体", False, f"无法准备中文字体（{type(exc).__name__}）：图中的中文会显示成方框")
    if Path(found).resolve() != path.resolve():
        return Check("中文字体", False, f"matplotlib 找到的是 {Path(found).name}，不是 {path.name}")
    return Check("中文字体", True, f"{family}（matplotlib 可用）")


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
        return True
    except OSError:
        return False


def check_writable(settings: Settings) -> Check:
    """向量库目录与缓存目录是否可写（第 2 章）。"""
    dirs = [settings.vector_db_dir, CACHE_DIR]
    bad = [d for d in dirs if not _writable(d)]

    def show(p: Path) -> str:
        try:
            return p.relative_to(PROJECT_ROOT).as_posix()
        except ValueError:
            return str(p)

    if bad:
        return Check("可写目录", False, "无法写入 " + "、".join(show(d) for d in bad) + "：请检查权限")
    return Check("可写目录", True, "、".join(show(d) for d in dirs))


def run_checks() -> list[Check]:
    """依次执行全部检查，返回结果列表（第 2 章）。"""
    checks = [check_python(), *check_packages(), check_env_file()]
    try:
        settings = load_settings()
    except ConfigError as exc:
        checks.append(Check("读取设置", False, str(exc)))
        settings = None
    if settings is not None:
        spec = get_provider(settings.llm_provider)
        model = settings.llm_model or spec.chat_model
        checks.append(Check("当前模型", True, f"{spec.name}（{spec.label}） {model}"))
        checks.append(check_keys(settings))
        checks.append(check_model_call(settings))
    checks.append(check_sqlite())
    checks.append(check_cjk_font())
    if settings is not None:
        checks.append(check_writable(settings))
    return checks


def report(checks: list[Check]) -> str:
    """把检查结果排成可粘贴的中文报告（第 2 章）。"""
    lines = [
        "LLM Universe 环境检查（可整段粘贴到 issue 中，密钥已遮盖）",
        f"系统：{platform.system()} {platform.release()} {platform.machine()}",
        *[c.line() for c in checks],
    ]
    failed = [c for c in checks if not c.ok and c.required]
    warned = [c for c in checks if not c.ok and not c.required]
    if failed:
        lines.append(f"结论：有 {len(failed)} 项必须修复（✗），离线课程暂时无法运行")
    else:
        extra = f"；另有 {len(warned)} 项提醒（!）" if warned else ""
        lines.append("结论：离线课程可以运行" + extra)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """命令行入口：打印报告，离线课程可运行时返回 0，否则返回 1（第 2 章）。"""
    checks = run_checks()
    print(report(checks))
    return 0 if all(c.ok or not c.required for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
