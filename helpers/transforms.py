"""查询变换：多查询、HyDE、退一步提问、问题拆解，以及从问题里抽出元数据过滤条件（self-query）（第 8 章）。

每种变换都是 LangChain 的 Runnable：输入问题，输出 TransformResult——模型生成了什么、实际用哪些查询去检索、
各路结果用 RRF（helpers.knowledge.rrf_fuse）融合后的块，以及花了几次模型请求、几次检索。
离线教学模型只会从提示里的资料中摘句，不会改写问题：它的输出不能用时，变换退回原问题检索，
并把 fallback 记为 True、在 note 里写明——笔记本据此说"离线模型不会改写问题"，而不是假装改写成功了。
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_openai.chat_models.base import BaseChatOpenAI

from helpers.knowledge import rrf_fuse
from helpers.offline.engine import NOT_FOUND, SELF_INTRO
from helpers.prompts import (
    DECOMPOSE_PROMPT,
    HYDE_PROMPT,
    MULTI_QUERY_PROMPT,
    SELF_QUERY_PROMPT,
    STEP_BACK_PROMPT,
)
from helpers.text import first_json_object, strip_thinking

OFFLINE_NOTE = "离线教学模型不会改写问题（它只会从资料里摘句）：这次只用原问题检索"
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.、)）]|[（(]\d+[)）]|问题\s*\d*[:：]|子问题\s*\d*[:：])\s*")
_MAX_QUERY_CHARS = 200


@dataclass
class TransformResult:
    """一次查询变换的全过程：生成的文本、用来检索的查询、融合后的块与请求次数（第 8 章）。"""

    question: str
    technique: str
    generated: list[str]  # 模型输出里解析出的改写 / 假想文档 / 子问题（不能用时为空）
    queries: list[str]  # 实际拿去检索的查询（总含原问题，除非 technique 是 hyde 且 include_question=False）
    docs: list[Document]  # 各路检索结果按 RRF 融合后的前 k 块
    model_requests: int
    retrieval_requests: int
    fallback: bool = False  # 模型输出不能用、退回了原问题
    note: str = ""
    raw: str = ""  # 模型的原始输出（给人看）

    def summary(self) -> str:
        """一行摘要：技术、查询数、请求数、是否退回原问题（第 8 章）。"""
        tail = f"；{self.note}" if self.note else ""
        return (f"{self.technique}：{len(self.queries)} 个查询，模型请求 {self.model_requests} 次，"
                f"检索 {self.retrieval_requests} 次，融合后 {len(self.docs)} 块{tail}")


def _text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return strip_thinking(str(content)).strip()


def is_unusable(text: str) -> bool:
    """模型的输出能不能当查询用：空的、离线模型的自我介绍或"不知道"都不能用（第 8 章）。"""
    text = text.strip()
    return not text or SELF_INTRO[:12] in text or NOT_FOUND[:12] in text or "离线教学模型" in text


def parse_lines(text: str, question: str, limit: int = 5) -> list[str]:
    """把"一行一个"的输出解析成查询：去掉编号与项目符号、去重、丢掉与原问题相同或过长的行（第 8 章）。"""
    out: list[str] = []
    for line in _text(text).splitlines():
        line = _BULLET.sub("", line).strip().strip("\"'“”「」")
        if not line or len(line) > _MAX_QUERY_CHARS or is_unusable(line):
            continue
        if line == question.strip() or line in out:
            continue
        out.append(line)
    return out[:limit]


def _doc_key(doc: Document) -> str:
    return doc.id or f"{doc.metadata.get('source')}|{doc.metadata.get('page')}|{doc.page_content[:80]}"


def fuse_results(runs: Sequence[Sequence[Document]], k: int | None = None) -> list[Document]:
    """把几路检索结果按 RRF 融合成一个列表（同一块只留一次），取前 k 块（第 8 章）。"""
    by_key: dict[str, Document] = {}
    rankings = []
    for docs in runs:
        keys = []
        for d in docs:
            key = _doc_key(d)
            by_key.setdefault(key, d)
            keys.append(key)
        rankings.append(keys)
    fused = [by_key[key] for key, _ in rrf_fuse(rankings)]
    k = k if k is not None else max((len(r) for r in runs), default=0)
    return fused[:k]


def _retrieve_all(retriever: BaseRetriever, queries: list[str]) -> list[list[Document]]:
    return [list(docs) for docs in retriever.batch(queries)]


def _transform(technique: str, llm: BaseChatModel, retriever: BaseRetriever, prompt: ChatPromptTemplate,
               parse: Callable[[str, str], list[str]], *, include_question: bool = True, k: int | None = None,
               **prompt_vars: Any) -> Runnable[str, TransformResult]:
    """四种生成式变换共用的流程：提示 → 模型一次 → 解析 → 每个查询检索一次 → RRF 融合。"""

    def run(question: str) -> TransformResult:
        raw = _text(llm.invoke(prompt.format_messages(question=question, **prompt_vars)))
        generated = [] if is_unusable(raw) else parse(raw, question)
        fallback = not generated
        queries = ([question] if include_question or fallback else []) + [g for g in generated if g != question]
        runs = _retrieve_all(retriever, queries)
        return TransformResult(question, technique, generated, queries, fuse_results(runs, k), 1, len(queries),
                               fallback, OFFLINE_NOTE if fallback else "", raw)

    return RunnableLambda(run, name=technique)


def multi_query(llm: BaseChatModel, retriever: BaseRetriever, n: int = 3, *, k: int | None = None
                ) -> Runnable[str, TransformResult]:
    """多查询（RAG-Fusion）：让模型把问题换 n 种说法，原问题和各说法分别检索，再 RRF 融合（第 8 章）。"""
    return _transform("multi_query", llm, retriever, MULTI_QUERY_PROMPT,
                      lambda raw, q: parse_lines(raw, q, limit=n), k=k, n=n)


def _passage(raw: str, question: str) -> list[str]:
    text = _text(raw)
    return [text[:1000]] if len(text) >= 8 and text != question.strip() else []


def hyde(llm: BaseChatModel, retriever: BaseRetriever, *, include_question: bool = True, k: int | None = None
         ) -> Runnable[str, TransformResult]:
    """HyDE：让模型先写一段"假想的答案资料"，用它（和原问题）去检索相似的真实段落（第 8 章）。"""
    return _transform("hyde", llm, retriever, HYDE_PROMPT, _passage, include_question=include_question, k=k)


def step_back(llm: BaseChatModel, retriever: BaseRetriever, *, k: int | None = None
              ) -> Runnable[str, TransformResult]:
    """退一步提问（step-back）：再问一个更一般的问题检索背景知识，与原问题的结果融合（第 8 章）。"""
    return _transform("step_back", llm, retriever, STEP_BACK_PROMPT,
                      lambda raw, q: parse_lines(raw, q, limit=1), k=k)


def decompose(llm: BaseChatModel, retriever: BaseRetriever, *, k: int | None = None
              ) -> Runnable[str, TransformResult]:
    """问题拆解：把复合问题拆成几个子问题分别检索，再融合（多跳、对比类问题用）（第 8 章）。"""
    return _transform("decompose", llm, retriever, DECOMPOSE_PROMPT,
                      lambda raw, q: parse_lines(raw, q, limit=4), k=k)


TRANSFORMS: dict[str, Callable[..., Runnable[str, TransformResult]]] = {
    "multi_query": multi_query, "hyde": hyde, "step_back": step_back, "decompose": decompose,
}


# ---------------------------------------------------------------- self-query：问题 → 元数据过滤


# 可过滤的元数据字段 → 给模型看的说明。page 在库里从 0 数，对人（和模型）说的是从 1 数的页码
DEFAULT_FIELDS: dict[str, str] = {
    "source": "文件名，如 handbook.pdf（字符串）",
    "page": "PDF 的页码，从 1 数（整数）",
    "year": "资料的年份（整数）；“2024 年以后”写成 {\"$gte\": 2024}",
}

_EXT = r"(?:pdf|md|markdown|txt|docx|pptx|xlsx|csv|html?|srt|vtt|jsonl)"
_FILE = re.compile(rf"[《“\"'「]?([\w\-./]+\.{_EXT})[》”\"'」]?", re.I)
_FILE_PHRASE = re.compile(
    rf"(?:在|从|根据|来自)?\s*[《“\"'「]?[\w\-./]+\.{_EXT}[》”\"'」]?\s*(?:文件)?(?:里|中|内|中的|里的)?", re.I)
_PAGE_RANGE = re.compile(r"第\s*(\d+)\s*(?:页)?\s*(?:到|至|-|~|～|—)\s*第?\s*(\d+)\s*页")
_PAGE = re.compile(r"第\s*(\d+)\s*页")
_YEAR_AFTER = re.compile(r"(\d{4})\s*年?\s*(?:以后|之后|以来|起|后)")
_YEAR_BEFORE = re.compile(r"(\d{4})\s*年?\s*(?:以前|之前|前)")
_YEAR = re.compile(r"(\d{4})\s*年(?!\s*(?:以|之|起|后|前))")


@dataclass
class SelfQuery:
    """self-query 的结果：Chroma 的 where 过滤、去掉限制后的检索问题、用了什么方法（第 8 章）。"""

    question: str
    query: str
    where: dict[str, Any] | None
    method: str  # "rules"（规则解析）或 "model"（模型抽取）
    model_requests: int = 0
    note: str = ""
    conditions: list[dict[str, Any]] = field(default_factory=list)


def _combine(conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _source_condition(name: str, sources: Sequence[str] | None) -> dict[str, Any]:
    """文件名 → source 条件：给了库里的文件列表时，按文件名（不含目录）找出全部同名的。"""
    if sources:
        hits = sorted({s for s in sources if s == name or s.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]})
        if len(hits) == 1:
            return {"source": hits[0]}
        if hits:
            return {"source": {"$in": hits}}
    return {"source": name}


def parse_filters(question: str, fields: Mapping[str, str] | None = None,
                  sources: Sequence[str] | None = None) -> SelfQuery:
    """规则解析"第 3 页""第 2 到 4 页""在 xxx.pdf 里""2024 年以后"这类限制，得到 where 过滤（第 8 章）。"""
    fields = DEFAULT_FIELDS if fields is None else fields
    conditions: list[dict[str, Any]] = []
    rest = question
    if "source" in fields and (m := _FILE.search(question)):
        conditions.append(_source_condition(m.group(1), sources))
        rest = _FILE_PHRASE.sub(" ", rest, count=1)
    if "page" in fields:
        if m := _PAGE_RANGE.search(rest):
            lo, hi = sorted((int(m.group(1)), int(m.group(2))))
            conditions += [{"page": {"$gte": lo - 1}}, {"page": {"$lte": hi - 1}}]
            rest = rest.replace(m.group(0), " ")
        elif m := _PAGE.search(rest):
            conditions.append({"page": int(m.group(1)) - 1})
            rest = rest.replace(m.group(0), " ")
    if "year" in fields:
        for pattern, op in ((_YEAR_AFTER, "$gte"), (_YEAR_BEFORE, "$lt"), (_YEAR, None)):
            if m := pattern.search(rest):
                year = int(m.group(1))
                conditions.append({"year": {op: year} if op else year})
                rest = rest.replace(m.group(0), " ")
                break
    query = re.sub(r"\s+", " ", rest).strip(" ，,。？?的里中") or question
    note = "" if conditions else "问题里没有认出页码、文件名或年份这类限制"
    return SelfQuery(question, query, _combine(conditions), "rules", 0, note, conditions)


def _conditions(name: str, value: Any, sources: Sequence[str] | None) -> list[dict[str, Any]]:
    """模型给的一个字段值 → 条件列表；类型不对就丢掉（不让模型的错误变成查不到任何东西的过滤）。

    Chroma 的一个条件里只能有一个比较符：{"$gte": 2, "$lte": 4} 拆成两个条件，再由 $and 合起来。
    """
    ops = {"$gte", "$gt", "$lte", "$lt", "$eq", "$ne"}
    if name == "source" and isinstance(value, str) and value.strip():
        return [_source_condition(value.strip(), sources)]
    if name == "page" and isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return [{"page": value - 1}]
    if isinstance(value, dict) and value and set(value) <= ops and all(isinstance(v, int) for v in value.values()):
        shift = 1 if name == "page" else 0
        return [{name: {op: v - shift}} for op, v in value.items()]
    if isinstance(value, (int, str)) and not isinstance(value, bool) and name not in {"source", "page"}:
        return [{name: value}]
    return []


def self_query(question: str, llm: BaseChatModel | None = None, fields: Mapping[str, str] | None = None,
               sources: Sequence[str] | None = None) -> SelfQuery:
    """问题 → Chroma 的 where 过滤：离线（或不给模型）时用规则解析，真实模型时让它输出 JSON（第 8 章）。"""
    fields = DEFAULT_FIELDS if fields is None else fields
    if llm is None or (getattr(llm, "metadata", None) or {}).get("provider") == "offline":
        result = parse_filters(question, fields, sources)
        if llm is not None:
            extra = f"；{result.note}" if result.note else ""
            result.note = "离线教学模型不会从问题里抽取过滤条件：改用规则解析" + extra
        return result
    described = "\n".join(f"- {name}：{desc}" for name, desc in fields.items())
    messages = SELF_QUERY_PROMPT.format_messages(fields=described, question=question)
    data, requests, note = _structured(llm, messages, fields)
    if data is None:  # 不支持结构化输出（或调用失败）：同一提示要模型直接写 JSON，再从文字里取
        raw = _text(llm.invoke(messages))
        requests += 1
        data = first_json_object(raw)
        if data is None:
            result = parse_filters(question, fields, sources)
            result.model_requests = requests
            result.note = f"模型的输出不是 JSON（{raw[:40]!r}…）：改用规则解析"
            return result
    conditions = [c for name in fields if name in data for c in _conditions(name, data[name], sources)]
    query = data.get("query") if isinstance(data.get("query"), str) and data["query"].strip() else question
    return SelfQuery(question, query.strip(), _combine(conditions), "model", requests, note, conditions)


def _filter_schema(fields: Mapping[str, str]) -> dict[str, Any]:
    """结构化输出用的 JSON Schema：每个字段可以是数、字符串或 {"$gte": …} 这样的比较。"""
    value = {"anyOf": [{"type": "integer"}, {"type": "string"},
                       {"type": "object", "additionalProperties": {"type": "integer"}}]}
    props: dict[str, Any] = {name: {**value, "description": desc} for name, desc in fields.items()}
    props["query"] = {"type": "string", "description": "去掉这些限制后要检索的问题"}
    return {"title": "metadata_filter", "description": "问题里对资料元数据的限制条件", "type": "object",
            "properties": props, "required": ["query"]}


def _structured(llm: BaseChatModel, messages: list[Any], fields: Mapping[str, str]
                ) -> tuple[dict[str, Any] | None, int, str]:
    """先试结构化输出（函数调用）：返回 (字段字典或 None, 发出的请求数, 说明)。"""
    try:
        # ChatOpenAI 默认的 json_schema 方式不少国内厂商不支持：明确要函数调用；别的模型类用它自己的默认方式
        options = {"method": "function_calling"} if isinstance(llm, BaseChatOpenAI) else {}
        runnable = llm.with_structured_output(_filter_schema(fields), **options)
    except (NotImplementedError, TypeError, ValueError):  # 这个模型类不支持结构化输出：一次请求都没发
        return None, 0, ""
    try:
        data = runnable.invoke(messages)
    except Exception as exc:  # noqa: BLE001 —— 厂商不支持函数调用等：退回让模型直接写 JSON
        return None, 1, f"结构化输出失败（{type(exc).__name__}）：改为让模型直接写 JSON"
    return (data if isinstance(data, dict) else None), 1, ""


def self_query_retriever(retriever: BaseRetriever, llm: BaseChatModel | None = None,
                         fields: Mapping[str, str] | None = None,
                         sources: Sequence[str] | None = None) -> Runnable[str, list[Document]]:
    """self-query 检索：先抽出过滤条件，再带着过滤检索（检索器需有 filter 字段，如 KnowledgeRetriever）（第 8 章）。"""

    def run(question: str) -> list[Document]:
        plan = self_query(question, llm, fields, sources)
        filtered = retriever.model_copy(update={"filter": plan.where}) if hasattr(retriever, "filter") else retriever
        return list(filtered.invoke(plan.query))

    return RunnableLambda(run, name="self_query")
