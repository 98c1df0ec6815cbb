"""链的通用零件：逐步记录的回调、按会话保存的聊天记录、按 token 预算裁剪历史（第 3 章 · LangChain）。

检索问答链（第 5 章）与应用（第 7 章）都复用这里的零件，所以它们只依赖 langchain-core。
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    messages_from_dict,
    messages_to_dict,
    trim_messages,
)

from helpers.llm import UsageTracker
from helpers.offline.text import count_tokens
from helpers.providers import estimate_cost, get_provider

# ---------------------------------------------------------------- 回调：逐步记录


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
            self._open[run_id] = (step, time.perf_counter())
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
            for gens in response.generations:
                for gen in gens:
                    usage = getattr(getattr(gen, "message", None), "usage_metadata", None) or {}
                    step.input_tokens += int(usage.get("input_tokens", 0))
                    step.output_tokens += int(usage.get("output_tokens", 0))
            step.cost = estimate_cost(self.provider, step.input_tokens, step.output_tokens)
        self._print_end(step)

    def on_llm_error(self, error, *, run_id, **kwargs) -> None:
        self._starts.pop(run_id, None)
        self._print_end(self._end(run_id, error))

    # ---- 工具与检索器
    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, **kwargs) -> None:
        self._start("tool", _run_name(serialized, kwargs, "tool"), run_id, parent_run_id)

    def on_tool_end(self, output, *, run_id, **kwargs) -> None:
        self._print_end(self._end(run_id))

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


# ---------------------------------------------------------------- 会话历史

_SESSION_ID_RE = re.compile(r"^[\w\-.]{1,128}$")


class ChatHistory:
    """一个会话的聊天记录；给了 path 就在每次变更后写成 JSON 文件（第 3 章）。

    接口与 LangChain 的 InMemoryChatMessageHistory 相同（messages、add_messages、clear 及异步版本），
    可直接交给 RunnableWithMessageHistory；自己写是因为 langchain-core 1.6.4 起那组类已被标为弃用。
    """

    def __init__(self, path: Path | None = None, messages: Sequence[BaseMessage] = ()) -> None:
        self.path = path
        self.messages: list[BaseMessage] = list(messages)
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            self.messages = messages_from_dict(json.loads(path.read_text(encoding="utf-8")))

    def __repr__(self) -> str:
        return f"ChatHistory({len(self.messages)} 条消息{', 保存在 ' + self.path.name if self.path else ''})"

    def __len__(self) -> int:
        return len(self.messages)

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = json.dumps(messages_to_dict(self.messages), ensure_ascii=False, indent=1)
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(self.path)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """追加若干条消息（并保存）（第 3 章）。"""
        with self._lock:
            self.messages.extend(messages)
            self._save()

    def add_message(self, message: BaseMessage) -> None:
        """追加一条消息（第 3 章）。"""
        self.add_messages([message])

    def add_user_message(self, text: str) -> None:
        """追加一条用户消息（第 3 章）。"""
        self.add_messages([HumanMessage(text)])

    def add_ai_message(self, text: str) -> None:
        """追加一条模型回答（第 3 章）。"""
        self.add_messages([AIMessage(text)])

    def clear(self) -> None:
        """清空记录，并删除对应的文件（第 3 章）。"""
        with self._lock:
            self.messages = []
            if self.path is not None:
                self.path.unlink(missing_ok=True)

    async def aget_messages(self) -> list[BaseMessage]:
        """messages 的异步版本（RunnableWithMessageHistory 的 ainvoke 会用到）（第 3 章）。"""
        return self.messages

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """add_messages 的异步版本（第 3 章）。"""
        self.add_messages(messages)

    async def aclear(self) -> None:
        """clear 的异步版本（第 3 章）。"""
        self.clear()


class SessionHistoryStore:
    """按会话 id 保存多份聊天记录；给定目录时每个会话存成 <id>.json，重启后还在（第 3 章）。"""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._histories: dict[str, ChatHistory] = {}
        self._lock = threading.Lock()

    @staticmethod
    def check_session_id(session_id: str) -> str:
        """会话 id 只能含字母、数字、汉字、下划线、短横线和点（它会成为文件名）（第 3 章）。"""
        if not isinstance(session_id, str) or not _SESSION_ID_RE.match(session_id) \
                or set(session_id) == {"."}:
            raise ValueError(
                f"会话 id {session_id!r} 不合法：只能用字母、数字、汉字、下划线、短横线和点，"
                "长度 1～128，例如 'user-42'"
            )
        return session_id

    def path_for(self, session_id: str) -> Path | None:
        """某个会话的 JSON 文件路径；不落盘时为 None（第 3 章）。"""
        if self.directory is None:
            return None
        return self.directory / f"{self.check_session_id(session_id)}.json"

    def get(self, session_id: str) -> ChatHistory:
        """取某个会话的聊天记录，没有就新建（落盘模式下先读已有文件）（第 3 章）。"""
        self.check_session_id(session_id)
        with self._lock:
            if session_id not in self._histories:
                self._histories[session_id] = ChatHistory(self.path_for(session_id))
            return self._histories[session_id]

    __call__ = get  # 可直接作为 RunnableWithMessageHistory 的 get_session_history

    def clear(self, session_id: str) -> None:
        """清空并忘掉某个会话（连同它的文件）（第 3 章）。"""
        self.get(session_id).clear()
        with self._lock:
            self._histories.pop(session_id, None)

    def session_ids(self) -> list[str]:
        """已知的会话 id（内存里的，加上目录里已有文件的），按名称排序（第 3 章）。"""
        ids = set(self._histories)
        if self.directory is not None and self.directory.is_dir():
            ids.update(p.stem for p in self.directory.glob("*.json"))
        return sorted(ids)

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, str) and session_id in self.session_ids()


# ---------------------------------------------------------------- 按 token 预算裁剪


def count_message_tokens(messages: Sequence[BaseMessage]) -> int:
    """估算一组消息的 token 数：正文 + 工具调用参数 + 每条 4 个（与离线模型的计数一致）（第 3 章）。"""
    total = 0
    for msg in messages:
        total += count_tokens(msg.text) + 4
        for call in getattr(msg, "tool_calls", None) or []:
            total += count_tokens(call.get("name", "") + json.dumps(call.get("args", {}),
                                                                    ensure_ascii=False))
    return total


def trim_history(
    messages: Sequence[BaseMessage],
    max_tokens: int,
    *,
    strategy: Literal["first", "last"] = "last",
    include_system: bool = True,
    start_on: str | None = "human",
) -> list[BaseMessage]:
    """把历史裁剪到 max_tokens 以内：默认保留系统消息和最近的几轮，且从用户消息开始（第 3 章）。"""
    if max_tokens < 0:
        raise ValueError(f"max_tokens={max_tokens} 不能为负数：请给出允许历史占用的 token 数")
    return trim_messages(
        list(messages),
        max_tokens=max_tokens,
        token_counter=count_message_tokens,  # 不用 tiktoken：它离线时要下载词表
        strategy=strategy,
        include_system=include_system if strategy == "last" else False,
        start_on=start_on if strategy == "last" else None,
    )
