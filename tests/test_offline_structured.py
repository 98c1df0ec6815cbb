"""离线教学模型的规则 5：response_format 为 json_schema 时把抽取式回答装进字段（第 3 章的结构化输出）。"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from helpers.llm import get_chat_model
from helpers.offline.engine import NOT_FOUND, respond

CONTEXT = ("<context>\n[1] Chroma 是一个开源的向量数据库，可以嵌入式运行。\n"
           "[2] 温度控制生成的随机性。\n</context>\n问题：Chroma 是什么？")


def schema_format(properties: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "S", "schema": {"type": "object", "properties": properties}}}


def test_without_response_format_the_reply_is_unchanged():
    messages = [{"role": "user", "content": CONTEXT}]
    assert respond(messages).content == respond(messages, response_format=None).content
    assert respond(messages, response_format={"type": "json_object"}).content == respond(messages).content


def test_fields_hold_the_extracted_sentence_and_its_sources_only():
    reply = respond([{"role": "user", "content": CONTEXT}], response_format=schema_format({
        "answer": {"type": "string"}, "sentences": {"type": "array", "items": {"type": "string"}},
        "sources": {"type": "array", "items": {"type": "integer"}}, "chapter": {"type": "integer"}}))
    data = json.loads(reply.content)
    assert data == {"answer": "Chroma 是一个开源的向量数据库，可以嵌入式运行。",
                    "sentences": ["Chroma 是一个开源的向量数据库，可以嵌入式运行。"], "sources": [1]}
    assert "chapter" not in data  # 不会理解的字段不填：校验失败要由调用方处理


def test_not_found_is_kept_as_is():
    reply = respond([{"role": "user", "content": "<context>[1] 温度控制随机性。</context>问题：Chroma 的作者是谁？"}],
                    response_format=schema_format({"answer": {"type": "string"}}))
    assert json.loads(reply.content) == {"answer": NOT_FOUND}


class Answer(BaseModel):
    answer: str = Field(description="回答")
    sources: list[int] = Field(description="资料编号")


def test_with_structured_output_round_trip_through_the_offline_server():
    result = get_chat_model().with_structured_output(Answer).invoke(CONTEXT)
    assert result == Answer(answer="Chroma 是一个开源的向量数据库，可以嵌入式运行。", sources=[1])
