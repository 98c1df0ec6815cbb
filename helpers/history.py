"""聊天历史：一个会话 id 规则、按会话保存的记录（可落盘）、有上限的会话仓库、按 token 预算裁剪（第 3 章）。

检索问答链（第 5 章）与应用（第 7 章）保存历史都用这里的零件（HistoryStore 协议）。
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    messages_from_dict,
    messages_to_dict,
    trim_messages,
)

from helpers.text import count_tokens

# ---------------------------------------------------------------- 会话 id：全课程一条规则

# 字母、数字、汉字、下划线、短横线和点，1～128 个字符，不能全是点（会话 id 可能成为文件名）
SESSION_ID_RE = re.compile(r"^[\w\-.]{1,128}$")
SESSION_ID_RULE = "只能用字母、数字、汉字、下划线、短横线和点，长度 1～128"


def check_session_id(session_id: str) -> str:
    """会话 id 只能含字母、数字、汉字、下划线、短横线和点（它会成为文件名）（第 3 章）。"""
    if not isinstance(session_id, str) or not SESSION_ID_RE.match(session_id) \
            or set(session_id) == {"."}:
        raise ValueError(
            f"会话 id {session_id!r} 不合法：{SESSION_ID_RULE}，例如 'user-42'"
        )
    return session_id


class HistoryStore(Protocol):
    """按会话 id 读写历史消息的仓库：检索问答链只要求这两个方法（第 5 章）。"""

    def messages(self, session_id: str) -> list[BaseMessage]: ...

    def add_messages(self, session_id: str, messages: list[BaseMessage]) -> None: ...


# ---------------------------------------------------------------- 一个会话的记录

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


# ---------------------------------------------------------------- 按会话保存多份记录


class SessionHistoryStore:
    """按会话 id 保存多份聊天记录；给定目录时每个会话存成 <id>.json，重启后还在（第 3 章）。"""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._histories: dict[str, ChatHistory] = {}
        self._lock = threading.Lock()

    def path_for(self, session_id: str) -> Path | None:
        """某个会话的 JSON 文件路径；不落盘时为 None（第 3 章）。"""
        if self.directory is None:
            return None
        return self.directory / f"{check_session_id(session_id)}.json"

    def get(self, session_id: str) -> ChatHistory:
        """取某个会话的聊天记录，没有就新建（落盘模式下先读已有文件）（第 3 章）。"""
        check_session_id(session_id)
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

    # ---- HistoryStore 协议：检索问答链（第 5 章）也能直接用它保存历史
    def messages(self, session_id: str) -> list[BaseMessage]:
        """某个会话的全部消息（副本）（第 3 章）。"""
        return list(self.get(session_id).messages)

    def add_messages(self, session_id: str, messages: Sequence[BaseMessage]) -> None:
        """往某个会话追加消息（落盘模式下随即保存）（第 3 章）。"""
        self.get(session_id).add_messages(messages)


# ---------------------------------------------------------------- 有上限的会话仓库（应用用）


class SessionStore:
    """线程安全的会话历史，最多保留 max_sessions 个会话（最久未用的先丢）（第 7 章）。

    每个会话只留最近 max_messages 条消息；两个上限都传 None 就是不设上限的进程内仓库（检索问答链的默认）。
    """

    def __init__(self, max_sessions: int | None = 1000, max_messages: int | None = 40) -> None:
        self.max_sessions = max_sessions
        self.max_messages = max_messages
        self._data: OrderedDict[str, list[BaseMessage]] = OrderedDict()
        self._lock = threading.Lock()

    def messages(self, session_id: str) -> list[BaseMessage]:
        """某个会话的消息（副本）；没有这个会话时为空列表。"""
        with self._lock:
            return list(self._data.get(session_id, []))

    def add_messages(self, session_id: str, messages: list[BaseMessage]) -> None:
        """追加消息，并把这个会话记为最近用过；超出上限时丢掉最旧的。"""
        with self._lock:
            history = self._data.pop(session_id, []) + list(messages)
            if self.max_messages is not None:
                history = history[-self.max_messages:]
            self._data[session_id] = history
            while self.max_sessions is not None and len(self._data) > self.max_sessions:
                self._data.popitem(last=False)

    def clear(self, session_id: str) -> None:
        """忘掉某个会话。"""
        with self._lock:
            self._data.pop(session_id, None)


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
