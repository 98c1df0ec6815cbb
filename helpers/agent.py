"""智能体式检索（agentic RAG）：知识库工具、计算器、带防空转护栏的 create_agent、运行记录与步骤表（第 8 章）。

固定的检索问答链（helpers.rag）每个问题检索一次、调用一次模型；智能体让模型自己决定要不要检索、
检索什么、要不要换个说法再搜、要不要用别的工具，什么时候停。护栏三道：模型调用次数上限、
工具调用次数上限（LangChain 自带的两个中间件），以及本模块的 RepeatedCallGuard（同一次运行里
发出与之前完全相同的工具调用就停下）。离线教学模型不会规划，它的"决定"是 helpers.offline.engine
里写明的几条规则（按字面重合选工具、未找到时用关键词再搜一次）。
"""

from __future__ import annotations

import ast
import json
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ModelCallLimitMiddleware,
    ToolCallLimitMiddleware,
    ToolErrorMiddleware,
)
from langchain.agents.middleware.types import hook_config
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, ToolException, tool

from helpers.callbacks import Step, StepLogger, describe_tool_call
from helpers.knowledge.store import KnowledgeBase
from helpers.prompts import AGENT_SYSTEM_PROMPT, SEARCH_NOT_FOUND
from helpers.rag import DEFAULT_SCORE_THRESHOLD, format_context, retrieval_scores

SEARCH_TOOL, LIST_TOOL, CALCULATOR_TOOL = "search_knowledge", "list_documents", "calculator"
STOPPED_BY = "stopped_by"  # 护栏写的最后一条 AIMessage 在 response_metadata 里用这个键记下停下的原因

SEARCH_DESCRIPTION = (
    "在课程知识库里查资料。回答关于课程内容的问题之前先用它搜一搜：某个概念是什么、为什么、怎么做、"
    "参数一般取多少、默认值是哪个。query 写要查的问题或关键词；返回带编号 [n] 和出处的原文片段，"
    f"什么也没找到时以“{SEARCH_NOT_FOUND}”开头。"
)
LIST_DESCRIPTION = "列出知识库里有哪些文档（文件名清单）：用户问“知识库里有哪些文档、文件、资料”时用。"
CALCULATOR_DESCRIPTION = (
    "计算器：算一个数学算式等于几，如 (12+30)*7、2**10、100/8。expression 只写算式本身，"
    "支持数字、加减乘除、整除 //、取余 %、乘方 **（或 ^）和括号。"
)


# ---------------------------------------------------------------- 工具


def knowledge_tools(kb: KnowledgeBase, *, k: int = 4,
                    score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> list[BaseTool]:
    """知识库的两个工具：search_knowledge（编号资料 + 检索到的 Document）与 list_documents（第 8 章）。"""
    retriever = kb.as_retriever(k=k)

    @tool(SEARCH_TOOL, description=SEARCH_DESCRIPTION, response_format="content_and_artifact")
    def search_knowledge(query: str) -> tuple[str, list[Document]]:
        if not query.strip():
            return f"{SEARCH_NOT_FOUND}检索词是空的：请写出要查的问题或关键词。", []
        docs = retriever.invoke(query)
        # 与检索问答链同一个拒答阈值：相关度不够的块不给模型看
        hits = [d for d, s in zip(docs, retrieval_scores(query, docs, kb.embeddings)) if s >= score_threshold]
        if not hits:
            return (f"{SEARCH_NOT_FOUND}知识库里没有与“{query}”相关的资料：可以换个说法或只用关键词再搜一次，"
                    "仍然没有就如实告诉用户。"), []
        return format_context(hits), hits

    @tool(LIST_TOOL, description=LIST_DESCRIPTION)
    def list_documents() -> str:
        sources = kb.sources()
        if not sources:
            return "知识库是空的：还没有入库任何文档。"
        return f"知识库里共有 {len(sources)} 个文档：" + "、".join(sources)

    return [search_knowledge, list_documents]


# 手写的小求值器：simpleeval 之类的库不在依赖里；eval() 会执行任意代码，这里只认数字与算术运算
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPONENT, _MAX_ABS = 1000, 1e300  # 9**9**9 这类算式会算到内存耗尽：指数与结果都设上限
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "（": "(", "）": ")", "＋": "+", "－": "-", "＊": "*", "／": "/",
                          "^": "**", "，": "", ",": ""})


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise OverflowError
        value = _BINARY[type(node.op)](left, right)
        if isinstance(value, complex) or abs(value) > _MAX_ABS:
            raise OverflowError
        return value
    raise ValueError


def _calculate(expression: str) -> str:
    """算一个算术式，返回"算式 = 结果"；算不了时返回一句中文说明，而不是抛出异常。"""
    text = expression.strip().translate(_SYMBOLS).rstrip("=＝ ")
    try:
        value = _evaluate(ast.parse(text, mode="eval"))
    except ZeroDivisionError:
        return f"无法计算“{expression}”：除数不能为 0。"
    except (OverflowError, RecursionError):
        return f"无法计算“{expression}”：数字太大了。"
    except (SyntaxError, ValueError, TypeError):
        return (f"无法计算“{expression}”：计算器只认数字、+ - * / // % **（或 ^）和括号，"
                "请只写算式本身，例如 (12+30)*7。")
    if isinstance(value, float):
        value = int(value) if value.is_integer() and abs(value) < 1e15 else round(value, 10)
    return f"{text} = {value}"


@tool(CALCULATOR_TOOL, description=CALCULATOR_DESCRIPTION)
def calculator(expression: str) -> str:
    return _calculate(expression)


# ---------------------------------------------------------------- 护栏


def _stop(reason: str, text: str) -> AIMessage:
    """护栏写的最后一条回答：中文说明停下的原因，response_metadata 里记下原因（run_agent 据此填 stopped_by）。"""
    return AIMessage(text, response_metadata={STOPPED_BY: reason})


def _this_run(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """本次运行的消息：最后一条用户消息及其后（带检查点时，前几轮的消息也在状态里）。"""
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=0)
    return list(messages[start:])


def _call_key(call: dict[str, Any]) -> str:
    return call.get("name", "") + json.dumps(call.get("args", {}), ensure_ascii=False, sort_keys=True)


class RepeatedCallGuard(AgentMiddleware):
    """护栏：同一次运行里又发出与之前完全相同（工具名 + 参数）的工具调用时不执行，用一句中文说明停下（第 8 章）。"""

    @hook_config(can_jump_to=["end"])
    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        messages = _this_run(state["messages"])
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return None
        seen = {_call_key(c) for m in messages[:-1] if isinstance(m, AIMessage) for c in m.tool_calls}
        repeated = None
        for call in last.tool_calls:  # 同一条回复里两个一样的调用也算重复
            if _call_key(call) in seen:
                repeated = call
                break
            seen.add(_call_key(call))
        if repeated is None:
            return None
        # 跳到结尾就不会执行这批工具：给每个调用补一条 ToolMessage，消息历史才完整（下一轮还能接着对话）
        skipped = [ToolMessage("没有执行：与本次运行里之前的一次调用完全相同。", tool_call_id=c["id"],
                               name=c.get("name"), status="error") for c in last.tool_calls]
        text = (f"智能体又发出了与之前完全相同的调用 {describe_tool_call(repeated)}，再调用只会得到同样的结果，"
                "所以在这里停下（RepeatedCallGuard）。")
        return {"jump_to": "end", "messages": [*skipped, _stop("repeated_call", text)]}

    @hook_config(can_jump_to=["end"])
    async def aafter_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.after_model(state, runtime)


class _ModelCallBudget(ModelCallLimitMiddleware):
    """ModelCallLimitMiddleware，只把它停下时的英文提示换成中文，并记下 stopped_by。"""

    name = "ModelCallLimitMiddleware"  # 图里的节点名沿用 LangChain 的

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        out = super().before_model(state, runtime)
        if out and out.get("jump_to") == "end":
            out["messages"] = [_stop("model_calls", f"已经调用了 {self.run_limit} 次模型（上限），"
                                                    "智能体在这里停下（ModelCallLimitMiddleware）。")]
        return out

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.before_model(state, runtime)


class _ToolCallBudget(ToolCallLimitMiddleware):
    """ToolCallLimitMiddleware（exit_behavior="end"），只把最后那条英文提示换成中文，并记下 stopped_by。"""

    name = "ToolCallLimitMiddleware"

    @hook_config(can_jump_to=["end"])
    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        out = super().after_model(state, runtime)
        if out and out.get("jump_to") == "end":
            kept = [m for m in out["messages"] if not isinstance(m, AIMessage)]
            out["messages"] = [*kept, _stop("tool_calls", f"工具已经调用了 {self.run_limit} 次（上限），"
                                                          "智能体在这里停下（ToolCallLimitMiddleware）。")]
        return out

    @hook_config(can_jump_to=["end"])
    async def aafter_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.after_model(state, runtime)


class _RequireTools(AgentMiddleware):
    """每次调用模型都设 tool_choice="required"：强制调用工具，用来演示没有护栏时的空转（第 8 章的反例）。"""

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(request.override(tool_choice="required"))

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return await handler(request.override(tool_choice="required"))


def _tool_error(exc: Exception, request: Any) -> str:
    """工具执行时抛出的异常变成一条错误结果交回模型，而不是中断整次运行。"""
    name = request.tool_call.get("name")
    if isinstance(exc, ToolException):  # 工具有意报给模型的错误（如 MCP 服务端的"参数不对：…"）：原样转交
        return f"工具 {name} 出错：{exc}"
    return f"工具 {name} 出错（{type(exc).__name__}）：换个参数再试，或直接告诉用户。"  # 其他异常只报类型，不泄露细节


def build_agent(llm: BaseChatModel, tools: Sequence[BaseTool], *, system_prompt: str = AGENT_SYSTEM_PROMPT,
                max_model_calls: int = 6, max_tool_calls: int = 4, checkpointer: Any = None,
                require_tools: bool = False, middleware: Sequence[AgentMiddleware] = ()) -> Any:
    """create_agent 加三道护栏：模型调用上限、工具调用上限、重复调用即停；require_tools 强制每步调用工具（第 8 章）。"""
    # after_model 按列表倒序执行：先查工具次数，再数模型次数，最后查重复调用
    guards: list[AgentMiddleware] = [
        *middleware,
        RepeatedCallGuard(),
        _ModelCallBudget(run_limit=max_model_calls, exit_behavior="end"),
        _ToolCallBudget(run_limit=max_tool_calls, exit_behavior="end"),
        ToolErrorMiddleware(_tool_error),
    ]
    if require_tools:
        guards.append(_RequireTools())
    return create_agent(llm, tools=list(tools), system_prompt=system_prompt, middleware=guards,
                        checkpointer=checkpointer)


# ---------------------------------------------------------------- 运行与记录


@dataclass
class AgentRun:
    """智能体的一次运行：回答、消息、工具调用、检索到的资料、模型/工具调用次数、token、耗时与停下的原因（第 8 章）。"""

    question: str
    answer: str
    messages: list[BaseMessage]
    calls: list[tuple[str, dict[str, Any]]]  # 模型要求的每个工具调用（含被护栏拦下、没有执行的）
    retrieved: list[Document]  # 检索工具交给模型的块：按先后、去重
    model_calls: int
    tool_calls: int  # 真正执行了的工具调用
    input_tokens: int
    output_tokens: int
    seconds: float
    stopped_by: str | None = None  # None：模型自己给出了回答；"model_calls" / "tool_calls" / "repeated_call"
    searched: bool = False  # 有没有调用知识库检索工具 search_knowledge
    steps: list[Step] = field(default_factory=list, repr=False)


def _doc_key(doc: Document) -> tuple[Any, ...]:
    return (doc.id, doc.metadata.get("source"), doc.metadata.get("page"), doc.page_content)


def _artifact_docs(artifact: Any) -> list[Document]:
    """工具结果里的资料块：knowledge_tools 给的是 Document 列表；经 MCP（langchain-mcp-adapters）调用时是
    {"structured_content": {"result": [{"text", "source", "page", …}, …]}}，换成 Document 以便同样打分。"""
    if isinstance(artifact, list):
        return [d for d in artifact if isinstance(d, Document)]
    content = artifact.get("structured_content") if isinstance(artifact, dict) else None
    items = content.get("result") if isinstance(content, dict) else None
    return [Document(item["text"], metadata={k: v for k, v in item.items() if k != "text" and v is not None})
            for item in items if isinstance(item, dict) and isinstance(item.get("text"), str)
            ] if isinstance(items, list) else []


def _collect(question: str, messages: list[BaseMessage], logger: StepLogger, seconds: float) -> AgentRun:
    run = _this_run(messages)
    calls = [(c["name"], dict(c.get("args") or {})) for m in run if isinstance(m, AIMessage) for c in m.tool_calls]
    retrieved, seen = [], set()
    for m in run:
        for doc in _artifact_docs(m.artifact) if isinstance(m, ToolMessage) else []:
            if _doc_key(doc) not in seen:
                seen.add(_doc_key(doc))
                retrieved.append(doc)
    last = next((m for m in reversed(run) if isinstance(m, AIMessage)), None)
    stopped = next((m.response_metadata.get(STOPPED_BY) for m in reversed(run)
                    if isinstance(m, AIMessage) and m.response_metadata.get(STOPPED_BY)), None)
    llm_steps = [s for s in logger.steps if s.kind == "llm"]
    return AgentRun(
        question=question, answer=last.text if last is not None else "", messages=list(messages),
        calls=calls, retrieved=retrieved, model_calls=len(llm_steps),
        tool_calls=sum(s.kind == "tool" for s in logger.steps),
        input_tokens=sum(s.input_tokens for s in llm_steps), output_tokens=sum(s.output_tokens for s in llm_steps),
        seconds=seconds, stopped_by=stopped, searched=any(name == SEARCH_TOOL for name, _ in calls),
        steps=sorted(logger.steps, key=lambda s: s.started),
    )


def _prepare(question: str, callbacks: Sequence[Any] | None, config: dict[str, Any] | None
             ) -> tuple[StepLogger, dict[str, Any], dict[str, Any]]:
    if not question.strip():
        raise ValueError("问题不能为空：请输入一个想问智能体的问题")
    logger = StepLogger(echo=False)
    cfg = dict(config or {})
    cfg["callbacks"] = [logger, *(callbacks or []), *(cfg.get("callbacks") or [])]
    return logger, cfg, {"messages": [HumanMessage(question)]}


def run_agent(agent: Any, question: str, *, callbacks: Sequence[Any] | None = None,
              config: dict[str, Any] | None = None) -> AgentRun:
    """运行一次智能体，记下它的每一步（config 可带 thread_id，配合检查点接着上一轮）（第 8 章）。"""
    logger, cfg, inputs = _prepare(question, callbacks, config)
    t0 = time.perf_counter()
    state = agent.invoke(inputs, cfg)
    return _collect(question, state["messages"], logger, time.perf_counter() - t0)


async def arun_agent(agent: Any, question: str, *, callbacks: Sequence[Any] | None = None,
                     config: dict[str, Any] | None = None) -> AgentRun:
    """run_agent 的异步版（MCP 工具只有异步接口时用）（第 8 章）。"""
    logger, cfg, inputs = _prepare(question, callbacks, config)
    t0 = time.perf_counter()
    state = await agent.ainvoke(inputs, cfg)
    return _collect(question, state["messages"], logger, time.perf_counter() - t0)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trace_rows(source: AgentRun | StepLogger, *, width: int = 60, with_time: bool = True) -> list[dict[str, Any]]:
    """一步一行的步骤表：模型与工具各是一行，写明调用了什么、返回了什么、token 与耗时（第 8 章）。"""
    steps = source.steps if isinstance(source, AgentRun) else sorted(source.steps, key=lambda s: s.started)
    rows = []
    for step in (s for s in steps if s.kind in ("llm", "tool")):
        if step.kind == "llm":
            what = step.output if step.output.startswith("→") else "回答：" + step.output
        else:
            what = f"{step.inputs} → {step.output}"
        row: dict[str, Any] = {
            "步骤": len(rows) + 1, "类型": "模型" if step.kind == "llm" else "工具", "名称": step.name,
            "内容": _short(("出错：" + step.error) if step.error else what, width),
            "输入 tokens": step.input_tokens, "输出 tokens": step.output_tokens,
        }
        if with_time:
            row["耗时 ms"] = round(step.seconds * 1000, 1)
        rows.append(row)
    return rows
