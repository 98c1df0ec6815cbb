"""LangChain 回调：用量与费用记录（UsageTracker，第 2 章）和逐步日志（StepLogger，第 3 章）。"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from helpers.providers import estimate_cost, get_provider

# ---------------------------------------------------------------- 用量


@dataclass(frozen=True)
class LLMUsage:
    """一次模型回复里的一条生成：模型名、输入/输出 token 数，以及 LangChain 记下的费用（缓存命中时为 0）（第 2 章）。"""

    model: str
    input_tokens: int
    output_tokens: int
    total_cost: float | None = None


def llm_usage(response: LLMResult) -> list[LLMUsage]:
    """从 on_llm_end 收到的结果里取出每条生成的用量；两个回调都用它（第 2 章）。"""
    out = []
    for gens in response.generations:
        for gen in gens:
            msg = getattr(gen, "message", None)
            usage = getattr(msg, "usage_metadata", None) or {}
            meta = getattr(msg, "response_metadata", None) or {}
            cost = float(usage["total_cost"]) if "total_cost" in usage else None
            out.append(LLMUsage(meta.get("model_name", "?"), int(usage.get("input_tokens", 0)),
                                int(usage.get("output_tokens", 0)), cost))
    return out


@dataclass
class CallRecord:
    """一次模型调用的用量与费用（第 2 章）。"""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    seconds: float


@dataclass
class UsageTracker(BaseCallbackHandler):
    """LangChain 回调：记录每次调用与整个会话的 token 用量和估算费用（第 2 章）。"""

    provider: str = "offline"
    calls: list[CallRecord] = field(default_factory=list)
    _starts: dict[Any, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs) -> None:
        self._starts[run_id] = time.perf_counter()

    def on_llm_end(self, response: LLMResult, *, run_id, **kwargs) -> None:
        seconds = time.perf_counter() - self._starts.pop(run_id, time.perf_counter())
        for use in llm_usage(response):
            cost = estimate_cost(self.provider, use.input_tokens, use.output_tokens)
            if use.total_cost is not None:  # LangChain 把缓存命中的费用记为 0
                cost = use.total_cost
            with self._lock:
                self.calls.append(CallRecord(use.model, use.input_tokens, use.output_tokens, cost, seconds))

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.calls)

    @property
    def total_cost(self) -> float:
        return sum(c.cost for c in self.calls)

    def summary(self) -> str:
        """一行中文小结：调用次数、token 数与估算费用（第 2 章）。"""
        currency = get_provider(self.provider).currency
        return (
            f"共 {len(self.calls)} 次调用，输入 {self.prompt_tokens} tokens，"
            f"输出 {self.completion_tokens} tokens，估算费用 {self.total_cost:.6f} {currency}"
        )


# ---------------------------------------------------------------- 逐步记录


@dataclass
class Step:
    """回调记下的一步：类型（chain/llm/tool/retriever）、名称、嵌套深度、耗时与用量（第 3 章）。"""

    kind: str
    name: str
    depth: int
    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    error: str | None = None
    inputs: str = ""  # 工具的参数（第 8 章的步骤表用）
    output: str = ""  # 工具的返回、模型的回复或它要调用的工具（截到 OUTPUT_CHARS 个字）
    started: float = 0.0  # 开始时刻（perf_counter）：步骤按结束先后记录，按它可以排回开始的顺序


OUTPUT_CHARS = 500  # Step.inputs / Step.output 最多记多少个字


def describe_tool_call(call: dict[str, Any]) -> str:
    """一次工具调用写成一行：名字(参数 JSON)，如 search_knowledge({"query": "…"})（第 8 章）。"""
    return f"{call.get('name')}({json.dumps(call.get('args', {}), ensure_ascii=False)})"


def _clip(value: Any) -> str:
    """工具输入输出或模型回复的文字（ToolMessage、AIMessage 取 content；模型要调用工具时写成"→ 名字(参数)"）。"""
    calls = getattr(value, "tool_calls", None)
    if calls:
        value = "→ " + "；".join(describe_tool_call(c) for c in calls)
    elif hasattr(value, "content"):
        value = value.content
    if isinstance(value, list) and value and all(isinstance(b, dict) and "text" in b for b in value):
        value = "".join(str(b["text"]) for b in value)  # 多段内容（如 MCP 工具的结果）：只取文字
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list) else str(value)
    return value[:OUTPUT_CHARS]


def _run_name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    """LangChain 1.x 把运行名放在 kwargs['name']，旧版放在 serialized 里。"""
    if kwargs.get("name"):
        return str(kwargs["name"])
    serialized = serialized or {}
    if serialized.get("name"):
        return str(serialized["name"])
    ids = serialized.get("id") or []
    return str(ids[-1]) if ids else default


@dataclass
class StepLogger(UsageTracker):
    """LangChain 回调：记录链、模型、工具、检索器每一步的开始/结束、耗时、token 与费用（第 3 章）。"""

    run_inline = True  # 异步运行时也在调用方线程里回调，减少日志乱序

    echo: bool = True  # 边运行边打印缩进的日志
    show_time: bool = True  # False 时日志里不出现耗时（便于比较输出）
    skip_kinds: tuple[str, ...] = ()  # 不打印的步骤类型，如 ("chain",)；仍会记录
    printer: Callable[[str], None] = print
    steps: list[Step] = field(default_factory=list)
    _open: dict[Any, tuple[Step, float]] = field(default_factory=dict, repr=False)

    # ---- 通用的开始/结束
    def _start(self, kind: str, name: str, run_id: Any, parent_run_id: Any) -> None:
        with self._lock:
            parent = self._open.get(parent_run_id)
            depth = 0
            if parent:  # 被跳过的类型不占缩进
                depth = parent[0].depth + (parent[0].kind not in self.skip_kinds)
            step = Step(kind, name, depth)
            step.started = time.perf_counter()
            self._open[run_id] = (step, step.started)
        if self.echo and kind not in self.skip_kinds:
            self.printer(f"{'  ' * depth}▶ [{kind}] {name}")

    def _end(self, run_id: Any, error: BaseException | None = None) -> Step | None:
        with self._lock:
            opened = self._open.pop(run_id, None)
            if opened is None:
                return None
            step, started = opened
            step.seconds = time.perf_counter() - started
            if error is not None:
                step.error = f"{type(error).__name__}: {error}"
            self.steps.append(step)
        return step

    def _print_end(self, step: Step | None) -> None:
        if step is None or not self.echo or step.kind in self.skip_kinds:
            return
        parts = []
        if self.show_time:
            parts.append(f"{step.seconds * 1000:.0f} ms")
        if step.kind == "llm":
            currency = get_provider(self.provider).currency
            parts.append(f"输入 {step.input_tokens} / 输出 {step.output_tokens} tokens")
            parts.append(f"费用 {step.cost:.6f} {currency}")
        if step.error:
            parts.append("出错：" + step.error.splitlines()[0][:80])
        tail = "（" + "，".join(parts) + "）" if parts else ""
        self.printer(f"{'  ' * step.depth}◀ [{step.kind}] {step.name}{tail}")

    # ---- 链（LCEL 的每个 Runnable 都会触发）
    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs) -> None:
        self._start("chain", _run_name(serialized, kwargs, "chain"), run_id, parent_run_id)

    def on_chain_end(self, outputs, *, run_id, **kwargs) -> None:
        self._print_end(self._end(run_id))

    def on_chain_error(self, error, *, run_id, **kwargs) -> None:
        self._print_end(self._end(run_id, error))

    # ---- 模型：用量与费用沿用 UsageTracker 的记录
    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None,
                            **kwargs) -> None:
        super().on_chat_model_start(serialized, messages, run_id=run_id, **kwargs)
        self._start("llm", _run_name(serialized, kwargs, "chat_model"), run_id, parent_run_id)

    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs) -> None:
        self._start("llm", _run_name(serialized, kwargs, "llm"), run_id, parent_run_id)

    def on_llm_end(self, response, *, run_id, **kwargs) -> None:
        super().on_llm_end(response, run_id=run_id, **kwargs)
        step = self._end(run_id)
        if step is not None:
            gens = [g for batch in response.generations for g in batch]
            if gens:
                step.output = _clip(getattr(gens[0], "message", None) or gens[0].text)
            for use in llm_usage(response):
                step.input_tokens += use.input_tokens
                step.output_tokens += use.output_tokens
            step.cost = estimate_cost(self.provider, step.input_tokens, step.output_tokens)
        self._print_end(step)

    def on_llm_error(self, error, *, run_id, **kwargs) -> None:
        self._starts.pop(run_id, None)
        self._print_end(self._end(run_id, error))

    # ---- 工具与检索器
    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, **kwargs) -> None:
        self._start("tool", _run_name(serialized, kwargs, "tool"), run_id, parent_run_id)
        with self._lock:
            opened = self._open.get(run_id)
            if opened is not None:
                inputs = kwargs.get("inputs")
                opened[0].inputs = _clip(inputs if inputs is not None else input_str)

    def on_tool_end(self, output, *, run_id, **kwargs) -> None:
        step = self._end(run_id)
        if step is not None:
            step.output = _clip(output)
        self._print_end(step)

    def on_tool_error(self, error, *, run_id, **kwargs) -> None:
        self._print_end(self._end(run_id, error))

    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None,
                           **kwargs) -> None:
        self._start("retriever", _run_name(serialized, kwargs, "retriever"), run_id, parent_run_id)

    def on_retriever_end(self, documents, *, run_id, **kwargs) -> None:
        self._print_end(self._end(run_id))

    def on_retriever_error(self, error, *, run_id, **kwargs) -> None:
        self._print_end(self._end(run_id, error))

    # ---- 汇总
    def by_kind(self) -> dict[str, dict[str, float]]:
        """按步骤类型汇总：次数与总耗时（秒）（第 3 章）。"""
        out: dict[str, dict[str, float]] = {}
        for step in self.steps:
            row = out.setdefault(step.kind, {"count": 0, "seconds": 0.0})
            row["count"] += 1
            row["seconds"] += step.seconds
        return out

    def reset(self) -> None:
        """清空已记录的步骤与调用，复用同一个记录器（第 3 章）。"""
        with self._lock:
            self.steps.clear()
            self.calls.clear()
            self._open.clear()
            self._starts.clear()
