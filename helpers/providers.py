"""提供方一览表：地址、密钥变量、默认模型与价格（第 2 章 · 调用大模型 API）。

价格是每百万 token 的标价（输入/输出），只用于课程里估算费用，以官网为准。每一项记下价格出处 price_source，
以及在出处核对到这个价格的日期 price_checked；price_checked 为空表示 2026-12-01 没能在厂商页面上核实，
沿用的是 2025 年公开的标价（PRICES_UNCONFIRMED）。本地模型（offline、ollama、vllm）不花 API 费用，无需核对。
模型名会过时：每一项都可以在 .env 中用 LLM_MODEL / EMBEDDING_MODEL 覆盖。
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.errors import ConfigError

OFFLINE_BASE_URL = "http://offline.llm-universe.local/v1"
PRICES_UNCONFIRMED = "2025 年公开的标价，2026-12-01 未能在厂商页面核实"


@dataclass(frozen=True)
class Provider:
    """一个模型提供方的连接方式与默认模型（第 2 章）。"""

    name: str
    label: str
    base_url: str
    key_env: str | None
    chat_model: str
    embedding_model: str | None
    price_in: float
    price_out: float
    currency: str
    key_url: str
    note: str = ""
    price_source: str = ""  # 价格出处：厂商的价格页
    price_checked: str = ""  # 在 price_source 上核对到这个价格的日期；空表示未能核实（见 PRICES_UNCONFIRMED）
    # 重排序接口（第 8 章，helpers.knowledge.rerank）：以 / 开头的路径接在 base_url 的主机后面，否则接在 base_url 后面；
    # 空表示课程没有接入这家的重排序接口。rerank_max_docs 是文档写明的每次请求最多几段文本
    rerank_path: str = ""
    rerank_model: str = ""
    rerank_max_docs: int = 0
    rerank_source: str = ""  # 出处：厂商文档
    rerank_checked: str = ""  # 在 rerank_source 上核对的日期
    # 分地域的提供方：各地域的 (名称, base_url)，第一个就是 base_url；各地域的密钥不通用（doctor 在 401/403 时提示）
    regions: tuple[tuple[str, str], ...] = ()
    regions_source: str = ""  # 出处与核对日期

    @property
    def env_prefix(self) -> str:
        """该提供方在 .env 中的变量前缀，如 ZHIPUAI（第 2 章）。"""
        return (self.key_env or self.name.upper()).removesuffix("_API_KEY")

    @property
    def needs_key(self) -> bool:
        """调用是否必须提供 API Key（第 2 章）。"""
        return self.key_env is not None and self.name not in {"offline", "ollama", "vllm"}


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in [
        Provider(
            "offline", "离线教学模型", OFFLINE_BASE_URL, None,
            "offline-extractive", "offline-hash-zh", 0.0, 0.0, "CNY",
            key_url="无需密钥",
            note="课程自带：抽取式回答、确定性输出，不是真正的大模型",
        ),
        # 来源：platform.openai.com/docs/api-reference（base_url 与模型价格页）
        Provider(
            "openai", "OpenAI", "https://api.openai.com/v1", "OPENAI_API_KEY",
            "gpt-4o-mini", "text-embedding-3-small", 0.15, 0.60, "USD",
            key_url="https://platform.openai.com/api-keys",
            # 官方价格页的存档里没找到 gpt-4o-mini 这一行；0.15/0.60 只见于第三方（OpenRouter、Vercel AI Gateway）
            price_source="https://developers.openai.com/api/docs/pricing",
        ),
        # 来源：智谱开放平台文档 open.bigmodel.cn/dev/api（OpenAI 兼容地址 /api/paas/v4）
        Provider(
            "zhipuai", "智谱 GLM", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY",
            "glm-4-flash", "embedding-3", 0.0, 0.0, "CNY",
            key_url="https://open.bigmodel.cn/usercenter/apikeys",
            note="glm-4-flash 免费；embedding-3 0.5 元/百万 token（docs.bigmodel.cn，2026-12-01 核对）",
            # 官方 GLM-4 页称 GLM-4-Flash 为“免费语言模型”
            price_source="https://docs.bigmodel.cn/cn/guide/models/text/glm-4", price_checked="2026-12-01",
            # 文本重排序 POST /api/paas/v4/rerank，model 只有 rerank，documents 最多 128 条、每条 ≤ 4096 字符
            rerank_path="rerank", rerank_model="rerank", rerank_max_docs=128,
            rerank_source="https://docs.bigmodel.cn/api-reference/模型-api/文本重排序", rerank_checked="2026-12-01",
            regions=(("bigmodel.cn", "https://open.bigmodel.cn/api/paas/v4"),
                     ("z.ai 国际站", "https://api.z.ai/api/paas/v4")),
            regions_source="zai-org/z-ai-sdk-python README_CN：两站密钥分开（2026-12-01 核对）",
        ),
        # 来源：cloud.baidu.com/doc/qianfan/s/Hmh4suq26「OpenAI SDK 兼容介绍」（base_url /v2）
        Provider(
            "qianfan", "百度文心/千帆", "https://qianfan.baidubce.com/v2", "QIANFAN_API_KEY",
            "ernie-speed-128k", "embedding-v1", 0.0, 0.0, "CNY",
            key_url="https://console.bce.baidu.com/iam/#/iam/apikey/list",
            note="ERNIE Speed 免费；更强的 ernie-4.0-turbo-8k 按量计费",
            # 官方限流说明只写了 ERNIE-Speed-8K“调用免费”，没找到 128K 版本的官方价格
            price_source="https://ai.baidu.com/ai-doc/WENXINWORKSHOP/Llroa77io",
            # 重排序 V2：POST /v2/rerankers，预置服务 model 固定为 bce-reranker-base；documents ≤ 64 条、每条 ≤ 4096 字
            rerank_path="rerankers", rerank_model="bce-reranker-base", rerank_max_docs=64,
            rerank_source="https://cloud.baidu.com/doc/WENXINWORKSHOP/s/Dm6071svf", rerank_checked="2026-12-01",
        ),
        # 来源：讯飞星火「Spark http 调用文档」，OpenAI 兼容地址，密钥为控制台的 APIPassword
        Provider(
            "spark", "讯飞星火", "https://spark-api-open.xf-yun.com/v1", "SPARK_API_KEY",
            "lite", None, 0.0, 0.0, "CNY",
            key_url="https://console.xfyun.cn/services/cbm",
            note="Spark Lite 免费；SPARK_API_KEY 填控制台的 APIPassword",
            price_source="https://xinghuo.xfyun.cn/sparkapi",  # 待核实：只找到第三方文章说 Lite 免费
        ),
        # 来源：help.aliyun.com/zh/dashscope「OpenAI Chat / Embedding 接口兼容」
        Provider(
            "dashscope", "通义千问/DashScope", "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "DASHSCOPE_API_KEY", "qwen-plus", "text-embedding-v3", 0.8, 2.0, "CNY",
            key_url="https://bailian.console.aliyun.com/?apiKey=1",
            # 官方模型列表的存档是 2024 年的（qwen-plus 0.0008/0.002 元每千 token），没找到更新的官方页面
            price_source="https://help.aliyun.com/zh/model-studio/developer-reference/billing-for-applied-computer-vision",
            # 文本排序走原生接口（不在兼容模式下）：POST /api/v1/services/rerank/text-rerank/text-rerank，
            # 模型 qwen3-rerank 或 gte-rerank-v2，每次最多 500 个 Document
            rerank_path="/api/v1/services/rerank/text-rerank/text-rerank", rerank_model="qwen3-rerank",
            rerank_max_docs=500,
            rerank_source="https://help.aliyun.com/zh/model-studio/text-rerank-api", rerank_checked="2026-12-01",
            regions=(("北京", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
                     ("新加坡", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1")),
            regions_source=("alibabacloud.com/help/en/model-studio \"keys are region-specific\"；"
                            "NousResearch/hermes-agent#3912（2026-12-01 核对）"),
        ),
        # 来源：api-docs.deepseek.com（base_url https://api.deepseek.com，兼容 /v1）
        Provider(
            "deepseek", "DeepSeek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
            "deepseek-chat", None, 2.0, 8.0, "CNY",
            key_url="https://platform.deepseek.com/api_keys",
            # 官方价格页的存档仍是 V3 时期（$0.27/$1.10，即 2/8 元）；第三方资料称 2025 年起已多次降价，未能核实
            price_source="https://api-docs.deepseek.com/zh-cn/quick_start/pricing",
        ),
        # 来源：platform.moonshot.cn/docs（base_url https://api.moonshot.cn/v1）
        Provider(
            "moonshot", "Moonshot/Kimi", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY",
            "moonshot-v1-8k", None, 2.0, 10.0, "CNY",
            key_url="https://platform.moonshot.cn/console/api-keys",
            price_source="https://platform.kimi.com/docs/pricing/chat-v1",  # 待核实：没读到这页的官方价格
            regions=(("中国站", "https://api.moonshot.cn/v1"), ("国际站", "https://api.moonshot.ai/v1")),
            regions_source=("lidge-jun/opencodex#728 引用 Moonshot 文档 \"Mixing keys across platforms returns 401\"；"
                            "can1357/oh-my-pi#6052（2026-12-01 核对）"),
        ),
        # 来源：github.com/ollama/ollama docs/openai.md（本地 OpenAI 兼容地址 :11434/v1）
        Provider(
            "ollama", "本地 Ollama（LLaMA/GLM/Qwen/Baichuan…）", "http://localhost:11434/v1",
            "OLLAMA_API_KEY", "qwen2.5:7b", "bge-m3", 0.0, 0.0, "CNY",
            key_url="无需密钥：先 `ollama pull qwen2.5:7b`",
            # 没有重排序接口：github.com/ollama/ollama/issues/3368 仍未关闭（2026-12-01 核对），rerank_path 留空
            rerank_source="https://github.com/ollama/ollama/issues/3368", rerank_checked="2026-12-01",
        ),
        # 来源：docs.vllm.ai「OpenAI-Compatible Server」（vllm serve 默认 :8000/v1）
        Provider(
            "vllm", "本地 vLLM", "http://localhost:8000/v1", "VLLM_API_KEY",
            "Qwen/Qwen2.5-7B-Instruct", None, 0.0, 0.0, "CNY",
            key_url="无需密钥（若启动时加了 --api-key 则填同一个值）",
            # Re-rank API：/rerank、/v1/rerank、/v2/rerank，兼容 Jina 与 Cohere 的请求格式；要用交叉编码器模型启动，
            # 例如 vllm serve BAAI/bge-reranker-v2-m3（模型名即 RERANK_MODEL）
            rerank_path="rerank", rerank_model="BAAI/bge-reranker-v2-m3",
            rerank_source="https://docs.vllm.ai/en/stable/serving/openai_compatible_server.html#re-rank-api",
            rerank_checked="2026-12-01",
        ),
    ]
}

_ALIASES = {
    "zhipu": "zhipuai", "glm": "zhipuai", "智谱": "zhipuai",
    "wenxin": "qianfan", "ernie": "qianfan", "baidu": "qianfan", "文心": "qianfan",
    "xinghuo": "spark", "iflytek": "spark", "星火": "spark",
    "qwen": "dashscope", "tongyi": "dashscope", "通义": "dashscope",
    "kimi": "moonshot", "local": "ollama",
}


def resolve_provider_name(name: str, variable: str = "LLM_PROVIDER") -> str:
    """把提供方名称（含常见别名）规范化；未知名称给出中文错误（第 2 章）。"""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PROVIDERS:
        known = "、".join(PROVIDERS)
        raise ConfigError(f"未知的提供方 {variable}={name!r}：可选 {known}")
    return key


def get_provider(name: str) -> Provider:
    """按名称（或别名）取提供方（第 2 章）。"""
    return PROVIDERS[resolve_provider_name(name)]


def estimate_cost(provider: str, prompt_tokens: int, completion_tokens: int) -> float:
    """按价格表估算一次调用的费用（第 2 章）。"""
    p = get_provider(provider)
    return (prompt_tokens * p.price_in + completion_tokens * p.price_out) / 1_000_000
