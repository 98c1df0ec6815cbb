"""第 2 章的价格表：每个要付费的提供方都写明价格出处，核对日期要么是一个不晚于今天的日期，要么留空（未核实）。"""

from __future__ import annotations

import datetime as dt

import pytest

from helpers.providers import PRICES_UNCONFIRMED, PROVIDERS

PAID = [name for name, p in PROVIDERS.items() if p.needs_key]


@pytest.mark.parametrize("name", PAID)
def test_every_paid_provider_names_where_its_price_comes_from(name):
    p = PROVIDERS[name]
    assert p.price_source.startswith("https://"), f"{name} 没写价格出处"
    if p.price_checked:
        checked = dt.date.fromisoformat(p.price_checked)
        assert dt.date(2025, 1, 1) <= checked <= dt.date.today()


def test_local_models_cost_nothing_and_unconfirmed_prices_say_so():
    for p in PROVIDERS.values():
        if not p.needs_key:
            assert p.price_in == p.price_out == 0
    assert "未能" in PRICES_UNCONFIRMED and "2026-12-01" in PRICES_UNCONFIRMED  # 笔记本的表注直接引用这句话


def _site(url: str) -> str:
    """网址的主域名（最后两段），如 developers.openai.com → openai.com。"""
    from urllib.parse import urlparse

    return ".".join((urlparse(url).hostname or "").split(".")[-2:])


@pytest.mark.parametrize("name", [n for n in PAID if PROVIDERS[n].price_checked])
def test_a_checked_price_was_read_on_the_vendors_own_site(name):
    """核对过的价格只能来自厂商自己的网站（第三方标价留空 price_checked，算"未能核实"）。"""
    p = PROVIDERS[name]
    assert _site(p.price_source) in {_site(p.base_url), _site(p.key_url)}, p.price_source


def test_current_checked_prices():
    """2026-12-01 在厂商页面读到的价格（每百万 token）：C2 的费用表与估算用的就是它们。"""
    got = {n: (p.chat_model, p.price_in, p.price_out, p.currency) for n, p in PROVIDERS.items() if p.price_checked}
    assert got == {
        "openai": ("gpt-6-luna", 0.10, 0.50, "USD"),  # developers.openai.com/api/docs/models/gpt-6-luna
        "zhipuai": ("glm-4-flash-250414", 0.0, 0.0, "CNY"),  # docs.bigmodel.cn …/free/glm-4-flash-250414
        "deepseek": ("deepseek-flash", 2.0, 8.0, "CNY"),  # api-docs.deepseek.com/zh-cn/quick_start/pricing 高峰时段
    }
