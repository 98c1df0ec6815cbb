"""helpers.config：设置的优先级、密钥遮盖与中文错误。"""

from __future__ import annotations

import pytest

from helpers.config import IGNORE_DOTENV_VAR, ConfigError, Settings, load_settings, mask_secret
from helpers.llm import get_chat_model

FAKE_KEY = "fake-zhipu-key.0123456789abcdef"


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    """一个临时 .env；conftest 默认忽略 .env，这里关掉这个开关。"""
    monkeypatch.delenv(IGNORE_DOTENV_VAR, raising=False)
    monkeypatch.delenv("LLM_PROVIDER", raising=False)
    monkeypatch.delenv("LLM_TEMPERATURE", raising=False)
    path = tmp_path / ".env"
    path.write_text(
        "LLM_PROVIDER=deepseek\nLLM_TEMPERATURE=0.5\nLLM_TIMEOUT=12\nDEEPSEEK_API_KEY=from-dotenv-123456\n",
        encoding="utf-8",
    )
    return path


def test_defaults_are_offline(tmp_path):
    s = load_settings(env_file=tmp_path / "missing.env")
    assert s.llm_provider == "offline"
    assert s.embedding_provider == "offline"
    assert s.temperature == 0.0
    assert s.api_keys == {}


def test_dotenv_beats_default(env_file):
    s = load_settings(env_file=env_file)
    assert s.llm_provider == "deepseek"
    assert s.temperature == 0.5
    assert s.timeout == 12.0
    assert s.key_for("deepseek") == "from-dotenv-123456"


def test_environment_beats_dotenv(env_file, monkeypatch):
    monkeypatch.setenv("LLM_TEMPERATURE", "0.7")
    monkeypatch.setenv("LLM_PROVIDER", "kimi")  # 别名也能用
    s = load_settings(env_file=env_file)
    assert s.temperature == 0.7
    assert s.llm_provider == "moonshot"
    assert s.timeout == 12.0  # 环境里没有的仍取自 .env


def test_explicit_override_beats_everything(env_file, monkeypatch):
    monkeypatch.setenv("LLM_TEMPERATURE", "0.7")
    s = load_settings(env_file=env_file, temperature=0.9, llm_provider="智谱")
    assert s.temperature == 0.9
    assert s.llm_provider == "zhipuai"


def test_ignore_dotenv_switch(env_file, monkeypatch):
    monkeypatch.setenv(IGNORE_DOTENV_VAR, "1")
    s = load_settings(env_file=env_file)
    assert s.llm_provider == "offline"
    assert "deepseek" not in s.api_keys


def test_repr_and_str_never_show_keys():
    s = load_settings(api_keys={"zhipuai": FAKE_KEY}, app_token="app-token-abcdefgh")
    for text in (repr(s), str(s), f"{s}"):
        assert FAKE_KEY not in text
        assert "app-token-abcdefgh" not in text
        assert "已隐藏" in text
    assert s.key_for("zhipuai") == FAKE_KEY  # 代码里仍能取到


def test_mask_secret():
    assert mask_secret(FAKE_KEY) == f"fake…(共 {len(FAKE_KEY)} 位，已隐藏)"
    assert mask_secret("short") == "…(共 5 位，已隐藏)"  # 短密钥一个字符也不露
    assert mask_secret(None) == "（未设置）"


def test_unknown_provider_error_in_chinese(monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "gpt5-magic")
    with pytest.raises(ConfigError, match="未知的提供方 LLM_PROVIDER='gpt5-magic'"):
        load_settings()


def test_malformed_base_url(monkeypatch):
    monkeypatch.setenv("ZHIPUAI_BASE_URL", "open.bigmodel.cn/api")
    with pytest.raises(ConfigError, match="ZHIPUAI_BASE_URL=.*不是合法的地址"):
        load_settings()


def test_base_url_trailing_slash_removed(monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1/")
    assert load_settings().base_urls["ollama"] == "http://127.0.0.1:11434/v1"


def test_non_numeric_timeout(monkeypatch):
    monkeypatch.setenv("LLM_TIMEOUT", "一分钟")
    with pytest.raises(ConfigError, match="LLM_TIMEOUT=.*不是合法的数字"):
        load_settings()


def test_bad_boolean(monkeypatch):
    monkeypatch.setenv("LLM_CACHE", "maybe")
    with pytest.raises(ConfigError, match="不是布尔值"):
        load_settings()


def test_missing_key_for_zhipuai_chat_model():
    settings = load_settings(llm_provider="zhipuai")
    with pytest.raises(ConfigError, match="未找到 ZHIPUAI_API_KEY.*LLM_PROVIDER 设为 offline"):
        get_chat_model(settings=settings)


def test_settings_is_immutable():
    s = Settings()
    with pytest.raises(AttributeError):
        s.temperature = 1.0  # type: ignore[misc]
    assert s.with_overrides(temperature=1.0).temperature == 1.0
