"""拒答判定不被引文骗到，回答打分时中文数字与阿拉伯数字算同一个数（第 6 章的 A037 与 C007）。"""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.vectorstores import InMemoryVectorStore

from helpers import evaluation as ev
from helpers.evaluation.metrics import normalize_numerals
from helpers.llm import get_embeddings
from helpers.offline.engine import NOT_FOUND
from helpers.rag import NO_ANSWER, build_rag_chain, is_refusal

# —— 拒答 ——

A037_REFERENCE = ("提示层面：先让模型在 <quotes> 中摘出相关原句，找不到就说明资料不足，再在 <answer> 中作答；"
                  "检索层面：最相似片段得分低于（经评测集校准的）阈值时直接返回“知识库中没有找到相关内容”，不调用大模型。")
A037_OFFLINE = ("根据参考资料：- **检索层**：如果最相似片段的得分低于阈值（阈值需要在评测集上校准），"
                "直接返回“知识库中没有找到相关内容”，连大模型都不必调用，还能省钱；[1]")


@pytest.mark.parametrize("answer", [A037_REFERENCE, A037_OFFLINE])
def test_an_answer_quoting_the_refusal_sentence_is_not_a_refusal(answer):
    assert not is_refusal(answer)


@pytest.mark.parametrize("answer", [
    NO_ANSWER,
    NOT_FOUND,  # 离线模型的"不知道"
    "知识库中没有相关信息",
    "抱歉，提供的资料中没有提到 GPT-5 的发布时间。",
    "参考资料未提及该公司 2025 年的营收。",
    "无法根据给定的参考资料回答这个问题。",
    "很抱歉，我无法从资料中找到答案。",
    "“知识库中没有找到相关内容”",  # 照提示原样输出、连引号一起：引文就是回答本身
    "根据参考资料：“知识库中没有找到相关内容”。[1]",
    "I don't know based on the provided context.",
])
def test_typical_refusals_are_refusals(answer):
    assert is_refusal(answer)


@pytest.mark.parametrize("answer", [
    # 先给出实质内容，只顺带提到另一部分资料没有
    "Gradio 的默认端口是 7860，可以用 server_port 参数修改，也可以用环境变量 GRADIO_SERVER_PORT 设置 [1]。"
    "资料未提及有效期。",
    # 各种引文里的拒答句：是在讲提示怎么写，不是模型在拒答
    "提示词可以这样写：\n> 如果资料中没有答案，就回答无法回答。\n这样模型在资料缺失时会少编造。",
    "在系统提示里加入 `资料中没有答案时请说不知道` 这条规则，可以明显减少幻觉。",
    "先在 <quotes>资料中没有答案时回答无法回答</quotes> 里摘出原文，再依据摘出的原文作答。",
    "第二版加入「资料中没有答案时回复：无法回答」，编造明显减少，回答也更短。",
])
def test_a_refusal_phrase_in_passing_or_in_quotes_does_not_make_a_refusal(answer):
    assert not is_refusal(answer)


def test_the_chain_does_not_mark_a_quoted_refusal_as_refused():
    store = InMemoryVectorStore(get_embeddings())
    store.add_documents([Document("最相似片段的得分低于阈值时，直接返回“知识库中没有找到相关内容”，连大模型都不必调用。",
                                  metadata={"source": "rag.md"})])
    chain = build_rag_chain(store.as_retriever(search_kwargs={"k": 1}),
                            FakeListChatModel(responses=[A037_OFFLINE, NO_ANSWER]), score_threshold=0.0)
    answered = chain.invoke("最相似片段得分低于阈值时怎么办？")
    assert not answered.refused and [s.source for s in answered.sources] == ["rag.md"]
    refused = chain.invoke("最相似片段得分低于阈值时怎么办？")
    assert refused.refused and refused.sources == []


# —— 中文数字 ——

@pytest.mark.parametrize(("chinese", "arabic"), [
    ("约四十二万次", "约 42 万次"),
    ("下降了百分之五十八", "下降了 58%"),
    ("一百二十毫秒", "120 毫秒"),
    ("一点五倍", "1.5 倍"),
    ("两千", "2000"),
    ("三分之一", "1/3"),
    ("二〇二三年", "2023 年"),
    ("十二到十七分", "12 到 17 分"),
    ("一千次", "1,000 次"),
    ("第一", "第 1"),  # 第一 两边都改成 第1
])
def test_chinese_and_arabic_numerals_score_as_the_same_answer(chinese, arabic):
    assert ev.exact_match(chinese, arabic) == 1.0
    assert ev.answer_metrics(chinese, arabic)["f1"] == 1.0


@pytest.mark.parametrize("word", ["一般", "统一", "一致", "十分", "万一", "一些", "唯一", "三思", "进一步", "一个",
                                  "七八个", "三四十", "一点点", "零样本", "千万不要", "一一对应", "两点建议"])
def test_ordinary_words_with_numeral_characters_are_left_alone(word):
    assert normalize_numerals(word) == word


def test_a_chinese_comma_after_a_number_is_not_a_thousands_separator():
    assert ev.answer_tokens("all-MiniLM-L6-v2，384 维") == ["all", "minilm", "l6", "v2", "384", "维"]


def test_c007_scores_higher_once_numerals_match():
    answer, reference = "上线半年，助手累计回答约四十二万次咨询。", "约 42 万次。"
    assert set(ev.answer_tokens(reference)) <= set(ev.answer_tokens(answer))  # 约、420000、次 全对上
    assert ev.token_f1(answer, reference) > 0.4
