"""笔记本的统一开头：中文字体、版本与当前模型（各章第一个代码单元）。"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from helpers.config import CACHE_DIR, Settings, load_settings
from helpers.providers import get_provider

# 中文字体（下面的 Droid Sans Fallback 或系统中文字体）负责的码位，写成 CSS 的 unicode-range：
# CJK 部首与符号、标点、假名、汉字（含扩展 A、兼容区、扩展 B 起的增补平面）、竖排与全角形式
CJK_FONT_RANGES = ("U+2E80-2FFF, U+3000-33FF, U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+FE30-FE4F, "
                   "U+FF00-FFEF, U+20000-2FFFF")
CORE_PACKAGES = ("langchain", "langchain-openai", "chromadb", "openai", "zhipuai", "pymupdf", "matplotlib")


def package_versions(names: tuple[str, ...] = CORE_PACKAGES) -> dict[str, str]:
    """核心依赖的已安装版本（第 1 章）。"""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "未安装"
    return out


def cjk_font_path() -> Path:
    """把 PyMuPDF 自带的中文字体（Droid Sans Fallback）写到缓存目录，返回路径（第 1 章）。"""
    path = CACHE_DIR / "fonts" / "DroidSansFallback.ttf"
    if not path.is_file():
        import pymupdf  # 导入要几秒，字体已缓存时就不必导入

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pymupdf.Font("cjk").buffer)
        tmp.replace(path)
    return path


def use_cjk_font() -> str:
    """让 matplotlib 能显示中文：注册随 PyMuPDF 分发的字体，任何新机器都可用（第 1 章）。"""
    import matplotlib
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
    matplotlib.rcParams["axes.unicode_minus"] = False
    matplotlib.rcParams["svg.hashsalt"] = "llm-universe"
    return name


def describe_provider(settings: Settings | None = None) -> str:
    """一行说明当前使用的模型，例如"当前模型：offline（离线教学模型）"（第 1 章）。"""
    settings = settings or load_settings()
    spec = get_provider(settings.llm_provider)
    model = settings.llm_model or spec.chat_model
    text = f"当前模型：{spec.name}（{spec.label}） {model}"
    emb = get_provider(settings.embedding_provider)
    return text + f"；嵌入：{emb.name}（{emb.label}）"


def setup(show_versions: bool = True) -> Settings:
    """各章的开头：配置中文字体，打印版本与当前模型（第 1 章）。"""
    use_cjk_font()
    settings = load_settings()
    if show_versions:
        vers = package_versions()
        print(f"Python {platform.python_version()} | " + " | ".join(f"{k} {v}" for k, v in vers.items()))
    print(describe_provider(settings))
    return settings
