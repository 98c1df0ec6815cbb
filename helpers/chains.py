"""过渡：旧导入路径。回调在 helpers.callbacks，聊天历史在 helpers.history（第 3 章）。"""

from helpers.callbacks import Step, StepLogger  # noqa: F401  # 过渡：旧导入路径
from helpers.history import (  # noqa: F401  # 过渡：旧导入路径
    ChatHistory,
    SessionHistoryStore,
    count_message_tokens,
    trim_history,
)
