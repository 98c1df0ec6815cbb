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
