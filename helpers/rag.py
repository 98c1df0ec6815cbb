"""检索问答链：检索 → 编号资料 → 提示 → 模型 → 带出处的回答（第 5 章）。"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables.config import run_in_executor

from helpers.history import HistoryStore, SessionStore, trim_history
from helpers.knowledge.store import DENSE_QUERY, DENSE_SCORE
from helpers.llm import get_chat_model, get_embeddings
from helpers.prompts import CITATION_MARK, CONDENSE_PROMPT, DEFAULT_PROMPT, get_prompt

NO_ANSWER = "知识库中没有找到相关内容，我无法回答这个问题。"
DEFAULT_SCORE_THRESHOLD = 0.12
# 拒答的说法：课程的 NO_ANSWER、离线模型的 NOT_FOUND，以及真实模型常见的几种（由 is_refusal 判定位置）
REFUSAL = re.compile(
    r"(没有|没能|未能?)找到.{0,12}?(相关|有关)的?(内容|信息|资料|答案)"
    r"|(资料|知识库|上下文)[中里内](并)?(没有|未(提及|提到|涉及|包含|说明|给出|记载))"
    r"|(没有|未|并未)(提及|提到|涉及)"
    r"|(无法|不能)(根据|从|依据|基于).{0,30}?(回答|作答|确定|判断|得出|给出|得知)"
    r"|(无法|不能)(回答|作答)|不知道答案|我不知道|抱歉.{0,30}?(无法|不能|没有)"
    r"|\bI (do not|don't) know\b|\bcannot answer\b|\bno relevant (information|content)\b",
    re.IGNORECASE,
)
# 引文：中英文引号、「」『』、`代码`、<quotes> 标签、Markdown 引用行——里面的话是转述资料，不是模型自己在拒答
_QUOTED = re.compile(
    r"“[^”]*”|\"[^\"\n]*\"|「[^」]*」|『[^』]*』|‘[^’]*’|```.*?```|`[^`\n]*`"
    r"|<quotes>.*?</quotes>|^[ \t]*>[^\n]*$",
    re.DOTALL | re.MULTILINE,
)
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
_MIN_OUTSIDE = 10  # 引号外不足 10 个字（如"根据参考资料："）时，引文就是回答本身
_PRONOUNS = re.compile(r"^(它|他|她|这|那|其|该|此|上述|前者|后者|那么|还有|另外|再)|它|这个|那个|他们|它们")


class Retriever(Protocol):
    def invoke(self, input: str, config: Any = None, **kwargs: Any) -> list[Document]: ...


UNKNOWN_SOURCE = "未知来源"


def _chars(text: str) -> int:
    """数"字"：汉字、字母、数字各算一个，标点、空白与引用标号 [n] 不算。"""
    return len(re.findall(r"\w", CITATION_MARK.sub("", text)))


def is_refusal(answer: str) -> bool:
    """回答算不算拒答：引号外的拒答说法出现在第一句，或含拒答说法的句子占了一半以上的字（第 6 章）。"""
    # 规则三步，每一步都能讲给学员听：
    # 1. 去掉引文（“…”、"…"、「…」、『…』、‘…’、`…`、<quotes>…</quotes>、以 > 开头的引用行）：
    #    "直接返回“知识库中没有找到相关内容”"是在转述资料，不是拒答；
    #    但引号外不足 10 个字时（整段回答就是一句带引号的“知识库中没有找到相关内容”），引文就是回答本身，照原文判
    # 2. 按句号、问号、叹号、分号与换行切句，找含 REFUSAL 说法的句子
    # 3. 第一句就拒答（"抱歉，资料中没有提到……"），或拒答的句子占全部字数的一半以上，才算拒答；
    #    先给出实质内容、只顺带说"另一半无法回答"的回答不算
    outside = _QUOTED.sub("", answer or "")
    text = outside if _chars(outside) >= _MIN_OUTSIDE else (answer or "")
    sentences = [s for s in _SENTENCE_END.split(text) if _chars(s)]
    if not sentences:
        return False
    refusing = [s for s in sentences if REFUSAL.search(s)]
    if not refusing:
        return False
    return refusing[0] is sentences[0] or 2 * sum(map(_chars, refusing)) > sum(map(_chars, sentences))


def source_label(source: str, page: int | None, where: str | None = None) -> str:
    """出处的写法："rag.md"或"handbook.pdf 第 3 页"（page 从 0 数，显示从 1 数）（第 5 章）。"""
    return source + (f" 第 {int(page) + 1} 页" if page is not None else "") + (f" {where}" if where else "")


def locator(metadata: dict[str, Any]) -> str | None:
    """页码以外能定位原文的位置：第 3 张幻灯片、工作表「三月」第 7 行、00:01:05–00:01:40（第 8 章）。"""
    if metadata.get("slide") is not None:
        return f"第 {metadata['slide']} 张幻灯片"
    if metadata.get("row") is not None:
        sheet = f"工作表「{metadata['sheet']}」" if metadata.get("sheet") else ""
        return f"{sheet}第 {metadata['row']} 行"
    if metadata.get("time_start"):
        end = metadata.get("time_end")
        return f"{metadata['time_start']}–{end}" if end else str(metadata["time_start"])
    return None


@dataclass
class Source:
    """回答引用的一条资料（第 6 章）。"""

    n: int
    source: str
    page: int | None
    snippet: str
    score: float | None = None
    where: str | None = None  # 页码以外的位置（幻灯片、表格行、字幕时间），见 locator

    def label(self) -> str:
        """形如"rag.md"或"handbook.pdf 第 3 页"的出处（页码从 1 数）（第 5 章）。"""
        return source_label(self.source, self.page, self.where)


@dataclass
class RagAnswer:
    """一次问答的结果：回答、独立问题、引用的资料、是否拒答（第 6、7 章）。"""

    question: str
    answer: str
    standalone_question: str
    sources: list[Source] = field(default_factory=list)
    refused: bool = False
    retrieved: list[tuple[Document, float]] = field(default_factory=list)  # 过阈值之前的全部检索结果与相关度


_DELIMITER_LOOKALIKE = re.compile(r"<\s*/?\s*context\b[^>]*>", re.I)


def neutralize(text: str) -> str:
    """把资料里的分隔符换成全角形式，使资料无法"跳出" <context> 块（第 5 章）。"""
    text = _DELIMITER_LOOKALIKE.sub(
        lambda m: m.group(0).replace("<", "〈").replace(">", "〉"), text
    )
    return text.replace('"""', "“”“")


# 资料里像"命令"的说法（第 5 章 5.6 节的间接注入）：改身份、让模型忽略规则、索要系统提示，或仿冒分隔符。
# 只是提醒的一层：讲解提示注入的正文也会命中（第 5 章练习 2 讨论过），所以命中的文档照常入库，不拦截
_INJECTION = re.compile(
    r"忽略(?:掉)?(?:以上|之前|上面|前面|先前|此前)(?:的)?(?:所有|全部|一切)?(?:的)?(?:指令|指示|规则|提示|要求)"
    r"|你(?:现在|从现在起)(?:不再)?是(?:一个)?"
    r"|(?:输出|泄露|打印|告诉我)(?:你的)?系统提示"
    r"|ignore\s+(?:all\s+)?(?:the\s+)?(?:previous|above|prior)\s+instructions"
    r"|<\s*/?\s*context\b",
    re.I,
)


def injection_lines(text: str, limit: int = 3) -> list[str]:
    """text 里像注入指令的行（去掉首尾空白、最长 40 字），最多 limit 行；没有就是空列表（第 7 章）。"""
    found = []
    for line in text.splitlines():
        if _INJECTION.search(line):
            line = line.strip()
            found.append(line if len(line) <= 40 else line[:40] + "…")
            if len(found) == limit:
                break
    return found


def format_context(docs: list[Document], numbered: bool = True) -> str:
    """把检索到的文档排成编号资料：[n] 来源：… 换行 正文（第 5 章）。"""
    parts = []
    for i, doc in enumerate(docs, start=1):
        body = neutralize(doc.page_content.strip())
        if numbered:
            where = source_label(doc.metadata.get("source", UNKNOWN_SOURCE), doc.metadata.get("page"),
                                 locator(doc.metadata))
            parts.append(f"[{i}] 来源：{neutralize(where)}\n{body}")
        else:
            parts.append(body)
    return "\n\n".join(parts)


def relevance_scores(question: str, docs: list[Document], embeddings: Embeddings) -> list[float]:
    """问题与每段资料的余弦相似度，用来判断"知识库里有没有答案"（第 5 章）。"""
    if not docs:
        return []
    q = np.asarray(embeddings.embed_query(question), dtype=np.float32)
    d = np.asarray(embeddings.embed_documents([doc.page_content for doc in docs]), dtype=np.float32)
    denom = np.linalg.norm(d, axis=1) * (np.linalg.norm(q) or 1.0)
    denom[denom == 0] = 1.0
    return [float(x) for x in (d @ q) / denom]


def retrieval_scores(question: str, docs: list[Document], embeddings: Embeddings) -> list[float]:
    """每段资料的相关度：知识库检索器已为这个问题算好余弦（元数据 dense_score）就直接用，否则重新嵌入（第 5 章）。"""
    if docs and all(DENSE_SCORE in d.metadata and d.metadata.get(DENSE_QUERY) == question for d in docs):
        return [float(d.metadata[DENSE_SCORE]) for d in docs]
    return relevance_scores(question, docs, embeddings)  # 别的检索器：问题与各段资料再嵌入一次


def is_offline(llm: BaseChatModel) -> bool:
    """这个聊天模型是不是课程的离线教学模型（第 5 章）。"""
    return (getattr(llm, "metadata", None) or {}).get("provider") == "offline"


def is_follow_up(question: str) -> bool:
    """问题是不是依赖上文的追问：以指代词开头、含"它/这个"等，或很短（第 5 章）。"""
    return bool(_PRONOUNS.search(question)) or len(question) <= 8


def condense_question(question: str, history: list[BaseMessage], llm: BaseChatModel) -> str:
    """结合对话历史把追问改写成独立问题；离线模型不会改写，改用一条明说的规则（第 5 章）。"""
    previous = [str(m.content) for m in history if isinstance(m, HumanMessage)]
    if not previous:
        return question
    if is_offline(llm):
        # 规则：追问前面拼上最近一个"完整"的问题（不是追问的那个）一起检索
        if not is_follow_up(question):
            return question
        anchor = next((p for p in reversed(previous) if not is_follow_up(p)), previous[-1])
        return f"{anchor} {question}"
    chain = CONDENSE_PROMPT | llm | StrOutputParser()
    rewritten = chain.invoke({"history": history, "question": question}).strip()
    return rewritten or question


class RagChain:
    """知识库问答：检索、按相关度拒答、带历史改写、流式输出、标出出处（第 6 章）。"""

    def __init__(
        self,
        retriever: Retriever,
        llm: BaseChatModel | None = None,
        *,
        prompt: str = DEFAULT_PROMPT,
        embeddings: Embeddings | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        history_store: HistoryStore | None = None,
        max_history_tokens: int = 800,
    ) -> None:
        self.retriever = retriever
        self.llm = llm or get_chat_model()
        self.prompt = get_prompt(prompt)
        self.embeddings = embeddings or get_embeddings()
        self.score_threshold = score_threshold
        self.history_store = history_store or SessionStore(max_sessions=None, max_messages=None)
        self.max_history_tokens = max_history_tokens
        self._answer_chain = self.prompt.template | self.llm | StrOutputParser()

    def history(self, session_id: str | None) -> list[BaseMessage]:
        """某个会话的历史消息（按 token 预算裁剪后）（第 5 章）。"""
        if session_id is None:
            return []
        return trim_history(self.history_store.messages(session_id), self.max_history_tokens, include_system=False)

    def retrieve_scored(self, question: str) -> list[tuple[Document, float]]:
        """检索并给每段资料算相关度，不过阈值（第 6 章）。"""
        docs = self.retriever.invoke(question)
        return list(zip(docs, retrieval_scores(question, docs, self.embeddings)))

    def retrieve(self, question: str) -> list[tuple[Document, float]]:
        """检索并给每段资料算相关度，低于阈值的丢掉（第 6 章）。"""
        return self._threshold(self.retrieve_scored(question))

    def _threshold(self, scored: list[tuple[Document, float]]) -> list[tuple[Document, float]]:
        return [(d, s) for d, s in scored if s >= self.score_threshold]

    def _prepare(self, question: str, session_id: str | None) -> dict[str, Any]:
        question = question.strip()
        if not question:
            raise ValueError("问题不能为空：请输入一个想问知识库的问题")
        history = self.history(session_id)
        standalone = condense_question(question, history, self.llm)
        retrieved = self.retrieve_scored(standalone)
        hits = self._threshold(retrieved)
        docs = [d for d, _ in hits]
        # 提示里放改写后的独立问题（与检索用的一致）；问题与历史同样中和分隔符
        inputs = {
            "question": neutralize(standalone),
            "context": format_context(docs, numbered=self.prompt.numbered_context),
        }
        if self.prompt.uses_history:
            inputs["history"] = [m.model_copy(update={"content": neutralize(str(m.content))})
                                 for m in history]
        return {"standalone": standalone, "hits": hits, "retrieved": retrieved, "inputs": inputs,
                "question": question}

    def render(self, question: str, session_id: str | None = None) -> list[BaseMessage]:
        """发给模型的完整提示消息；资料全被阈值滤掉时不调用模型，返回空列表（第 5 章）。"""
        prep = self._prepare(question, session_id)
        if not prep["hits"]:
            return []
        return self.prompt.template.format_messages(**prep["inputs"])

    def _finish(self, prep: dict[str, Any], answer: str, session_id: str | None) -> RagAnswer:
        hits = prep["hits"]
        refused = not hits or is_refusal(answer)
        cited = {int(n) for n in CITATION_MARK.findall(answer)} if self.prompt.numbered_context else set()
        sources = [
            Source(i, d.metadata.get("source", UNKNOWN_SOURCE), d.metadata.get("page"),
                   d.page_content.strip()[:120], round(s, 4), locator(d.metadata))
            for i, (d, s) in enumerate(hits, start=1)
            if (i in cited or not cited) and not refused
        ]
        if session_id is not None:
            self.history_store.add_messages(
                session_id, [HumanMessage(prep["question"]), AIMessage(answer)]
            )
        return RagAnswer(prep["question"], answer, prep["standalone"], sources, refused, prep["retrieved"])

    def invoke(self, question: str, session_id: str | None = None) -> RagAnswer:
        """回答一个问题；session_id 相同的多次提问共享历史（第 5 章）。"""
        prep = self._prepare(question, session_id)
        answer = self._answer_chain.invoke(prep["inputs"]) if prep["hits"] else NO_ANSWER
        return self._finish(prep, answer, session_id)

    def stream(self, question: str, session_id: str | None = None) -> Iterator[str | RagAnswer]:
        """流式回答：先逐段产出文字，最后产出完整的 RagAnswer（第 7 章）。"""
        prep = self._prepare(question, session_id)
        if not prep["hits"]:
            yield NO_ANSWER
            yield self._finish(prep, NO_ANSWER, session_id)
            return
        pieces = []
        for piece in self._answer_chain.stream(prep["inputs"]):
            pieces.append(piece)
            yield piece
        yield self._finish(prep, "".join(pieces), session_id)

    async def astream(self, question: str, session_id: str | None = None) -> AsyncIterator[str | RagAnswer]:
        """异步的流式回答：检索在线程池里做，模型走 astream；调用方取消时（客户端断开）模型请求随之关闭（第 6 章）。"""
        prep = await run_in_executor(None, self._prepare, question, session_id)
        if not prep["hits"]:
            yield NO_ANSWER
            yield self._finish(prep, NO_ANSWER, session_id)
            return
        pieces = []
        async for piece in self._answer_chain.astream(prep["inputs"]):
            pieces.append(piece)
            yield piece
        yield self._finish(prep, "".join(pieces), session_id)


def build_rag_chain(retriever: Retriever, llm: BaseChatModel | None = None, **kwargs: Any) -> RagChain:
    """组装检索问答链（参数见 RagChain）（第 5 章）。"""
    return RagChain(retriever, llm, **kwargs)


__all__ = [
    "NO_ANSWER", "REFUSAL", "RagAnswer", "RagChain", "Source", "build_rag_chain", "condense_question",
    "format_context", "injection_lines", "is_follow_up", "is_offline", "is_refusal", "neutralize",
    "relevance_scores", "retrieval_scores",
]
