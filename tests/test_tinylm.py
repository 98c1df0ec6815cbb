"""字符 n 元语言模型：分布完整、温度与 top-p 真的改变分布、同一种子写出同一段话。"""

import numpy as np
import pytest

from helpers.tinylm import apply_temperature, entropy_bits, top_p_filter, train_char_ngram

TEXTS = ["大模型应用开发很有趣。", "大模型会预测下一个字。", "向量数据库存放向量。"]


@pytest.fixture(scope="module")
def model():
    return train_char_ngram(TEXTS, order=3)


@pytest.mark.parametrize("context", ["", "大", "大模", "没见过的前文", "向量"])
def test_every_context_gets_a_full_distribution(model, context):
    probs = model.distribution(context)
    assert probs.shape == (len(model.vocab),)
    assert probs.sum() == pytest.approx(1.0)
    assert (probs > 0).all()  # 插值到单字频率：字表里的每个字都有机会


def test_seen_context_predicts_what_followed_it(model):
    best, p = model.top_next("大模", 1)[0]
    assert best == "型" and p > 0.5


def test_temperature_reshapes_the_distribution(model):
    probs = model.distribution("大")
    assert entropy_bits(apply_temperature(probs, 0.5)) < entropy_bits(probs) < entropy_bits(apply_temperature(probs, 2))
    greedy = apply_temperature(probs, 0)
    assert greedy.max() == 1.0 and int(np.argmax(greedy)) == int(np.argmax(probs))
    assert apply_temperature(probs, 1.0) == pytest.approx(probs)
    with pytest.raises(ValueError):
        apply_temperature(probs, -1)


def test_top_p_keeps_the_smallest_head_that_reaches_p():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    assert top_p_filter(probs, 0.8) == pytest.approx([0.625, 0.375, 0, 0])
    assert top_p_filter(probs, 1.0) == pytest.approx(probs)
    assert top_p_filter(probs, 0.1) == pytest.approx([1, 0, 0, 0])
    with pytest.raises(ValueError):
        top_p_filter(probs, 0)


def test_generation_is_reproducible_and_greedy_is_deterministic(model):
    assert model.generate("大", 10, temperature=1.0, seed=3) == model.generate("大", 10, temperature=1.0, seed=3)
    greedy = model.generate("大", 4, temperature=0, seed=1)
    assert greedy == model.generate("大", 4, temperature=0, seed=2) and greedy.startswith("模型")


def test_perplexity_prefers_real_word_order(model):
    assert model.perplexity("大模型应用") < model.perplexity("用应型模大")
    with pytest.raises(ValueError, match="字表"):
        model.perplexity("xyz")


def test_bad_training_input_says_why():
    with pytest.raises(ValueError, match="为空"):
        train_char_ngram(["", ""])
    with pytest.raises(ValueError, match="order"):
        train_char_ngram(TEXTS, order=0)
