"""helpers.doctor：离线时退出码为 0，报告里从不出现密钥。"""

from __future__ import annotations

from helpers import doctor
from helpers.config import load_settings

FAKE_KEY = "fake-zhipu-id.s3cr3t-value-for-doctor"


def test_doctor_offline_exit_zero_and_key_hidden(monkeypatch, capsys):
    monkeypatch.setenv("ZHIPUAI_API_KEY", FAKE_KEY)
    assert doctor.main() == 0
    out = capsys.readouterr().out
    assert FAKE_KEY not in out
    assert "s3cr3t" not in out
    assert "ZHIPUAI_API_KEY=fake…" in out  # 只露出前 4 位
    assert "✓ 模型调用（offline）" in out
    assert "结论：离线课程可以运行" in out
    assert "✗" not in out


def test_run_checks_are_structured():
    checks = doctor.run_checks()
    names = [c.name for c in checks]
    for expected in ("Python 版本", "依赖 langchain", ".env 文件", "当前模型", "SQLite 版本",
                     "中文字体", "可写目录"):
        assert expected in names
    assert all(isinstance(c.detail, str) and c.detail for c in checks)


def test_version_checks():
    assert doctor.check_python((3, 11, 7)).ok
    old = doctor.check_python((3, 9, 18))
    assert not old.ok and old.required and old.symbol == "✗"
    assert doctor.check_sqlite("3.35.0").ok
    assert not doctor.check_sqlite("3.31.1").ok


def test_lock_mismatch_is_a_warning(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "openai"\nversion = "0.0.1"\n', encoding="utf-8")
    [check] = doctor.check_packages(("openai",), lock_file=lock)
    assert not check.ok and not check.required and check.symbol == "!"
    assert "uv.lock 锁定 0.0.1" in check.detail
    [missing] = doctor.check_packages(("no-such-package-xyz",), lock_file=lock)
    assert not missing.ok and missing.required


def test_real_provider_failure_is_reported_in_chinese_not_fatal():
    # 测试中外网被禁止：连接失败应当是一句中文提醒，而不是回溯，也不影响退出码
    settings = load_settings(llm_provider="deepseek", api_keys={"deepseek": FAKE_KEY})
    check = doctor.check_model_call(settings)
    assert not check.ok and not check.required
    assert "连接失败" in check.detail and "离线课程不受影响" in check.detail
    assert FAKE_KEY not in check.line()


def test_missing_key_is_reported():
    check = doctor.check_model_call(load_settings(llm_provider="zhipuai"))
    assert not check.ok and "未找到 ZHIPUAI_API_KEY" in check.detail


def test_bad_setting_fails(monkeypatch):
    monkeypatch.setenv("LLM_TIMEOUT", "abc")
    checks = doctor.run_checks()
    bad = [c for c in checks if c.name == "读取设置"]
    assert bad and bad[0].symbol == "✗"
    assert "结论：有 1 项必须修复" in doctor.report(checks)

