"""测试总开关：默认强制离线、禁止外网；LLM_UNIVERSE_LIVE=1 时用 .env 里的真实提供方。"""

from __future__ import annotations

import os

from helpers import netguard

LIVE = os.environ.get("LLM_UNIVERSE_LIVE") == "1"

if not LIVE:
    # 必须在 nbval 启动内核之前设置：内核继承这些环境变量（与 tools.notebooks 重跑笔记本时同一份）
    _env = netguard.offline_env()
    for _name in set(os.environ) - set(_env):
        del os.environ[_name]
    os.environ.update(_env)
    netguard.install()
