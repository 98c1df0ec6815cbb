"""提供方一览表：地址、密钥变量、默认模型与价格（第 2 章 · 调用大模型 API）。

价格是每百万 token 的标价（输入/输出），只用于课程里估算费用，以官网为准。每一项记下价格出处 price_source，
以及在出处核对到这个价格的日期 price_checked；price_checked 为空表示 2026-12-01 没能在厂商页面上核实，
沿用的是 2025 年的公开标价或第三方转述的标价（PRICES_UNCONFIRMED）。
本地模型（offline、ollama、vllm）不花 API 费用，无需核对。
模型名会过时：每一项都可以在 .env 中用 LLM_MODEL / EMBEDDING_MODEL 覆盖。
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatch
from typing import Any

from helpers.errors import ConfigError

OFFLINE_BASE_URL = "http://offline.llm-universe.local/v1"
PRICES_UNCONFIRMED = "2026-12-01 未能在厂商页面核实（沿用 2025 年的公开标价或第三方转述的标价，见各行的 note 与注释）"


CHECKED = "2026-12-01"  # 下面每条厂商规则在出处核对的日期


@dataclass(frozen=True)
class Rules:
    """一家厂商文档写明的请求规则：get_chat_model / get_embeddings 只在一处读它来改请求（第 2 章）。"""

    # 温度：[temperature_min, temperature_max]；temperature_min_exclusive 为真时是开区间，低于下限发 temperature_floor
    temperature_min: float = 0.0
    temperature_max: float = 2.0
    temperature_min_exclusive: bool = False
    temperature_floor: float = 0.0
    fixed_temperature_models: tuple[str, ...] = ()  # 只接受 temperature=1 的模型名（fnmatch 通配）
    reasoning_off_models: tuple[str, ...] = ()  # 发 reasoning_effort="none" 才接受课程的温度（OpenAI GPT-6 等）
    temperature_source: str = ""
    # 流式用量：top = 最后一块的顶层 usage（OpenAI 约定）；choice = choices[0].usage（Moonshot）
    stream_usage: str = "top"
    stream_usage_source: str = ""
    # 能力：True/False 为文档写明；None 表示未能核实
    tools: bool | None = True
    json_mode: bool | None = True
    n: bool | None = None
    seed: bool | None = None
    capabilities_source: str = ""
    reasoning_field: str = ""  # 思考过程所在的字段（DeepSeek/Qwen 思考模式：reasoning_content）；空表示不读
    thinking_by_default: bool | None = False  # 默认模型是否默认开启思考（开启时有的厂商忽略温度）；None 未能核实
    reasoning_passback: bool = False  # 调用过工具的助手消息要带着 reasoning_content 回传（否则 400）
    reasoning_source: str = ""
    max_tokens_param: str = "max_tokens"  # 还是 max_completion_tokens（OpenAI 新模型只认后者）
    max_tokens_source: str = ""
    # 嵌入：encoding_format、每次最多几段、每段最多几个 token 或字符、默认维度。encoding_format：OpenAI 的接口参考写明
    # 默认 float、也可 base64；别家的文档多半只写 float（千帆写明只收 float），所以除 OpenAI 外一律明确发 float
    # （openai SDK 不写时会要 base64）
    embed_encoding: str = "float"
    embed_batch: int = 64
    embed_max_tokens: int = 0  # 0 表示未写明或未核实
    embed_max_chars: int = 0
    embed_dimensions: int = 0  # 默认嵌入模型的默认维度
    embed_source: str = ""
    checked: str = CHECKED

    def temperature_for(self, model: str, wanted: float) -> tuple[dict[str, Any], str]:
        """按规则给出要发的温度参数与一句中文说明（没改动时说明为空）（第 2 章）。"""
        name = model.lower()
        if any(fnmatch(name, pat) for pat in self.fixed_temperature_models):
            note = "" if wanted == 1 else f"模型 {model} 只接受 temperature=1，已改为 1（设置的 {wanted:g} 未生效）"
            return {"temperature": 1.0}, note
        extra: dict[str, Any] = {}
        if any(fnmatch(name, pat) for pat in self.reasoning_off_models):
            extra["reasoning_effort"] = "none"  # 只有关掉推理时这些模型才接受 temperature
        low, high = self.temperature_min, self.temperature_max
        value = min(max(wanted, low), high)
        if self.temperature_min_exclusive and value <= low:
            value = self.temperature_floor
        note = "" if value == wanted else (
            f"temperature={wanted:g} 超出厂商允许的范围 {'(' if self.temperature_min_exclusive else '['}"
            f"{low:g}, {high:g}]，已改为 {value:g}")
        return {"temperature": value, **extra}, note


@dataclass(frozen=True)
class Provider:
    """一个模型提供方的连接方式、默认模型与请求规则（第 2 章）。"""

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
    models_source: str = ""  # 默认模型（chat_model、embedding_model）的出处与核对日期
    rules: Rules = Rules()  # 厂商文档写明的请求规则（温度、流式用量、嵌入格式与批量……）

    @property
    def env_prefix(self) -> str:
        """该提供方在 .env 中的变量前缀，如 ZHIPUAI（第 2 章）。"""
        return (self.key_env or self.name.upper()).removesuffix("_API_KEY")

    @property
    def needs_key(self) -> bool:
        """调用是否必须提供 API Key（第 2 章）。"""
        return self.key_env is not None and self.name not in {"offline", "ollama", "vllm"}


# ---- 各家的规则：每组规则写明出处与核对日期（CHECKED）；"未能核实"表示没找到 2025 年以后的一手出处
_OPENAI_RULES = Rules(
    temperature_max=2.0,
    thinking_by_default=True,  # gpt-6-luna 是推理模型；课程发 reasoning_effort="none" 关掉（见 reasoning_off_models）
    # o 系列与 gpt-5 / gpt-5-mini / gpt-5-nano 只接受默认温度 1；GPT-6 Sol/Luna、GPT-5.6 要 reasoning_effort="none"
    # 才接受别的温度（GPT-6 Astra 不支持 none，只能 1；gpt-6.1-* 是否支持 none 未能核实）
    fixed_temperature_models=("o1*", "o3*", "o4*", "gpt-5", "gpt-5-mini*", "gpt-5-nano*", "gpt-5-20*",
                              "gpt-6-astra*"),
    reasoning_off_models=("gpt-6-luna*", "gpt-6-sol*", "gpt-5.6-*"),
    temperature_source=(
        "FoundationAgents/OpenManus#490（o 系列：Only the default (1)）；"
        "BerriAI/litellm discussion #42523、docs.litellm.ai/blog/gpt_6_sol_luna"
        "（GPT-6：temperature only applies with reasoning_effort=none）；"
        "anomalyco/models.dev#6639（gpt-5.6-luna 加 none 接受 0.2）；"
        f"BerriAI/litellm-docs#1173（astra 拒绝 none）；{CHECKED}"),
    stream_usage_source=f"OpenAI API stream_options.include_usage：最后一块顶层 usage；{CHECKED}",
    n=True, seed=True,
    capabilities_source=("https://developers.openai.com/api/docs/models/gpt-6-luna"
                         f"（Chat Completions 只有 reasoning_effort=none 时才支持 Function Calling）；{CHECKED}"),
    max_tokens_param="max_completion_tokens",
    max_tokens_source=f"griptape-ai/ComfyUI-Griptape#312、langgenius/dify#24307（gpt-5 拒绝 max_tokens）；{CHECKED}",
    embed_encoding="base64", embed_batch=2048, embed_max_tokens=8192, embed_dimensions=1536,
    embed_source=f"platform.openai.com embeddings 参考：数组不超过 2048 项、每项不超过 8192 token；{CHECKED}",
)
_ZHIPU_RULES = Rules(
    # 智谱两个官方 SDK 都把 temperature<=0 改写成 0.01（并设 do_sample=False），>=1 改写成 0.99，
    # 注释写明"(0.0, 1.0) 开区间"
    temperature_min=0.0, temperature_max=0.99, temperature_min_exclusive=True, temperature_floor=0.01,
    temperature_source=("zhipuai 2.1.5 zhipuai/api_resource/chat/completions.py（temperature<=0 → 0.01）；"
                        "zai-org/z-ai-sdk-python src/zai/api_resource/chat/completions.py；"
                        f"songquanpeng/one-api#1141（0 → 400/1214 temperature参数非法）；{CHECKED}"),
    stream_usage_source=f"未能核实（课程按 OpenAI 约定读顶层 usage；doctor 会检查）；{CHECKED}",
    capabilities_source=("https://docs.bigmodel.cn/cn/guide/models/free/glm-4-flash-250414（流式、Function Calling）；"
                         "java.agentscope.io GLM 兼容说明：response_format 只支持 json_object、只认 max_tokens；"
                         f"{CHECKED}"),
    max_tokens_source=f"java.agentscope.io/v2/zh/integration/model/glm（GLM 只支持 max_tokens）；{CHECKED}",
    embed_batch=64, embed_max_tokens=3072, embed_dimensions=2048,
    embed_source=("https://docs.bigmodel.cn/api-reference/模型-api/文本嵌入（embedding-3：≤64 条、每条 ≤3072 token、"
                  "默认 2048 维）；"
                  f"{CHECKED}"),
)
_QIANFAN_RULES = Rules(
    # ERNIE 的温度是 (0, 1.0]：0 不合法（v2 页面原文未取到，未能核实 v2 是否仍这样）
    temperature_min=0.0, temperature_max=1.0, temperature_min_exclusive=True, temperature_floor=0.01,
    temperature_source=f"langgenius/dify#5572（ERNIE (0, 1.0]，2024）；v2 未能核实；{CHECKED}",
    stream_usage_source=f"未能核实；{CHECKED}",
    tools=None, json_mode=None,
    capabilities_source=f"ERNIE Speed 的 function call 未能核实（只见 ERNIE 3.5/4.x）；{CHECKED}",
    max_tokens_source=f"未能核实（按 OpenAI 旧字段 max_tokens）；{CHECKED}",
    embed_encoding="float", embed_batch=16, embed_max_tokens=384, embed_max_chars=1000, embed_dimensions=384,
    embed_source=("https://cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn（encoding_format 当前只支持float；Embedding-V1 "
                  f"文本数量不超过16，每个文本token数不超过384且长度不超过1000个字符）；{CHECKED}"),
)
_SPARK_RULES = Rules(
    temperature_min=0.0, temperature_max=1.0, temperature_min_exclusive=True, temperature_floor=0.01,
    temperature_source=("docs.iflyaicloud.com/doc/237（Spark HTTP 文档镜像：(0,1]，默认0.5）；xfyun "
                        f"现行表格未能核实；{CHECKED}"),
    stream_usage_source=f"未能核实；{CHECKED}",
    tools=False, json_mode=None,
    capabilities_source=("xfyun.cn/doc/spark/HTTP调用文档.html（Function Call 只写了 4.0Ultra/Max，没写 Lite）；"
                         f"{CHECKED}"),
    max_tokens_source=f"xfyun.cn/doc/spark/HTTP调用文档.html（max_tokens）；{CHECKED}",
    embed_batch=0,
)
_DASHSCOPE_RULES = Rules(
    temperature_min=0.0, temperature_max=1.99,  # 文档写 [0, 2)：上界取不到，课程最多发 1.99
    temperature_source=("moona3k/macparakeet PR #1087（引 docs.qwencloud.com：[0, 2)）；mnfst/modelparams.dev PR #235；"
                        f"{CHECKED}"),
    stream_usage_source=("https://help.aliyun.com/en/model-studio/deep-thinking（stream_options "
                         "include_usage：最后一个数据包带用量）；"
                         f"{CHECKED}"),
    reasoning_field="reasoning_content",
    thinking_by_default=None,  # qwen-plus 是混合思考模型；2026 年的默认开关未能核实
    reasoning_source=("https://help.aliyun.com/en/model-studio/deep-thinking（enable_thinking；思考过程在 "
                      f"reasoning_content，流式在 delta.reasoning_content）；{CHECKED}"),
    capabilities_source=f"未能核实 n/seed；{CHECKED}",
    max_tokens_source=f"未能核实（按 max_tokens）；{CHECKED}",
    embed_batch=10, embed_max_tokens=8192, embed_dimensions=1024,
    embed_source=("https://help.aliyun.com/en/model-studio/text-embedding-synchronous-api（text-embedding-v4：最多 "
                  "10 行、"
                  f"每行 8192 token、默认 1024 维，CNY 0.0005/千 token）；{CHECKED}"),
)
_DEEPSEEK_RULES = Rules(
    temperature_min=0.0, temperature_max=2.0,
    # 思考模式默认开启，这时 temperature 不报错也不生效；课程保留厂商默认（第 8 章演示思考过程与工具调用回传）
    temperature_source=("api-docs.deepseek.com create-chat-completion（[0, 2]）；"
                        "https://api-docs.deepseek.com/zh-cn/guides/thinking_mode/（思考模式默认开启，不支持 "
                        "temperature："
                        f"设置了不报错，也不会生效）；{CHECKED}"),
    thinking_by_default=True,
    stream_usage_source=f"api-docs.deepseek.com（stream_options.include_usage，顶层 usage）；{CHECKED}",
    reasoning_field="reasoning_content", reasoning_passback=True,  # 由 llm.ReasoningChatDeepSeek 回传
    reasoning_source=f"https://api-docs.deepseek.com/zh-cn/guides/thinking_mode/（reasoning_content）；{CHECKED}",
    capabilities_source=("https://api-docs.deepseek.com/zh-cn/quick_start/pricing（Json Output、Tool Calls 支持）；"
                         f"{CHECKED}"),
    max_tokens_source=f"api-docs.deepseek.com create-chat-completion（max_tokens）；{CHECKED}",
    embed_batch=0,
)
_MOONSHOT_RULES = Rules(
    temperature_min=0.0, temperature_max=1.0,
    # kimi-k2.x / K3：思考模式（默认开）只接受 1（关闭思考时 K2.6/K2.5 固定 0.6）
    fixed_temperature_models=("kimi-k2.*", "kimi-k3*", "k3*", "kimi-for-coding*"),
    temperature_source=("Warma10032/VideoAdGuard#34（引 Kimi 文档：K2.6/K2.5 思考时固定 1.0、关闭思考时 0.6）；"
                        "CherryHQ/cherry-studio#14573；XCNXNXNX/dsh-portable-tavern#1（K3 only 1）；"
                        f"moonshot-v1 系列 [0, 1]；{CHECKED}"),
    stream_usage="choice",
    thinking_by_default=True,
    stream_usage_source=("earendil-works/pi#2017、#2016（Kimi K2.5：usage 在 chunk.choices[0].usage）；"
                         f"langchain-ai/langchainjs PR #5551；{CHECKED}"),
    reasoning_field="reasoning_content", reasoning_passback=True,
    reasoning_source=("docs.anyfast.ai Kimi-K2.6（thinking 参数，返回 reasoning_content）；"
                      "platform.kimi.ai/docs/guide/kimi-k2-6-quickstart#tool-use-compatibility（多步工具调用要在上下文里"
                      "保留 reasoning_content，转引自 esokullu/webbrain#143）；不带时 400 \"thinking is enabled but "
                      "reasoning_content is missing in assistant tool call message\"（liliMozi/openhanako#1667）；"
                      f"{CHECKED}"),
    capabilities_source=("https://platform.kimi.com/docs/pricing/chat-k26（ToolCalls、JSON Mode、Partial Mode）；"
                         f"{CHECKED}"),
    max_tokens_source=f"未能核实（按 max_tokens）；{CHECKED}",
    embed_batch=0,
)
_LOCAL_RULES = Rules(
    thinking_by_default=None,  # 看本地跑的是哪个模型（Qwen3 有思考模式）与启动参数（vLLM 的 --reasoning-parser）
    temperature_source=f"OpenAI 兼容本地服务，按 OpenAI 的 [0, 2]；{CHECKED}",
    stream_usage_source=f"ogx-ai/ogx PR #5011（Ollama v0.5.2 起支持 stream_options）；{CHECKED}",
    n=None, seed=True,
    capabilities_source=("vLLM 工具调用要 --enable-auto-tool-choice --tool-call-parser（vllm-project/vllm#9986）；"
                         f"ollama.com/library/qwen3（tools、thinking 标签）；{CHECKED}"),
    reasoning_field="reasoning_content",
    reasoning_source=f"vLLM --reasoning-parser 把思考放进 reasoning_content（未能核实 Ollama 的字段名）；{CHECKED}",
    max_tokens_source=f"OpenAI 兼容层接受 max_tokens；{CHECKED}",
    embed_batch=64,
)
_OLLAMA_RULES = replace(
    _LOCAL_RULES, embed_max_tokens=8192, embed_dimensions=1024,
    embed_source=("ollama docs/openai.md（/v1/embeddings 接受字符串数组）；bge-m3 1024 维、8192 token（"
                  "huggingface.co/BAAI/bge-m3）；"
                  f"每次条数上限未写明，课程按 64；{CHECKED}"))

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in [
        Provider(
            "offline", "离线教学模型", OFFLINE_BASE_URL, None,
            "offline-extractive", "offline-hash-zh", 0.0, 0.0, "CNY",
            key_url="无需密钥",
            note="课程自带：抽取式回答、确定性输出，不是真正的大模型",
            rules=Rules(temperature_source="课程自带的离线服务：接受 [0, 2]", n=True, seed=True, embed_batch=64),
        ),
        # 来源：platform.openai.com/docs/api-reference（base_url）；gpt-4o-mini 2027-01-14 下线，官方推荐替代 gpt-6-luna
        Provider(
            "openai", "OpenAI", "https://api.openai.com/v1", "OPENAI_API_KEY",
            "gpt-6-luna", "text-embedding-3-small", 0.10, 0.50, "USD",
            key_url="https://platform.openai.com/api-keys",
            note="gpt-6-luna 是推理模型：课程发 reasoning_effort=none，才能保留课程的 temperature 与工具调用",
            price_source="https://developers.openai.com/api/docs/models/gpt-6-luna", price_checked=CHECKED,
            models_source=(
                "https://developers.openai.com/api/docs/deprecations（gpt-4o-mini-2024-07-18 于 2027-01-14 下线，推荐 "
                "gpt-6-luna；codersera.com、dev.to 多篇转述一致）；"
                "安装的 openai 3.57.0 types/shared/chat_model.py 同样写着 gpt-4o-mini "
                "\"Announced shutdown date: 2027-01-14\"；text-embedding-3-small 仍在服务"
                f"（karakeep-app/karakeep#2738）；{CHECKED}"),
            rules=_OPENAI_RULES,
        ),
        # 来源：智谱开放平台文档 open.bigmodel.cn/dev/api（OpenAI 兼容地址 /api/paas/v4）
        Provider(
            "zhipuai", "智谱 GLM", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY",
            "glm-4-flash-250414", "embedding-3", 0.0, 0.0, "CNY",
            key_url="https://open.bigmodel.cn/usercenter/apikeys",
            note="glm-4-flash-250414 免费；embedding-3 0.5 元/百万 token（docs.bigmodel.cn，2026-12-01 核对）",
            # 官方文档称 GLM-4-Flash-250414 为"智谱首个免费的大模型 API"
            price_source="https://docs.bigmodel.cn/cn/guide/models/free/glm-4-flash-250414", price_checked=CHECKED,
            # 文本重排序 POST /api/paas/v4/rerank，model 只有 rerank，documents 最多 128 条、每条 ≤ 4096 字符
            rerank_path="rerank", rerank_model="rerank", rerank_max_docs=128,
            rerank_source="https://docs.bigmodel.cn/api-reference/模型-api/文本重排序", rerank_checked="2026-12-01",
            regions=(("bigmodel.cn", "https://open.bigmodel.cn/api/paas/v4"),
                     ("z.ai 国际站", "https://api.z.ai/api/paas/v4")),
            regions_source="zai-org/z-ai-sdk-python README_CN：两站密钥分开（2026-12-01 核对）",
            models_source=("https://docs.bigmodel.cn/cn/guide/models/free/glm-4-flash-250414（免费、非思考）；"
                           "不带后缀的 "
                           "glm-4-flash 不在现行模型列表（docs.bigmodel.cn 对话补全异步的模型枚举）；glm-4.5-flash "
                           "已于 "
                           "2026-01-30 下线并路由到 glm-4.7-flash（"
                           "docs.bigmodel.cn/cn/guide/models/free/glm-4.5-flash）；"
                           f"{CHECKED}"),
            rules=_ZHIPU_RULES,
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
            models_source=("cloud.baidu.com/doc/WENXINWORKSHOP/s/Wm3fhy2vb（ernie-speed-128k 在 Chat V2 模型表，"
                           "2025-01）；"
                           f"2026 年是否仍在服务未能核实；embedding-v1 见 qianfan-api/s/Fm7u3ropn；{CHECKED}"),
            rules=_QIANFAN_RULES,
        ),
        # 来源：讯飞星火「Spark http 调用文档」，OpenAI 兼容地址，密钥为控制台的 APIPassword
        Provider(
            "spark", "讯飞星火", "https://spark-api-open.xf-yun.com/v1", "SPARK_API_KEY",
            "lite", None, 0.0, 0.0, "CNY",
            key_url="https://console.xfyun.cn/services/cbm",
            note="Spark Lite 免费；SPARK_API_KEY 填控制台的 APIPassword",
            price_source="https://xinghuo.xfyun.cn/sparkapi",  # 待核实：只找到第三方文章说 Lite 免费
            models_source=f"xfyun.cn/doc/spark/HTTP调用文档.html（Lite 仍列出，免费）；2026 年状态未能核实；{CHECKED}",
            rules=_SPARK_RULES,
        ),
        # 来源：help.aliyun.com/zh/dashscope「OpenAI Chat / Embedding 接口兼容」
        Provider(
            "dashscope", "通义千问/DashScope", "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "DASHSCOPE_API_KEY", "qwen-plus", "text-embedding-v4", 0.8, 2.0, "CNY",
            key_url="https://bailian.console.aliyun.com/?apiKey=1",
            note="text-embedding-v4 0.5 元/百万 token（help.aliyun.com，2026-12-01 核对）；qwen-plus 价格未能核实",
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
            models_source=("https://help.aliyun.com/en/model-studio/deep-thinking（qwen-plus 为混合思考模型，"
                           "enable_thinking "
                           "切换）；"
                           "qwen-plus 在 2026 年是否默认思考未能核实；text-embedding-v4 见 "
                           f"help.aliyun.com/en/model-studio/text-embedding-synchronous-api；{CHECKED}"),
            rules=_DASHSCOPE_RULES,
        ),
        # 来源：api-docs.deepseek.com（base_url https://api.deepseek.com，兼容 /v1）
        Provider(
            "deepseek", "DeepSeek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
            "deepseek-flash", None, 2.0, 8.0, "CNY",
            key_url="https://platform.deepseek.com/api_keys",
            note=("deepseek-flash（DeepSeek-V4.1-Flash）高峰时段 2/8 元，空闲时段减半（缓存命中输入 0.04 元）；"
                  "默认开启思考模式，此时 temperature 不生效"),
            price_source="https://api-docs.deepseek.com/zh-cn/quick_start/pricing", price_checked=CHECKED,
            models_source=("https://api-docs.deepseek.com/zh-cn/quick_start/pricing（模型名请使用 deepseek-flash；"
                           "deepseek-v4-flash 旧名仍可调用但由 V4.1-Flash 服务）；deepseek-chat/deepseek-reasoner 于 "
                           f"2026-07-24 15:59 UTC 停用（mozilla-ai/any-llm#1172、Open-Less/openless#132）；{CHECKED}"),
            rules=_DEEPSEEK_RULES,
        ),
        # 来源：platform.moonshot.cn/docs（base_url https://api.moonshot.cn/v1）
        Provider(
            "moonshot", "Moonshot/Kimi", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY",
            "kimi-k2.6", None, 0.75, 3.50, "USD",
            key_url="https://platform.moonshot.cn/console/api-keys",
            note="kimi-k2.6 只接受 temperature=1（课程自动改为 1）；价格是第三方（Venice）标价，官方价格页未能核实",
            price_source="https://platform.kimi.com/docs/pricing/chat-k26",  # 官方页存档里没有价格数字
            regions=(("中国站", "https://api.moonshot.cn/v1"), ("国际站", "https://api.moonshot.ai/v1")),
            regions_source=("lidge-jun/opencodex#728 引用 Moonshot 文档 \"Mixing keys across platforms returns 401\"；"
                            "can1357/oh-my-pi#6052（2026-12-01 核对）"),
            models_source=("moonshot-v1-8k 于 2026-08-31 下线（diillson/chatcli#1344）；现行 kimi-k3、"
                           "kimi-k2.7-code、kimi-k2.6"
                           "（anomalyco/models.dev PR #6101、promptfoo.dev/docs/providers/moonshot、"
                           f"chatbase.co/blog/kimi-k2-api）；{CHECKED}"),
            rules=_MOONSHOT_RULES,
        ),
        # 来源：github.com/ollama/ollama docs/openai.md（本地 OpenAI 兼容地址 :11434/v1）
        Provider(
            "ollama", "本地 Ollama（LLaMA/GLM/Qwen/Baichuan…）", "http://localhost:11434/v1",
            "OLLAMA_API_KEY", "qwen3:8b", "bge-m3", 0.0, 0.0, "CNY",
            key_url="无需密钥：先 `ollama pull qwen3:8b`",
            # 没有重排序接口：github.com/ollama/ollama/issues/3368 仍未关闭（2026-12-01 核对），rerank_path 留空
            rerank_source="https://github.com/ollama/ollama/issues/3368", rerank_checked="2026-12-01",
            models_source=("ollama.com/library/qwen3（0.6b–235b，tools、thinking）；更新的 Qwen 官方标签未能核实；"
                           f"{CHECKED}"),
            rules=_OLLAMA_RULES,
        ),
        # 来源：docs.vllm.ai「OpenAI-Compatible Server」。vllm serve 默认 :8000，与 chroma run 的默认端口 8000
        # （docs.trychroma.com/docs/cli/run）相同：课程约定 vLLM 用 vllm serve … --port 8001
        Provider(
            "vllm", "本地 vLLM", "http://localhost:8001/v1", "VLLM_API_KEY",
            "Qwen/Qwen3-8B", None, 0.0, 0.0, "CNY",
            key_url="无需密钥（若启动时加了 --api-key 则填同一个值）",
            note=("启动：vllm serve Qwen/Qwen3-8B --port 8001（8000 留给 chroma run）；"
                  "第 3 章工具调用另加 --enable-auto-tool-choice --tool-call-parser hermes"),
            # Re-rank API：/rerank、/v1/rerank、/v2/rerank，兼容 Jina 与 Cohere 的请求格式；要用交叉编码器模型启动，
            # 例如 vllm serve BAAI/bge-reranker-v2-m3（模型名即 RERANK_MODEL）
            rerank_path="rerank", rerank_model="BAAI/bge-reranker-v2-m3",
            rerank_source="https://docs.vllm.ai/en/stable/serving/openai_compatible_server.html#re-rank-api",
            rerank_checked="2026-12-01",
            models_source=("huggingface.co/Qwen/Qwen3-4B 等 Qwen3 稠密模型（0.6B–32B）；端口见 "
                           "docs.trychroma.com/docs/cli/run；"
                           f"{CHECKED}"),
            rules=_LOCAL_RULES,
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
