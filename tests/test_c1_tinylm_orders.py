"""第 1 章的困惑度曲线只训练一次 5 元模型，低阶模型用 truncated() 取它的前几张计数表：这与单独训练低阶模型完全相同。"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.tinylm import train_char_ngram

TEXTS = ["大语言模型预测下一个字。", "语言模型的任务是预测下一个词，模型越大越好。", "检索增强生成先检索再生成。"]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_truncated_tables_equal_a_model_trained_at_that_order(order: int) -> None:
    full = train_char_ngram(TEXTS, order=5)
    low = full.truncated(order)
    trained = train_char_ngram(TEXTS, order=order)
    assert low.parameters == trained.parameters
    for context in ["", "模", "语言", "预测下一", "没见过的前文"]:
        assert np.allclose(low.distribution(context), trained.distribution(context))
    held_out = "模型预测下一个词。"
    assert low.perplexity(held_out) == pytest.approx(trained.perplexity(held_out))


def test_truncated_rejects_orders_it_cannot_give() -> None:
    full = train_char_ngram(TEXTS, order=3)
    for bad in (0, 4):
        with pytest.raises(ValueError, match="order"):
            full.truncated(bad)


def test_longer_context_fits_training_text_better() -> None:
    text = TEXTS[1]
    perplexities = [train_char_ngram(TEXTS, order=n).perplexity(text) for n in range(1, 6)]
    assert perplexities == sorted(perplexities, reverse=True)
