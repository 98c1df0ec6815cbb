"""测试总开关：默认强制离线、禁止外网；LLM_UNIVERSE_LIVE=1 时用 .env 里的真实提供方。"""

from __future__ import annotations

import os

LIVE = os.environ.get("LLM_UNIVERSE_LIVE") == "1"

if not LIVE:
    # 必须在 nbval 启动内核之前设置：内核继承这些环境变量
    for _name in list(os.environ):
        if _name.endswith("_API_KEY") or _name.endswith("_BASE_URL") or _name.startswith("LLM_"):
            del os.environ[_name]
    os.environ.update(
        {
            "LLM_UNIVERSE_IGNORE_DOTENV": "1",
            "LLM_UNIVERSE_NO_NETWORK": "1",
            "LLM_PROVIDER": "offline",
            "EMBEDDING_PROVIDER": "offline",
            "CHROMA_HOST": "",
            "PYTHONHASHSEED": "0",
            "TQDM_DISABLE": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        }
    )
    os.environ.pop("CHROMA_HOST")
    from helpers import netguard

    netguard.install()
