"""查询变换（第 8 章）：离线模型不会改写时如实退回原问题；换成会照做的模型（假模型）时机制照常工作。"""

from __future__ import annotations

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from helpers.knowledge import KnowledgeBase
from helpers.transforms import (
    OFFLINE_NOTE,
    TRANSFORMS,
    TransformResult,
    decompose,
    fuse_results,
    hyde,
    multi_query,
    parse_filters,
    parse_lines,
    self_query,
    self_query_retriever,
    step_back,
)


def _sources(result: TransformResult) -> set[str]:
    return {d.metadata["source"] for d in result.docs}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_offline_model_falls_back_to_the_question(name: str, offline_llm: BaseChatModel,
                                                  tiny_kb: KnowledgeBase) -> None:
    retriever = tiny_kb.as_retriever(k=2)
    question = "桂花拿铁每杯多少钱？"
    result = TRANSFORMS[name](offline_llm, retriever).invoke(question)
    assert result.technique == name and result.model_requests == 1
    assert result.retrieval_requests == len(result.queries) >= 1
    assert question in result.queries and result.docs
    if offline_llm.metadata.get("provider") == "offline":  # 离线模型的措辞只在离线时断言
        assert result.fallback and result.note == OFFLINE_NOTE and result.generated == []
        assert result.queries == [question]
        assert [d.id for d in result.docs] == [d.id for d in retriever.invoke(question)]


def test_multi_query_fuses_every_rewrite(tiny_kb: KnowledgeBase) -> None:
    llm = FakeListChatModel(responses=["<think>先想想</think>\n1. 星河咖啡馆的招牌饮品\n- 青藤植物园最古老的树\n"
                                       "3. 期末考试的地点\n4. 多余的第四行"])
    result = multi_query(llm, tiny_kb.as_retriever(k=1), n=3, k=5).invoke("桂花拿铁多少钱？")
    assert result.generated == ["星河咖啡馆的招牌饮品", "青藤植物园最古老的树", "期末考试的地点"]
    assert result.queries[0] == "桂花拿铁多少钱？" and len(result.queries) == 4
    assert (result.model_requests, result.retrieval_requests, result.fallback) == (1, 4, False)
    assert _sources(result) == {"coffee.md", "garden.md", "notes.txt"}  # 改写找到了原问题找不到的块


def test_hyde_retrieves_with_the_hypothetical_passage(tiny_kb: KnowledgeBase) -> None:
    llm = FakeListChatModel(responses=["青藤植物园里有一棵很老的银杏，树龄大约八百年。"])
    result = hyde(llm, tiny_kb.as_retriever(k=1), include_question=False).invoke("园子里最老的是什么？")
    assert result.queries == ["青藤植物园里有一棵很老的银杏，树龄大约八百年。"]
    assert _sources(result) == {"garden.md"}
    assert (result.model_requests, result.retrieval_requests) == (1, 1)


def test_step_back_adds_one_general_question(tiny_kb: KnowledgeBase) -> None:
    llm = FakeListChatModel(responses=["星河咖啡馆的营业时间是怎样的？"])
    result = step_back(llm, tiny_kb.as_retriever(k=1), k=2).invoke("周日早上六点能买到桂花拿铁吗？")
    assert result.queries == ["周日早上六点能买到桂花拿铁吗？", "星河咖啡馆的营业时间是怎样的？"]
    assert result.retrieval_requests == 2 and "coffee.md" in _sources(result)


def test_decompose_answers_both_halves(tiny_kb: KnowledgeBase) -> None:
    llm = FakeListChatModel(responses=["桂花拿铁每杯多少钱？\n期末考试在哪个教室？"])
    result = decompose(llm, tiny_kb.as_retriever(k=1), k=3).invoke("桂花拿铁多少钱，期末考试又在哪里？")
    assert result.generated == ["桂花拿铁每杯多少钱？", "期末考试在哪个教室？"]
    assert {"coffee.md", "notes.txt"} <= _sources(result)
    assert "模型请求 1 次，检索 3 次" in result.summary()


def test_unusable_output_is_recorded_not_raised(tiny_kb: KnowledgeBase) -> None:
    for reply in ["", "   ", "桂花拿铁多少钱？"]:  # 空的、只有空白、原样照抄问题
        result = multi_query(FakeListChatModel(responses=[reply]), tiny_kb.as_retriever(k=1)).invoke("桂花拿铁多少钱？")
        assert result.fallback and result.queries == ["桂花拿铁多少钱？"] and result.docs


def test_parse_lines_strips_numbering_and_duplicates() -> None:
    text = "1. 甲问题\n2、乙问题\n（3）甲问题\n- “丙问题”\n\n问题：丁问题"
    assert parse_lines(text, "原问题") == ["甲问题", "乙问题", "丙问题", "丁问题"]


def test_fuse_results_keeps_each_chunk_once(tiny_kb: KnowledgeBase) -> None:
    r = tiny_kb.as_retriever(k=2)
    a, b = r.invoke("桂花拿铁"), r.invoke("银杏")
    fused = fuse_results([a, b, a], k=10)
    assert len({d.id for d in fused}) == len(fused) and fused[0].id == a[0].id


@pytest.mark.parametrize(("question", "where", "query"), [
    ("在 coffee.md 里桂花拿铁多少钱？", {"source": "coffee.md"}, "桂花拿铁多少钱"),
    ("handbook.pdf 第 3 页讲了什么", {"$and": [{"source": "handbook.pdf"}, {"page": 2}]}, "讲了什么"),
    ("第 2 到 4 页提到了哪些模型", {"$and": [{"page": {"$gte": 1}}, {"page": {"$lte": 3}}]}, "提到了哪些模型"),
    ("2024 年以后发布的规定", {"year": {"$gte": 2024}}, "发布的规定"),
    ("2020年之前的版本", {"year": {"$lt": 2020}}, "版本"),
    ("桂花拿铁多少钱？", None, "桂花拿铁多少钱"),
])
def test_rule_parser_turns_constraints_into_chroma_filters(question: str, where: dict | None, query: str) -> None:
    plan = parse_filters(question)
    assert plan.where == where and plan.method == "rules" and plan.model_requests == 0
    assert plan.query == query


def test_rule_parser_resolves_file_names_against_the_library() -> None:
    sources = ["docs/a/handbook.pdf", "docs/b/handbook.pdf", "notes.txt"]
    assert parse_filters("在 handbook.pdf 里", sources=sources).where == \
        {"source": {"$in": ["docs/a/handbook.pdf", "docs/b/handbook.pdf"]}}
    assert parse_filters("notes.txt 中的考试", sources=sources).where == {"source": "notes.txt"}


def test_self_query_with_the_offline_model_uses_rules(offline_llm: BaseChatModel) -> None:
    plan = self_query("在 garden.md 里最古老的树是什么？", offline_llm)
    assert plan.where == {"source": "garden.md"}
    if offline_llm.metadata.get("provider") == "offline":
        assert plan.method == "rules" and "离线教学模型" in plan.note and plan.model_requests == 0


def test_self_query_reads_json_from_a_model_that_follows_instructions() -> None:
    llm = FakeListChatModel(responses=['好的：```json\n{"source": "garden.md", "page": 1, "year": {"$gte": 2024},'
                                       ' "color": "红", "query": "最古老的树"}\n```'])
    plan = self_query("garden.md 第一页上最古老的树，2024 年以后的", llm)
    assert plan.method == "model" and plan.model_requests == 1 and plan.query == "最古老的树"
    assert plan.where == {"$and": [{"source": "garden.md"}, {"page": 0}, {"year": {"$gte": 2024}}]}


class ToolCallingFake(FakeMessagesListChatModel):
    """会"函数调用"的假模型：bind_tools 不改变回答，回答里带一次工具调用。"""

    def bind_tools(self, tools, **kwargs):  # noqa: ANN001, ANN003, ANN201
        return self


def test_self_query_uses_structured_output_when_the_model_supports_tools() -> None:
    call = {"name": "metadata_filter", "id": "c1", "args": {"page": {"$gte": 2, "$lte": 4}, "query": "激活函数"}}
    llm = ToolCallingFake(responses=[AIMessage(content="", tool_calls=[call])])
    plan = self_query("第 2 到 4 页里讲的激活函数", llm)
    assert plan.method == "model" and plan.model_requests == 1 and plan.query == "激活函数"
    assert plan.where == {"$and": [{"page": {"$gte": 1}}, {"page": {"$lte": 3}}]}  # Chroma：一个条件一个比较符


def test_self_query_falls_back_to_rules_when_the_model_is_not_json() -> None:
    plan = self_query("第 5 页讲了什么", FakeListChatModel(responses=["抱歉，我不能回答。"]))
    assert plan.method == "rules" and plan.model_requests == 1 and "不是 JSON" in plan.note
    assert plan.where == {"page": 4}


def test_self_query_retriever_filters_by_source(tiny_kb: KnowledgeBase) -> None:
    run = self_query_retriever(tiny_kb.as_retriever(k=3), sources=tiny_kb.sources())
    docs = run.invoke("在 garden.md 里温室种着什么？")
    assert docs and {d.metadata["source"] for d in docs} == {"garden.md"}
