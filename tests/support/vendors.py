"""厂商模拟器：一个回环地址上的 FastAPI 应用，按路径前缀 /<厂商>/… 扮演各家 OpenAI 兼容接口（测试用）。

每家厂商一张小表（VENDORS[name]）：模型、温度、流式用量的位置、工具、思考过程、嵌入的编码/批大小/单段上限，
以及违反规则时该厂商文档或公开报错原文里的状态码与错误体（VendorSpec.rules，测试可以逐条遍历）。
这些规则按厂商文档写成，与 helpers/providers.py 无关：课程哪里跟厂商不一致，这里就会报错。
每条事实旁注出处与核对日期（2026-12-01）；“未能核实”表示没找到 2025 年以后的一手出处，只是按公开报错原文模仿。

不是真实厂商的替身（真实检查在 .github/workflows/live.yml），只是两次真实检查之间让每一行提供方保持诚实的最快办法。
手写而不用现成的假服务：没有哪个库模仿这些厂商各自的规则与错误体。
"""

from __future__ import annotations

import array
import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

CHECKED = "2026-12-01"
FAKE_KEY = "sim-key-3f9a1c7e5b2d4068a1b2c3d4e5f60718"  # 模拟器默认接受的密钥；测试断言它从不出现在输出里
REPLY = "好"
EMBED_DIM = 8


@dataclass(frozen=True)
class Rule:
    """一条厂商规则被违反时的回答：种类、状态码、错误体（{model}、{n} 等占位）、出处与核对日期（测试用）。

    kind：bad_key、rate_limit、retired_model、temperature_fixed、temperature_range、max_tokens、encoding、
    batch、text_length、tool_choice、reasoning_passback。
    """

    kind: str
    status: int
    body: Any
    source: str
    example: dict[str, str] = field(default_factory=dict)  # 让课程触发这条规则的 .env（给测试用）

    def render(self, **values: Any) -> Any:
        """把错误体里的占位换成这次请求的值。"""
        def fill(obj: Any) -> Any:
            if isinstance(obj, str):
                try:
                    return obj.format(**values)
                except (KeyError, IndexError):
                    return obj
            if isinstance(obj, dict):
                return {k: fill(v) for k, v in obj.items()}
            return obj
        return fill(self.body)


@dataclass(frozen=True)
class VendorSpec:
    """一家厂商按文档的行为（测试用）：path 是 base_url 的路径部分，模拟器把它接在 /<name> 后面。"""

    name: str
    path: str
    chat_models: tuple[str, ...]  # 现有的聊天模型（fnmatch 通配）
    embedding_models: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()  # 文档或公告写明已下线的模型名（测试用；不在 chat_models 里的都按“模型不存在”回答）
    temperature: tuple[float, float, bool, bool] = (0.0, 2.0, False, False)  # (下限, 上限, 下限开, 上限开)
    fixed_temperature: tuple[str, ...] = ()  # 只接受 temperature=1 的模型
    temperature_if_reasoning_off: tuple[str, ...] = ()  # 发 reasoning_effort="none" 时才接受别的温度
    no_max_tokens: tuple[str, ...] = ()  # 不接受 max_tokens、要 max_completion_tokens 的模型
    # 流式用量：include_usage 要了才在最后一块（choices=[]）给；last_chunk 最后一块顶层总带；choice 在 choices[0].usage
    stream_usage: str = "include_usage"
    tool_models: tuple[str, ...] = ("*",)  # 支持工具调用的模型；其余模型忽略 tools，只回答文字
    reasoning_models: tuple[str, ...] = ()  # 默认开思考模式、回答带 reasoning_content 的模型
    thinking_ignores_temperature: bool = False  # 思考模式下 temperature 不报错也不生效（DeepSeek）
    embed_batch: int = 2048
    embed_max_chars: int = 0
    embed_max_tokens: int = 0
    embed_encodings: tuple[str, ...] = ("float", "base64")  # 接受的 encoding_format；只有 float 时 base64 被拒
    embed_returns_float: bool = False  # 不理 encoding_format、总是返回浮点数组
    auth: bool = True  # 默认是否检查密钥（Ollama 从不检查；vLLM 只在加了 --api-key 时检查）
    models_endpoint: bool = True  # 是否有 GET /models
    local: bool = False  # 本地服务：模型就是 VendorState.served 里的那些（pull 或 serve 过的）
    responses_api: bool = False  # 是否还有 POST /responses（OpenAI；LangChain 对 gpt-6 + 工具走它）
    rules: tuple[Rule, ...] = ()

    def rule(self, kind: str) -> Rule:
        """这家厂商某一种错误的回答。"""
        return next(r for r in self.rules if r.kind == kind)

    def supports_tools(self, model: str) -> bool:
        """这个模型收到 tools 时会不会发起工具调用（不支持的模型只回答文字）。"""
        return _match(model, self.tool_models)

    def bad_temperature(self) -> float:
        """一个违反本厂商温度规则的值：开区间的下限本身，否则越过上限。"""
        low, high, low_open, high_open = self.temperature
        return low if low_open else (high if high_open else high + 0.5)

    def has(self, kind: str) -> bool:
        """这家厂商是否文档写明了这种错误。"""
        return any(r.kind == kind for r in self.rules)


def _oai_error(message: str, type_: str = "invalid_request_error", code: Any = None, param: Any = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


OPENAI = VendorSpec(
    "openai", "/v1", responses_api=True,
    # GPT-6 Sol/Luna（simonw/llm#1702，2026-09-22）与 GPT-5.6 家族（mnfst/modelparams.dev#91，2026-07 GA）
    chat_models=("gpt-4o-mini", "gpt-4o", "gpt-4.1*", "gpt-5*", "gpt-6*", "o1*", "o3*", "o4-mini*"),
    embedding_models=("text-embedding-3-small", "text-embedding-3-large"),
    retired=("gpt-4-32k", "gpt-3.5-turbo-0301"),
    # o 系列只接受默认温度 1（FoundationAgents/OpenManus#490；langchainjs#1929，2026-12-01 核对）；
    # gpt-5（非 chat）同样只接受 1，LangChain 自己会去掉（langchain-openai 1.7 validate_temperature）
    fixed_temperature=("o1*", "o3*", "o4-mini*", "gpt-5*", "gpt-6*"),
    # GPT-5.6/6：reasoning_effort="none" 时接受别的温度（anomalyco/models.dev#6639 2026-09-09 实测）；带工具时
    # reasoning_effort 不是 none 就 400（ItzCrazyKns/Vane#1173，2026-12-01 核对）
    temperature_if_reasoning_off=("gpt-5.6*", "gpt-6*"),
    # o 系列与 gpt-5 不接受 max_tokens（griptape-ai/ComfyUI-Griptape#312；teilomillet/gollm#33，2026-12-01 核对）
    no_max_tokens=("o1*", "o3*", "o4-mini*", "gpt-5*", "gpt-6*"),
    # 嵌入：每次 ≤ 2048 段，每段 ≤ 8192 tokens（developers.openai.com/api/reference/resources/embeddings，2026-12-01）
    embed_batch=2048, embed_max_tokens=8192,
    rules=(
        # 401 错误体会回显遮了中间的密钥（BigPizzaV3/CodexPlusPlus#2195 各厂商 401 形态表，2026-12-01 核对）
        Rule("bad_key", 401, _oai_error("Incorrect API key provided: {masked}. You can find your API key at "
                                        "https://platform.openai.com/account/api-keys.", code="invalid_api_key"),
             "BigPizzaV3/CodexPlusPlus#2195（2026-12-01）"),
        Rule("rate_limit", 429, _oai_error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
             "platform.openai.com/docs/guides/error-codes（2026-12-01，未能核实原文）"),
        Rule("retired_model", 404, _oai_error("The model `{model}` does not exist or you do not have access to it.",
                                              code="model_not_found"),
             "OpenAI 错误体 code=model_not_found（dimagi/open-chat-studio#3208，2026-12-01）",
             {"LLM_MODEL": "gpt-3.5-turbo-0301"}),
        Rule("temperature_fixed", 400, _oai_error(
            "Unsupported value: 'temperature' does not support {temperature} with this model. Only the default (1) "
            "value is supported.", param="temperature", code="unsupported_value"),
            "FoundationAgents/OpenManus#490（2026-12-01）", {"LLM_MODEL": "o3"}),
        Rule("tools_reasoning", 400, _oai_error(
            "Function tools with reasoning_effort are not supported for {model} in /v1/chat/completions. To use "
            "function tools, use /v1/responses or set reasoning_effort to 'none'.", param="reasoning_effort"),
            "ItzCrazyKns/Vane#1173（2026-12-01）"),
        Rule("max_tokens", 400, _oai_error("Unsupported parameter: 'max_tokens' is not supported with this model. "
                                           "Use 'max_completion_tokens' instead.", param="max_tokens",
                                           code="unsupported_parameter"),
             "griptape-ai/ComfyUI-Griptape#312（2026-12-01）"),
        Rule("text_length", 400, _oai_error("This model's maximum context length is 8192 tokens, however you requested "
                                            "{tokens} tokens. Please reduce your prompt.", param="input"),
             "developers.openai.com/api/reference/resources/embeddings（8192 tokens，2026-12-01）"),
        Rule("batch", 400, _oai_error("'$.input' is invalid: array must be 2048 items or less.", param="input"),
             "developers.openai.com/api/reference/resources/embeddings（≤2048 段，2026-12-01；错误原文未能核实）"),
    ),
)

ZHIPUAI = VendorSpec(
    "zhipuai", "/api/paas/v4",
    # 现有模型：glm-4-flash-250414、glm-4.5-flash、glm-4.7-flash(x)、glm-5.x（docs.bigmodel.cn 对话补全异步的模型枚举；
    # simonlin1212/TradingAgents-astock#112 的 2026-09 /models 清单里没有不带后缀的 glm-4-flash，2026-12-01 核对）
    chat_models=("glm-4-flash-250414", "glm-4.5-flash", "glm-4.5-air", "glm-4.7-flash*", "glm-4-plus", "glm-5*"),
    embedding_models=("embedding-3", "embedding-2"),
    retired=("glm-4-flash",),  # 未能核实：只是从现有清单里消失，没找到下线公告
    # 温度是开区间 (0, 1)：0 或 1 都返回 1214（songquanpeng/one-api#1141；langchain-ai/langchain#20261 把它截到
    # [0.01, 0.99]；官方 zhipuai SDK 把 ≤0 改成 0.01；2024 年的出处，2026 年的服务端行为未能核实）
    temperature=(0.0, 1.0, True, True),
    # 流式：用量放在最后一块的顶层（glm-5.3-flash 实测“usage only on the terminal”；GLM-5.3 每块都带累计用量，
    # rashidrazak/opencode-cmd-provider#213，2026-09-19；2026-12-01 核对，glm-4.x 未能核实）
    stream_usage="last_chunk",
    # embedding-3：数组最多 64 条、每条 ≤ 3072 tokens（docs.bigmodel.cn 文本嵌入；gitee zhipuai-sdk-go 文档同文，
    # 2026-12-01 核对）
    embed_batch=64, embed_max_tokens=3072, embed_returns_float=True,
    models_endpoint=False,  # 智谱不开放 /models（egoist/chatwise-releases#920，2025；未能核实 2026 年）
    rules=(
        Rule("bad_key", 401, {"error": {"code": "1000", "message": "身份验证失败。"}},
             "BigPizzaV3/CodexPlusPlus#2195：401 {\"error\":{\"code\":\"100x\",…}}（2026-12-01；code 1000 未能核实）"),
        Rule("rate_limit", 429, {"error": {"code": "1302",
                                           "message": "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。"}},
             "智谱错误码 1302（docs.bigmodel.cn 错误码；未能核实原文，2026-12-01）"),
        Rule("retired_model", 400, {"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}},
             "esengine/DeepSeek-Reasonix#6858（2026-07，2026-12-01 核对）", {"LLM_MODEL": "glm-4-flash"}),
        Rule("temperature_range", 400, {"error": {"code": "1214", "message": "temperature参数非法。请检查文档。"}},
             "songquanpeng/one-api#1141（2024；2026-12-01 核对，服务端现状未能核实）",
             {"LLM_MODEL": "glm-4.5-flash", "LLM_TEMPERATURE": "0"}),
        Rule("batch", 400, {"error": {"code": "1214", "message": "input数组最大不得超过64条"}},
             "docs.bigmodel.cn 文本嵌入（≤64 条，2026-12-01；错误原文未能核实）"),
        Rule("text_length", 400, {"error": {"code": "1214",
                                            "message": "input 单条最多支持 3072 个Tokens，超过最大长度"}},
             "docs.bigmodel.cn 文本嵌入（≤3072 tokens，2026-12-01；错误原文未能核实）"),
    ),
)

QIANFAN = VendorSpec(
    "qianfan", "/v2",
    # ernie-speed-128k 在 Chat V2 模型表里（cloud.baidu.com/doc/WENXINWORKSHOP/s/Wm3fhy2vb，2025-01；
    # 2026 年现状未能核实，2026-12-01）
    chat_models=("ernie-speed-128k", "ernie-speed-8k", "ernie-lite-8k", "ernie-4.0-turbo-8k", "ernie-4.5*",
                 "ernie-x1*"),
    embedding_models=("embedding-v1", "bge-large-zh", "bge-large-en", "tao-8k"),
    retired=("ernie-bot-turbo",),  # 未能核实
    temperature=(0.0, 1.0, True, False),  # ERNIE "(0, 1.0]"（langgenius/dify#5572，2024；v2 原文未能核实）
    # 函数调用文档写的是 ERNIE 3.5/4.x，没找到 Speed/Lite（未能核实：按“忽略 tools、只回答文字”模仿）
    tool_models=("ernie-4*", "ernie-3.5*", "ernie-x1*"),
    # 向量 v2：Embedding-V1 文本数量 ≤ 16、每段 ≤ 384 tokens 且 ≤ 1000 字符；encoding_format “当前只支持float”
    # （cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn，2026-12-01 核对）
    embed_batch=16, embed_max_chars=1000, embed_max_tokens=384, embed_encodings=("float",),
    models_endpoint=False,  # 未能核实
    rules=(
        Rule("bad_key", 401, {"error": {"code": "invalid_iam_token", "message": "IAM Certification failed",
                                        "type": "invalid_request_error"}},
             "千帆 v2 错误体形态（cloud.baidu.com/doc/qianfan-api，2026-12-01；原文未能核实）"),
        Rule("rate_limit", 429, {"error": {"code": "rpm_rate_limit_exceeded", "message": "Rate limit reached for RPM",
                                           "type": "rate_limit_exceeded"}},
             "千帆 v2 限流（cloud.baidu.com/doc/qianfan-api，2026-12-01；原文未能核实）"),
        Rule("retired_model", 400, {"error": {"code": "invalid_model", "message": "model {model} not found",
                                              "type": "invalid_request_error"}},
             "千帆 v2（2026-12-01；原文未能核实）", {"LLM_MODEL": "ernie-bot-turbo"}),
        Rule("temperature_range", 400, {"error": {"code": "invalid_argument", "type": "invalid_request_error",
                                                  "message": "the temperature must be in (0, 1.0]"}},
             "langgenius/dify#5572（ERNIE (0, 1.0]，2024；v2 原文未能核实，2026-12-01）", {"LLM_TEMPERATURE": "0"}),
        Rule("encoding", 400, {"error": {"code": "invalid_argument", "message": "encoding_format 当前只支持float",
                                         "type": "invalid_request_error"}},
             "cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn（“当前只支持float”，2026-12-01）"),
        Rule("batch", 400, {"error": {"code": "invalid_argument", "message": "input 文本数量不超过16",
                                      "type": "invalid_request_error"}},
             "cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn（≤16 段，2026-12-01）"),
        Rule("text_length", 400, {"error": {"code": "invalid_argument", "message":
                                            "每个文本token数不超过384且长度不超过1000个字符",
                                            "type": "invalid_request_error"}},
             "cloud.baidu.com/doc/qianfan-api/s/Fm7u3ropn（≤384 tokens、≤1000 字符，2026-12-01）"),
    ),
)

SPARK = VendorSpec(
    "spark", "/v1",
    # model 取值 lite、generalv3(Pro)、generalv3.5(Max)、4.0Ultra 等（docs.iflyaicloud.com/doc/237 Spark http 调用文档，
    # 2026-12-01 核对）
    chat_models=("lite", "generalv3", "pro-128k", "generalv3.5", "max-32k", "4.0Ultra"),
    retired=("general",),  # 未能核实：旧名 general 指 Lite
    temperature=(0.0, 1.0, True, False),  # "取值范围 (0,1]，默认值0.5"（docs.iflyaicloud.com/doc/237，2026-12-01）
    # "Spark Max现已支持system、Function Calling"，Lite 没有（同上）；Lite 收到 tools 时的行为未能核实：按忽略模仿
    tool_models=("generalv3.5", "max-32k", "4.0Ultra"),
    stream_usage="last_chunk",  # 未能核实
    models_endpoint=False,
    rules=(
        # 错误时 {"error": {"message": "invalid user", "type": "api_error"}}（星火 HTTP 文档转载，
        # blog.youkuaiyun.com/AI360labs_atyun/article/details/144962816；状态码未能核实，2026-12-01）
        Rule("bad_key", 401, _oai_error("invalid user", "api_error"),
             "星火 HTTP 文档“错误时的响应参数”（转载，2026-12-01；状态码未能核实）"),
        Rule("rate_limit", 429, _oai_error("AppIdQpsOverFlowError", "api_error"),
             "星火 11202 AppIdQpsOverFlowError（未能核实，2026-12-01）"),
        Rule("retired_model", 400, _oai_error("invalid model {model}", "api_error"),
             "未能核实（2026-12-01）", {"LLM_MODEL": "general"}),
        Rule("temperature_range", 400, _oai_error("invalid temperature, it should be in (0,1]", "api_error"),
             "docs.iflyaicloud.com/doc/237（(0,1]，2026-12-01；错误原文未能核实）", {"LLM_TEMPERATURE": "0"}),
    ),
)

DASHSCOPE = VendorSpec(
    "dashscope", "/compatible-mode/v1",
    chat_models=("qwen-plus*", "qwen-max*", "qwen-turbo*", "qwen-flash*", "qwen3*"),
    embedding_models=("text-embedding-v3", "text-embedding-v4"),
    retired=("qwen-7b-chat",),  # 未能核实
    temperature=(0.0, 2.0, False, True),  # [0, 2)（moona3k/macparakeet#1087 引 docs.qwencloud.com，2026-12-01）
    # 兼容模式嵌入一次 ≤ 10 行：“batch size is invalid, it should not be larger than 10”（jjyaoao/HelloAgents#27，
    # memodb-io/memobase#142，garrytan/gbrain#1199（2026-07）；help.aliyun.com 旧页写 20 或 6，以报错原文为准，
    # 2026-12-01 核对）
    embed_batch=10, embed_max_tokens=8192,
    rules=(
        Rule("bad_key", 401, _oai_error("Incorrect API key provided. ", code="invalid_api_key"),
             "alibabacloud.com/help/en/model-studio “keys are region-specific”（2026-12-01；错误原文未能核实）"),
        Rule("rate_limit", 429, _oai_error("Requests rate limit exceeded, please try again later.", "limit_requests",
                                           "limit_requests"),
             "DashScope 限流 limit_requests（未能核实原文，2026-12-01）"),
        Rule("retired_model", 404, _oai_error("The model `{model}` does not exist or you do not have access to it.",
                                              code="model_not_found"),
             "DashScope 兼容模式 model_not_found（tests/test_doctor.py 已用，2026-12-01；原文未能核实）",
             {"LLM_MODEL": "qwen-7b-chat"}),
        Rule("temperature_range", 400, _oai_error("<400> InternalError.Algo.InvalidParameter: Range of temperature "
                                                  "should be [0.0, 2.0)", "InvalidParameter", "InvalidParameter"),
             "moona3k/macparakeet#1087（[0, 2)，2026-12-01；错误原文未能核实）", {"LLM_TEMPERATURE": "2"}),
        Rule("batch", 400, _oai_error("<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, "
                                      "it should not be larger than 10.: input.contents", "InvalidParameter",
                                      "InvalidParameter"),
             "jjyaoao/HelloAgents#27；memodb-io/memobase#142（2026-12-01 核对）"),
        Rule("text_length", 400, _oai_error("<400> InternalError.Algo.InvalidParameter: Range of input length should "
                                            "be [1, 8192]", "InvalidParameter", "InvalidParameter"),
             "help.aliyun.com 文本向量（单行 8192 tokens，2026-12-01；错误原文未能核实）"),
    ),
)

DEEPSEEK = VendorSpec(
    "deepseek", "/v1",
    # deepseek-chat / deepseek-reasoner 2026-07-24 弃用（mozilla-ai/any-llm#1172 引 api-docs.deepseek.com/updates）；
    # 2026-09-10 起文档写 deepseek-flash（api-docs.deepseek.com/zh-cn/guides/thinking_mode；futuregene/future-os#539
    # “官方已下线 deepseek-v4-flash … 统一由 deepseek-flash 服务”），deepseek-v4-pro 2026-09-14 起转到 Flash
    # （ikaijua/Awesome-AITools#967）。2026-12-01 核对；v4-flash 是否真的 400 未能核实
    chat_models=("deepseek-flash", "deepseek-v4-pro"),
    retired=("deepseek-chat", "deepseek-reasoner", "deepseek-v4-flash"),
    # 思考模式默认打开，回答带 reasoning_content；思考模式不支持 temperature（静默忽略）
    # （api-docs.deepseek.com/zh-cn/guides/thinking_mode，2026-12-01 核对）
    reasoning_models=("deepseek-flash", "deepseek-v4-pro"), thinking_ignores_temperature=True,
    rules=(
        Rule("bad_key", 401, "Authentication Fails",  # 纯文本（BigPizzaV3/CodexPlusPlus#2195，2026-12-01）
             "BigPizzaV3/CodexPlusPlus#2195（2026-12-01）"),
        Rule("rate_limit", 429, _oai_error("Rate Limit Reached", "rate_limit_error"),
             "api-docs.deepseek.com/quick_start/error_codes（429 Rate Limit Reached，2026-12-01）"),
        Rule("retired_model", 400, _oai_error("Model Not Exist"),
             "langbot-app/LangBot#1643；ConardLi/easy-dataset#9（2026-12-01）", {"LLM_MODEL": "deepseek-chat"}),
        # 调用过工具的那几轮，reasoning_content 必须在之后的请求里原样回传，否则 400
        Rule("reasoning_passback", 400, _oai_error("The reasoning_content in the thinking mode must be passed back "
                                                   "to the API.", code="invalid_request_error"),
             "api-docs.deepseek.com/guides/thinking_mode；crewAIInc/crewAI#5878（2026-12-01）"),
    ),
)

MOONSHOT = VendorSpec(
    "moonshot", "/v1",
    # /v1/models = kimi-k3、kimi-k2.7-code(-highspeed)、kimi-k2.6；moonshot-v1-*、kimi-k2.5、kimi-latest
    # 2026-08-31 下线，404 "Not found the model … or Permission denied"（diillson/chatcli#1344 2026-09-02 实测；
    # anomalyco/models.dev#6101；gethouston/houston#1344 的原文错误体，2026-12-01 核对）
    chat_models=("kimi-k3", "kimi-k2.7-code", "kimi-k2.7-code-highspeed", "kimi-k2.6"),
    retired=("moonshot-v1-8k", "moonshot-v1-32k", "moonshot-v1-128k", "kimi-k2.5", "kimi-latest"),
    # kimi-k2.x / K3：“invalid temperature: only 1 is allowed for this model”（Warma10032/VideoAdGuard#34 引 Kimi 文档；
    # XCNXNXNX/dsh-portable-tavern#1 的 K3 原文；CherryHQ/cherry-studio#14573，2026-12-01 核对）
    fixed_temperature=("kimi-k*",),
    # K2.6 与 K3 默认开思考，回答带 reasoning_content；多步工具调用时带 tool_calls 的助手消息必须带着它回传，
    # 否则 400 "thinking is enabled but reasoning_content is missing in assistant tool call message at index N"
    # （platform.kimi.ai/docs/guide/kimi-k2-6-quickstart#tool-use-compatibility，转引自 esokullu/webbrain#143；
    # 原文错误体见 liliMozi/openhanako#1667、continuedev/continue#11711，2026-12-01 核对）
    reasoning_models=("kimi-k*",),
    # 流式用量在最后一块的 choices[0].usage，不在顶层（earendil-works/pi#2017（2026-03）；higress-group/higress#1568
    # 的原文；agentscope-ai/agentscope#2313（2026-08），2026-12-01 核对）
    stream_usage="choice",
    rules=(
        Rule("bad_key", 401, {"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}},
             "BigPizzaV3/CodexPlusPlus#2195（401 {\"error\":{\"message\"}}，2026-12-01）；lidge-jun/opencodex#728"
             "（.cn 与 .ai 密钥不通用）"),
        Rule("rate_limit", 429, {"error": {"message": "Your account is rate limited, please try again later.",
                                           "type": "rate_limit_reached_error"}},
             "platform.moonshot.cn/docs 错误说明 rate_limit_reached_error（未能核实原文，2026-12-01）"),
        Rule("retired_model", 404, {"error": {"message": "Not found the model {model} or Permission denied",
                                              "type": "resource_not_found_error"}},
             "gethouston/houston#1344；diillson/chatcli#1344（2026-12-01）", {"LLM_MODEL": "moonshot-v1-8k"}),
        Rule("temperature_fixed", 400, {"error": {"message": "invalid temperature: only 1 is allowed for this model",
                                                  "type": "invalid_request_error"}},
             "XCNXNXNX/dsh-portable-tavern#1；countbot-ai/CountBot#61（2026-12-01）",
             {"LLM_MODEL": "kimi-k2.6", "LLM_TEMPERATURE": "0"}),
        Rule("reasoning_passback", 400,
             {"error": {"message": "thinking is enabled but reasoning_content is missing in assistant tool call "
                                   "message at index 1", "type": "invalid_request_error"}},
             "liliMozi/openhanako#1667、continuedev/continue#11711（原文）；esokullu/webbrain#143 引 Kimi K2.6 文档"
             "（2026-12-01）"),
    ),
)

OLLAMA = VendorSpec(
    "ollama", "/v1",
    chat_models=(), local=True,  # 只有本机 ollama pull 过的模型（VendorState.served）
    retired=("qwen2.5:72b",),  # 没 pull 过的模型
    # stream_options.include_usage 从 v0.5.2 起支持（ogx-ai/ogx#5011，2026-12-01）；不检查密钥
    # （ollama docs/openai.md：api_key “required but ignored”，2026-12-01）
    auth=False, embed_returns_float=True,
    rules=(
        Rule("retired_model", 404, _oai_error('model "{model}" not found, try pulling it first', "api_error"),
             "netease-youdao/QAnything#555 的 404 原文；ollama/ollama-python#149（2026-12-01 核对）",
             {"LLM_MODEL": "qwen2.5:72b"}),
    ),
)

VLLM = VendorSpec(
    "vllm", "/v1",
    chat_models=(), local=True,  # 只有 vllm serve 时给的那个模型名（VendorState.served）
    auth=False, retired=("Qwen/Qwen2.5-72B-Instruct",),
    rules=(
        # 启动时加了 --api-key 才检查；错误体 {"error": "Unauthorized"}（vllm entrypoints/openai/api_server.py）
        Rule("bad_key", 401, {"error": "Unauthorized"},
             "vllm entrypoints/openai/api_server.py（2026-12-01，当前版本未能核实）"),
        Rule("retired_model", 404, {"object": "error", "message": "The model `{model}` does not exist.",
                                    "type": "NotFoundError", "param": None, "code": 404},
             "QwenLM/Qwen-Agent#110（2026-12-01）", {"LLM_MODEL": "Qwen/Qwen2.5-72B-Instruct"}),
        # 没加 --enable-auto-tool-choice --tool-call-parser 时带 tools 的请求（tool_choice 默认 auto）被拒
        Rule("tool_choice", 400, {"object": "error", "message": '"auto" tool choice requires '
                                  "--enable-auto-tool-choice and --tool-call-parser to be set",
                                  "type": "BadRequestError", "param": None, "code": 400},
             "vllm-project/vllm#9986；langchain4j/langchain4j#3475（2026-12-01）"),
    ),
)

VENDORS: dict[str, VendorSpec] = {v.name: v for v in
                                  (OPENAI, ZHIPUAI, QIANFAN, SPARK, DASHSCOPE, DEEPSEEK, MOONSHOT, OLLAMA, VLLM)}


def _match(model: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch(model, p) for p in patterns)


def _tokens(text: str) -> int:
    """粗略的 token 数：一个汉字算一个，其余按 4 个字符一个（只用来判断单段上限）。"""
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return cjk + (len(text) - cjk + 3) // 4


def _mask(key: str) -> str:
    return key[:3] + "*" * 8 + key[-4:] if len(key) > 8 else "***"


@dataclass
class VendorState:
    """一家模拟厂商的可变状态：接受的密钥、是否限流、vLLM 是否开了工具调用，以及收到的请求（测试用）。"""

    require_key: bool = True  # Ollama 不查密钥；vLLM 只有启动时加了 --api-key 才查
    keys: set[str] = field(default_factory=lambda: {FAKE_KEY})
    rate_limited: bool = False
    served: tuple[str, ...] = ()  # 本地服务（Ollama pull 过的、vllm serve 的）另外提供的模型
    stream_usage: bool = True  # False：流式不带用量（v0.5.2 之前的 Ollama，ogx-ai/ogx#5011）
    auto_tool_choice: bool = True  # 只对 vLLM 有意义：启动时是否加了 --enable-auto-tool-choice
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Simulator:
    """全部厂商共用一个应用：/<厂商><path>/chat/completions、/embeddings、/models；/health 供 serve_in_thread 等待。"""

    def __init__(self) -> None:
        self.state: dict[str, VendorState] = {}
        self.reset()
        self.app = self._build()

    def reset(self) -> None:
        """每个测试开始前恢复默认状态。"""
        self.state = {name: VendorState(require_key=spec.auth) for name, spec in VENDORS.items()}

    def base_url(self, root: str, vendor: str) -> str:
        """课程的 <PREFIX>_BASE_URL 应设成的地址。"""
        return f"{root}/{vendor}{VENDORS[vendor].path}"

    def bodies(self, vendor: str, endpoint: str) -> list[dict[str, Any]]:
        """某家厂商某个接口收到的请求体（按先后）。"""
        return [b for e, b in self.state[vendor].requests if e == endpoint]

    # ---- 规则

    def _error(self, spec: VendorSpec, kind: str, **values: Any) -> Response:
        rule = spec.rule(kind)
        body = rule.render(**values)
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=rule.status)
        return JSONResponse(body, status_code=rule.status)

    def _gate(self, spec: VendorSpec, request: Request) -> Response | None:
        """密钥与限流：每个接口都先过这一关。"""
        state = self.state[spec.name]
        if state.require_key and spec.has("bad_key"):
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if given not in state.keys:
                return self._error(spec, "bad_key", masked=_mask(given))
        if state.rate_limited and spec.has("rate_limit"):
            return self._error(spec, "rate_limit")
        return None

    def _check_chat(self, spec: VendorSpec, body: dict[str, Any]) -> Response | None:
        model = str(body.get("model", ""))
        if not _match(model, spec.chat_models + self.state[spec.name].served):
            return self._error(spec, "retired_model", model=model)
        if "max_tokens" in body and _match(model, spec.no_max_tokens):
            return self._error(spec, "max_tokens")
        temp = body.get("temperature")
        reasoning = _match(model, spec.reasoning_models) and not _thinking_off(body)
        if temp is not None and not (reasoning and spec.thinking_ignores_temperature):  # DeepSeek 思考时忽略温度
            relaxed = _match(model, spec.temperature_if_reasoning_off) and body.get("reasoning_effort") == "none"
            if _match(model, spec.fixed_temperature) and not relaxed:
                if float(temp) != 1.0:
                    return self._error(spec, "temperature_fixed", temperature=temp)
            else:
                low, high, low_open, high_open = spec.temperature
                bad = temp < low or temp > high or (low_open and temp <= low) or (high_open and temp >= high)
                if bad and spec.has("temperature_range"):
                    return self._error(spec, "temperature_range", temperature=temp)
        if body.get("tools") and spec.has("tool_choice") and not self.state[spec.name].auto_tool_choice:
            if body.get("tool_choice", "auto") == "auto":
                return self._error(spec, "tool_choice")
        if body.get("tools") and spec.has("tools_reasoning") and _match(model, spec.temperature_if_reasoning_off):
            if body.get("reasoning_effort", "medium") != "none":
                return self._error(spec, "tools_reasoning", model=model)
        if reasoning and spec.has("reasoning_passback"):
            for msg in body.get("messages", []):
                if msg.get("role") == "assistant" and msg.get("tool_calls") and "reasoning_content" not in msg:
                    return self._error(spec, "reasoning_passback")
        return None

    def _check_embeddings(self, spec: VendorSpec, body: dict[str, Any]) -> Response | None:
        model = str(body.get("model", ""))
        if not _match(model, spec.embedding_models + self.state[spec.name].served):
            return self._error(spec, "retired_model", model=model)
        fmt = body.get("encoding_format", "float")
        if fmt not in spec.embed_encodings:
            return self._error(spec, "encoding")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        if len(texts) > spec.embed_batch:
            return self._error(spec, "batch", n=len(texts))
        for text in texts:
            too_long = (spec.embed_max_chars and len(text) > spec.embed_max_chars) or (
                spec.embed_max_tokens and _tokens(text) > spec.embed_max_tokens)
            if too_long and spec.has("text_length"):
                return self._error(spec, "text_length", tokens=_tokens(text))
        return None

    # ---- 回答

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}

        for spec in VENDORS.values():
            self._routes(app, spec)
        return app

    def _routes(self, app: FastAPI, spec: VendorSpec) -> None:
        prefix = f"/{spec.name}{spec.path}"

        @app.post(prefix + "/chat/completions", name=f"{spec.name}-chat")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.state[spec.name].requests.append(("chat", body))
            refused = self._gate(spec, request) or self._check_chat(spec, body)
            if refused is not None:
                return refused
            return _answer(spec, body, usage=self.state[spec.name].stream_usage)

        @app.post(prefix + "/embeddings", name=f"{spec.name}-embeddings")
        async def embeddings(request: Request) -> Response:
            body = await request.json()
            self.state[spec.name].requests.append(("embeddings", body))
            if not spec.embedding_models and not spec.local:
                return JSONResponse({"error": {"message": "Not Found"}}, status_code=404)
            refused = self._gate(spec, request) or self._check_embeddings(spec, body)
            if refused is not None:
                return refused
            return _embed(spec, body)

        if spec.responses_api:
            @app.post(prefix + "/responses", name=f"{spec.name}-responses")
            async def responses(request: Request) -> Response:
                body = await request.json()
                self.state[spec.name].requests.append(("responses", body))
                refused = self._gate(spec, request) or self._check_chat(spec, _as_chat(body))
                if refused is not None:
                    return refused
                return _respond(spec, body)

        if spec.models_endpoint:
            @app.get(prefix + "/models", name=f"{spec.name}-models")
            async def models(request: Request) -> Response:
                refused = self._gate(spec, request)
                if refused is not None:
                    return refused
                listed = spec.chat_models + spec.embedding_models + self.state[spec.name].served
                names = [m.rstrip("*") for m in listed if "*" not in m.rstrip("*")]
                return JSONResponse({"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": spec.name} for m in names]})


def _as_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Responses API 的请求按同样的规则检查：温度、推理强度、模型名；工具与推理可以同时用（只在 chat 接口受限）。"""
    effort = (body.get("reasoning") or {}).get("effort")
    out = {k: body[k] for k in ("model", "temperature") if k in body}
    if effort:
        out["reasoning_effort"] = effort
    if "max_output_tokens" in body:
        out["max_completion_tokens"] = body["max_output_tokens"]
    return out


def _respond(spec: VendorSpec, body: dict[str, Any]) -> Response:
    """POST /responses 的最小实现：有函数工具就调用第一个，否则回答文字（只支持非流式）。"""
    tools = [{"type": "function", "function": {"name": t["name"], "parameters": t.get("parameters")}}
             for t in body.get("tools") or [] if t.get("type") == "function"]
    last = (body.get("input") or [{}])[-1]
    call = None if isinstance(last, dict) and last.get("type") == "function_call_output" else _tool_call(
        {"tools": tools})
    if call:
        item: dict[str, Any] = {"type": "function_call", "id": "fc_sim_1", "call_id": call["id"], "status": "completed",
                                "name": call["function"]["name"], "arguments": call["function"]["arguments"]}
    else:
        item = {"type": "message", "id": "msg_sim_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": REPLY, "annotations": []}]}
    usage = {"input_tokens": USAGE["prompt_tokens"], "output_tokens": USAGE["completion_tokens"],
             "total_tokens": USAGE["total_tokens"], "input_tokens_details": {"cached_tokens": 0},
             "output_tokens_details": {"reasoning_tokens": 0}}
    return JSONResponse({"id": f"resp_sim_{spec.name}", "object": "response", "created_at": int(time.time()),
                         "model": body["model"], "status": "completed", "output": [item], "usage": usage,
                         "parallel_tool_calls": True, "tool_choice": body.get("tool_choice", "auto"),
                         "tools": body.get("tools", [])})


def _thinking_off(body: dict[str, Any]) -> bool:
    return (body.get("thinking") or {}).get("type") == "disabled"


USAGE = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """按 tools 里第一个（或 tool_choice 指定的）工具的参数表编一次调用：数字依次填 6、7…，字符串填“北京”。"""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    tool = next((t for t in tools if t["function"]["name"] == wanted), tools[0])
    props = (tool["function"].get("parameters") or {}).get("properties", {})
    numbers = iter(range(6, 100))
    args = {k: (next(numbers) if v.get("type") in {"number", "integer"} else "北京") for k, v in props.items()}
    return {"id": "call_sim_1", "type": "function",
            "function": {"name": tool["function"]["name"], "arguments": json.dumps(args, ensure_ascii=False)}}


def _answer(spec: VendorSpec, body: dict[str, Any], *, usage: bool = True) -> Response:
    model = body["model"]
    last = (body.get("messages") or [{}])[-1]
    call = None if last.get("role") == "tool" else (
        _tool_call(body) if _match(model, spec.tool_models) else None)  # 不支持工具的模型忽略 tools
    reasoning = "先想一想。" if _match(model, spec.reasoning_models) and not _thinking_off(body) else None
    base = {"id": f"sim-{spec.name}", "created": int(time.time()), "model": model}
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if call else REPLY}
        if call:
            message["tool_calls"] = [call]
        if reasoning:
            message["reasoning_content"] = reasoning
        return JSONResponse({**base, "object": "chat.completion", "usage": USAGE, "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}]})

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, **extra.pop("choice_extra", {})}
        return "data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [choice], **extra},
                                     ensure_ascii=False) + "\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        if reasoning:
            yield chunk({"reasoning_content": reasoning})
        if call:
            yield chunk({"tool_calls": [{"index": 0, **call}]})
        else:
            yield chunk({"content": REPLY})
        finish = "tool_calls" if call else "stop"
        if not usage:
            yield chunk({}, finish)
        elif spec.stream_usage == "choice":  # Moonshot：用量在 choices[0].usage
            yield chunk({}, finish, choice_extra={"usage": USAGE})
        elif spec.stream_usage == "last_chunk":
            yield chunk({}, finish, usage=USAGE)
        else:
            yield chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield "data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [],
                                             "usage": USAGE}) + "\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _vector(text: str) -> list[float]:
    seed = sum(ord(ch) for ch in text) or 1
    return [((seed * (i + 3)) % 97) / 97.0 for i in range(EMBED_DIM)]


def _embed(spec: VendorSpec, body: dict[str, Any]) -> Response:
    texts = body["input"]
    texts = [texts] if isinstance(texts, str) else texts
    as_base64 = body.get("encoding_format") == "base64" and not spec.embed_returns_float
    data = []
    for i, text in enumerate(texts):
        vec: Any = _vector(text)
        if as_base64:
            vec = base64.b64encode(array.array("f", vec).tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": vec})
    tokens = sum(_tokens(t) for t in texts)
    return JSONResponse({"object": "list", "model": body["model"], "data": data,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
