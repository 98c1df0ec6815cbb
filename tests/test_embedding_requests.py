"""真实提供方的计费单位是嵌入请求：一次提问只嵌入一次问题（对着离线 OpenAI 兼容服务数请求）。"""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import OpenAIEmbeddings

from helpers import offline
from helpers.knowledge import RETRIEVER_KINDS
from helpers.providers import OFFLINE_BASE_URL
from helpers.rag import RagChain, relevance_scores
from tests.support.corpus import TOPICS, write_corpus
from tests.support.factories import small_kb

QUESTION = "混合检索怎样合并向量检索与 BM25 的结果？"


class Counter:
    """包住离线服务的 HTTP 客户端，记下发往 /v1/embeddings 的请求。"""

    def __init__(self) -> None:
        self.client = offline.http_client()
        self.requests: list[str] = []
        send = self.client.send

        def counted(request, **kwargs):
            if request.url.path.endswith("/embeddings"):
                self.requests.append(request.content.decode())
            return send(request, **kwargs)

        self.client.send = counted

    def embeddings(self) -> OpenAIEmbeddings:
        """与真实提供方同一条路：OpenAIEmbeddings → openai SDK → HTTP → 离线服务。"""
        return OpenAIEmbeddings(model=offline.EMBEDDING_MODEL, base_url=OFFLINE_BASE_URL, api_key="offline",
                                http_client=self.client, check_embedding_ctx_length=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("docs"))
    counter = Counter()
    kb = small_kb("requests", root.parent / "db", embeddings=counter.embeddings())
    kb.ingest(root)
    return counter, kb


@pytest.mark.parametrize("kind", RETRIEVER_KINDS)
def test_one_question_costs_one_embedding_request(served, offline_llm, kind):
    counter, kb = served
    chain = RagChain(kb.as_retriever(kind, k=3), offline_llm, embeddings=kb.embeddings)
    counter.requests.clear()
    answer = chain.invoke(QUESTION)
    assert len(counter.requests) == 1, counter.requests
    assert not answer.refused and answer.sources
    # 阈值用的就是检索器算好的余弦：与重新嵌入算出的相同（只差 float32 的舍入）
    docs = [d for d, _ in answer.retrieved]
    again = relevance_scores(QUESTION, docs, kb.embeddings)
    assert [s for _, s in answer.retrieved] == pytest.approx(again, abs=1e-6)


def test_refused_answer_still_carries_what_was_retrieved(served, offline_llm):
    _, kb = served
    chain = RagChain(kb.as_retriever("hybrid", k=3), offline_llm, embeddings=kb.embeddings,
                     score_threshold=0.99)
    answer = chain.invoke(QUESTION)
    assert answer.refused and answer.sources == []
    assert len(answer.retrieved) == 3 and all(s < 0.99 for _, s in answer.retrieved)


def test_foreign_retriever_falls_back_to_re_embedding(served, offline_llm):
    counter, kb = served
    store = InMemoryVectorStore(kb.embeddings)
    store.add_documents([Document(text, metadata={"source": name}) for name, text in TOPICS.items()])
    chain = RagChain(store.as_retriever(search_kwargs={"k": 2}), offline_llm, embeddings=kb.embeddings)
    counter.requests.clear()
    answer = chain.invoke(QUESTION)
    # 检索 1 次 + 阈值再嵌入问题 1 次 + 两段资料 1 次
    assert len(counter.requests) == 3 and len(answer.retrieved) == 2


def test_rewritten_query_is_scored_against_the_question(served, offline_llm):
    """检索器外面包了一层改写查询：它的余弦是对改写后的查询算的，阈值仍按原问题重新算。"""
    _, kb = served
    inner = kb.as_retriever("hybrid", k=2)

    class Rewriting:
        def invoke(self, input, config=None, **kwargs):
            return inner.invoke(input + " 倒数排名融合", config, **kwargs)

    chain = RagChain(Rewriting(), offline_llm, embeddings=kb.embeddings)
    scored = chain.retrieve_scored(QUESTION)
    expected = relevance_scores(QUESTION, [d for d, _ in scored], kb.embeddings)
    assert [s for _, s in scored] == expected
