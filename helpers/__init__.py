"""LLM Universe 课程的共享代码库：配置、模型、知识库、检索问答、评估与应用。"""

import os as _os

# 课程从不"打电话回家"：关闭 Chroma 与 Gradio 的统计上报
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
_os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import netguard as _netguard  # noqa: E402

_netguard.install_if_requested()

__version__ = "0.1.0"
