"""配置：从环境变量与项目根目录的 .env 读取设置（第 2 章 · 调用大模型 API）。"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from dotenv import dotenv_values

from helpers.errors import ConfigError
from helpers.providers import PROVIDERS, resolve_provider_name

PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent
DATA_DIR: Path = PROJECT_ROOT / "data"
KNOWLEDGE_DIR: Path = DATA_DIR / "knowledge_db"
EVAL_DIR: Path = DATA_DIR / "eval"
VECTOR_DB_DIR: Path = DATA_DIR / "vector_db"
CACHE_DIR: Path = PROJECT_ROOT / ".cache"
ENV_FILE: Path = PROJECT_ROOT / ".env"

# 置为 1 时完全忽略 .env（测试用：无论本机 .env 写了什么，都跑离线课程）
IGNORE_DOTENV_VAR = "LLM_UNIVERSE_IGNORE_DOTENV"

__all__ = [
    "CACHE_DIR", "DATA_DIR", "ENV_FILE", "EVAL_DIR", "IGNORE_DOTENV_VAR", "KNOWLEDGE_DIR", "PROJECT_ROOT",
    "VECTOR_DB_DIR", "ConfigError", "Settings", "check_base_url", "load_settings", "mask_secret", "read_env",
]

_URL_RE = re.compile(r"^https?://[A-Za-z0-9.\-_\[\]:]+(/[^\s]*)?$")


def mask_secret(value: str | None) -> str:
    """把密钥遮成 'sk-a…(共 N 位)'，只露出前 4 位（第 2 章）。"""
    if not value:
        return "（未设置）"
    head = value[:4] if len(value) > 8 else ""
    return f"{head}…(共 {len(value)} 位，已隐藏)"


@dataclass(frozen=True)
class Settings:
    """课程的全部设置；repr 中的密钥一律遮盖（第 7 章）。"""

    llm_provider: str = "offline"
    llm_model: str | None = None
    embedding_provider: str = "offline"
    embedding_model: str | None = None
    rerank_provider: str = "offline"  # 重排序用哪家：offline（离线重排序器）或有重排序接口的提供方（第 8 章）
    rerank_model: str | None = None  # 留空用该提供方的默认重排序模型（providers.py 的 rerank_model）
    judge_provider: str | None = None  # 大模型裁判用哪家：留空同 llm_provider（第 6 章：裁判最好换一家厂商）
    judge_model: str | None = None  # 留空时：judge_provider 也空则同 llm_model，否则用该提供方的默认模型
    temperature: float = 0.0
    timeout: float = 60.0
    max_retries: int = 3
    llm_cache: bool = False
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_token: str | None = None  # Chroma 服务前面那道门要的令牌（请求头 X-Chroma-Token，见 docker-compose.yml）
    vector_db_dir: Path = VECTOR_DB_DIR
    app_token: str | None = None
    api_keys: Mapping[str, str] = field(default_factory=dict)
    base_urls: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_keys":
                value = {k: mask_secret(v) for k, v in value.items()}
            elif f.name in {"app_token", "chroma_token"} and value:
                value = mask_secret(value)
            parts.append(f"{f.name}={value!r}")
        return "Settings(" + ", ".join(parts) + ")"

    __str__ = __repr__

    def key_for(self, provider: str) -> str | None:
        """返回某个提供方的 API Key（不打印）（第 2 章）。"""
        return self.api_keys.get(provider)

    def with_overrides(self, **changes: object) -> Settings:
        """返回改动了若干字段的新设置（第 2 章）。"""
        return replace(self, **changes)


def read_env(env_file: Path | None = None) -> dict[str, str]:
    """合并 .env 与环境变量：环境变量优先；去掉空值（第 2 章）。"""
    merged: dict[str, str] = {}
    if os.environ.get(IGNORE_DOTENV_VAR) != "1":
        path = env_file if env_file is not None else ENV_FILE
        if path.is_file():
            merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ)
    return {k: v.strip() for k, v in merged.items() if v is not None and v.strip() != ""}




def _to_bool(name: str, raw: str) -> bool:
    low = raw.lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} 不是布尔值：请写 true 或 false")


def _to_number(name: str, raw: str, kind: type) -> float | int:
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} 不是合法的数字：请在 .env 中改为数字") from None


def check_base_url(name: str, url: str) -> str:
    """检查 base URL 形如 http(s)://host[:port]/path，否则报中文错误（第 2 章）。"""
    if not _URL_RE.match(url):
        raise ConfigError(
            f"{name}={url!r} 不是合法的地址：应形如 https://api.example.com/v1（以 http:// 或 https:// 开头）"
        )
    return url.rstrip("/")


def load_settings(env_file: Path | None = None, **overrides: object) -> Settings:
    """读取设置：参数 > 环境变量 > 项目根目录 .env > 默认值（第 2 章）。"""
    env = read_env(env_file)
    keys: dict[str, str] = {}
    urls: dict[str, str] = {}
    for name, spec in PROVIDERS.items():
        if spec.key_env and spec.key_env in env:
            keys[name] = env[spec.key_env]
        url_var = f"{spec.env_prefix}_BASE_URL"
        if url_var in env:
            urls[name] = check_base_url(url_var, env[url_var])

    values: dict[str, object] = {
        "llm_provider": resolve_provider_name(env.get("LLM_PROVIDER", "offline"), "LLM_PROVIDER"),
        "llm_model": env.get("LLM_MODEL"),
        "embedding_provider": resolve_provider_name(
            env.get("EMBEDDING_PROVIDER", "offline"), "EMBEDDING_PROVIDER"
        ),
        "embedding_model": env.get("EMBEDDING_MODEL"),
        "rerank_provider": resolve_provider_name(env.get("RERANK_PROVIDER", "offline"), "RERANK_PROVIDER"),
        "rerank_model": env.get("RERANK_MODEL"),
        "judge_provider": (resolve_provider_name(env["JUDGE_PROVIDER"], "JUDGE_PROVIDER")
                           if "JUDGE_PROVIDER" in env else None),
        "judge_model": env.get("JUDGE_MODEL"),
        "api_keys": keys,
        "base_urls": urls,
    }
    if "LLM_TEMPERATURE" in env:
        values["temperature"] = _to_number("LLM_TEMPERATURE", env["LLM_TEMPERATURE"], float)
    if "LLM_TIMEOUT" in env:
        values["timeout"] = _to_number("LLM_TIMEOUT", env["LLM_TIMEOUT"], float)
    if "LLM_MAX_RETRIES" in env:
        values["max_retries"] = _to_number("LLM_MAX_RETRIES", env["LLM_MAX_RETRIES"], int)
    if "LLM_CACHE" in env:
        values["llm_cache"] = _to_bool("LLM_CACHE", env["LLM_CACHE"])
    if "CHROMA_HOST" in env:
        values["chroma_host"] = env["CHROMA_HOST"]
    if "CHROMA_PORT" in env:
        values["chroma_port"] = _to_number("CHROMA_PORT", env["CHROMA_PORT"], int)
    if "CHROMA_TOKEN" in env:
        values["chroma_token"] = env["CHROMA_TOKEN"] or None
    if "VECTOR_DB_DIR" in env:
        p = Path(env["VECTOR_DB_DIR"]).expanduser()
        values["vector_db_dir"] = p if p.is_absolute() else PROJECT_ROOT / p
    if "APP_TOKEN" in env:
        values["app_token"] = env["APP_TOKEN"]
    values.update(overrides)
    if "llm_provider" in overrides:
        values["llm_provider"] = resolve_provider_name(str(overrides["llm_provider"]), "llm_provider")
    if "embedding_provider" in overrides:
        values["embedding_provider"] = resolve_provider_name(
            str(overrides["embedding_provider"]), "embedding_provider"
        )
    if "rerank_provider" in overrides:
        values["rerank_provider"] = resolve_provider_name(str(overrides["rerank_provider"]), "rerank_provider")
    if overrides.get("judge_provider"):
        values["judge_provider"] = resolve_provider_name(str(overrides["judge_provider"]), "judge_provider")
    return Settings(**values)  # type: ignore[arg-type]
