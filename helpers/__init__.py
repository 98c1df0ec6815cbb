"""LLM Universe 课程的共享代码库：配置、模型、知识库、检索问答、评估与应用。"""

import os as _os
import warnings as _warnings

# 课程从不"打电话回家"：关闭 Chroma 与 Gradio 的统计上报
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
_os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
# 没装 ipywidgets 的内核里 tqdm.auto 会警告一次，警告里带绝对路径（随机器而变，笔记本输出就比不上了）
_warnings.filterwarnings("ignore", message="IProgress not found")

from helpers import netguard as _netguard  # noqa: E402

_netguard.install_if_requested()

__version__ = "0.1.0"
