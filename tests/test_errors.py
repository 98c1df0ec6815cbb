"""helpers.errors：一个错误基类，一个模型服务错误翻译器（环境检查与应用各自的说法不变）。"""

from __future__ import annotations

import httpx
import openai
import pytest

from helpers import config, errors
from helpers.errors import (
    AppError,
    ConfigError,
    CourseError,
    LoadError,
    describe_error,
    explain_provider_error,
)

REQUEST = httpx.Request("POST", "http://offline.invalid/v1/chat/completions")


def status_error(cls: type[openai.APIStatusError], code: int) -> openai.APIStatusError:
    return cls(f"Error code: {code} - boom", response=httpx.Response(code, request=REQUEST), body=None)


def test_one_base_and_the_old_kinds_stay_value_errors():
    assert config.ConfigError is ConfigError  # from helpers.config import ConfigError 照样可用
    for cls in (ConfigError, LoadError, AppError):
        assert issubclass(cls, CourseError)
    assert issubclass(ConfigError, ValueError) and issubclass(LoadError, ValueError)
    err = AppError("太大了", 413)
    assert (err.message, err.status, str(err)) == ("太大了", 413, "太大了")
    assert AppError("坏了").status == 400
    assert str(LoadError("无法读取 a.pdf")) == "无法读取 a.pdf"


def test_doctor_wording():
    def line(exc: BaseException) -> str:
        return explain_provider_error(exc, key_env="ZHIPUAI_API_KEY", key_url="https://example.invalid",
                                      timeout=15.0)

    assert line(ConfigError("未找到 X")) == "未找到 X"
    assert line(status_error(openai.AuthenticationError, 401)) == (
        "密钥无效（401）：请检查 .env 中的 ZHIPUAI_API_KEY（申请地址：https://example.invalid）")
    assert line(status_error(openai.PermissionDeniedError, 403)).startswith("没有权限（403）")
    assert line(status_error(openai.NotFoundError, 404)).startswith("找不到模型或地址（404）")
    assert line(status_error(openai.RateLimitError, 429)).startswith("请求过于频繁或额度用完（429）")
    assert line(openai.APITimeoutError(request=REQUEST)) == "15 秒内没有响应：请检查网络或代理"
    assert line(openai.APIConnectionError(request=REQUEST)) == "连接失败：请检查网络、代理或 base_url 是否正确"
    assert line(status_error(openai.InternalServerError, 500)) == "服务端返回错误 500：请稍后再试"
    assert line(RuntimeError("x")) == "调用失败（RuntimeError）：请检查提供方设置"


def test_app_wording_and_status():
    keep = "对话记录已保留，可以稍后重试。"
    assert describe_error(AppError("坏了", 418)) == (418, "坏了")
    assert describe_error(status_error(openai.AuthenticationError, 401)) == (
        502, f"模型服务拒绝了密钥（401）：请检查服务器 .env 中的 API Key。{keep}")
    assert describe_error(status_error(openai.RateLimitError, 429))[0] == 503
    assert describe_error(openai.APITimeoutError(request=REQUEST))[0] == 504
    assert describe_error(openai.APIConnectionError(request=REQUEST)) == (
        502, f"连不上模型服务：请检查网络与 base_url。{keep}")
    assert describe_error(status_error(openai.InternalServerError, 500)) == (
        502, f"模型服务出错（500）：Error code: 500 - boom。{keep}")
    assert describe_error(ConfigError("未找到 X")) == (500, f"回答时出错（ConfigError）：未找到 X。{keep}")


@pytest.mark.parametrize("exc", [RuntimeError("sk-secret-123 at /srv/app/x.py"), KeyError("sk-secret-123")])
def test_unknown_errors_never_echo_their_text(exc):
    status, message = describe_error(exc)
    assert status == 500 and "sk-secret" not in message and "/srv" not in message
    assert type(exc).__name__ in message


def test_errors_is_the_ground_floor():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(errors))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("helpers")]


def vendor_error(code: int, body: object) -> openai.APIStatusError:
    """像 openai SDK 那样从厂商的错误体造异常：{"error": {...}} 取里层，其余原样。"""
    response = httpx.Response(code, request=REQUEST)
    data = body.get("error", body) if isinstance(body, dict) else body
    cls = {401: openai.AuthenticationError, 403: openai.PermissionDeniedError, 404: openai.NotFoundError,
           429: openai.RateLimitError}.get(code, openai.BadRequestError if code == 400 else openai.APIStatusError)
    return cls(f"Error code: {code} - {body}", response=response, body=data)


def test_doctor_wording_for_vendor_bodies():
    def line(exc: BaseException, **hints) -> str:
        return explain_provider_error(exc, key_env="X_API_KEY", key_url="https://example.invalid", timeout=15.0,
                                      **hints)

    kimi = vendor_error(400, {"error": {"message": "invalid temperature: only 1 is allowed for this model",
                                        "type": "invalid_request_error"}})
    assert line(kimi) == "该模型只接受 temperature=1：设置 LLM_TEMPERATURE=1"
    gone = vendor_error(400, {"message": "Model Not Exist"})
    assert line(gone, model="deepseek-chat") == (
        "模型 deepseek-chat 不存在或已下线（400）：在 .env 设置 LLM_MODEL=…（换成厂商模型列表里现有的名字）")
    assert line(gone) == "模型不存在或已下线（400）：在 .env 设置 LLM_MODEL=…（换成厂商模型列表里现有的名字）"
    broke = vendor_error(402, {"error": {"message": "Insufficient Balance", "type": "unknown_error"}})
    assert line(broke).startswith("账户余额不足或额度已用完（402）") and "重试不会好转" in line(broke)
    # 404 没有提到模型：旧说法，但把 <前缀> 换成真实的变量名
    assert line(status_error(openai.NotFoundError, 404), base_url_env="DEEPSEEK_BASE_URL") == (
        "找不到模型或地址（404）：请检查 LLM_MODEL 与 DEEPSEEK_BASE_URL")
    assert line(openai.APIConnectionError(request=REQUEST), base_url="http://localhost:11434/v1",
                start_hint="先运行 ollama serve") == "连不上本地服务 http://localhost:11434/v1：先运行 ollama serve"
    # 厂商原文里的密钥不会回显
    leaky = vendor_error(400, {"error": {"message": "bad request for key sk-abcdefgh12345678"}})
    assert "sk-abcdefgh" not in line(leaky) and line(leaky).startswith("请求被拒绝（400）：")


def test_app_wording_is_unchanged_by_the_doctor_cases():
    keep = "对话记录已保留，可以稍后重试。"
    kimi = vendor_error(400, {"error": {"message": "invalid temperature: only 1 is allowed for this model"}})
    assert describe_error(kimi) == (
        502, f"模型服务出错（400）：Error code: 400 - {{'error': {{'message': 'invalid temperature: only 1 is allowed "
             f"for this model'}}}}。{keep}")


@pytest.mark.parametrize(("code", "body", "hints", "start"), [
    (400, {"error": {"message": "The reasoning_content in the thinking mode must be passed back to the API."}}, {},
     "思考模式要求把 reasoning_content 传回去（400）"),
    (400, {"error": {"message": "Function tools with reasoning_effort are not supported for gpt-6-luna"}}, {},
     "该模型带工具调用时要关掉推理（400 reasoning_effort）"),
    (400, {"error": {"message": "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, "
                                "it should not be larger than 10.: input.contents"}}, {},
     "嵌入接口一次收不下这么多段文本（400）"),
    (400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                "Use 'max_completion_tokens' instead."}}, {}, "该模型不接受 max_tokens（400）"),
    (404, {"error": {"message": 'model "qwen3:32b" not found, try pulling it first'}}, {"model": "qwen3:32b"},
     "本机的 Ollama 还没有模型 qwen3:32b（404）：运行 ollama pull qwen3:32b"),
    (400, {"error": {"code": "invalid_model", "message": "model ernie-bot-turbo not found"}},
     {"model": "ernie-bot-turbo"},
     "模型 ernie-bot-turbo 不存在或已下线（400）"),
    (400, {"error": {"message": "每个文本token数不超过384且长度不超过1000个字符"}}, {"model_env": "EMBEDDING_MODEL"},
     "有一段文本超出嵌入模型的长度上限（400）"),
    (400, {"error": {"code": "1214", "message": "temperature参数非法。请检查文档。"}}, {"temperature": 0.01},
     "该模型不接受 temperature=0.01（400）：在 .env 设置 LLM_TEMPERATURE=0.5"),
    (400, {"error": {"code": "1214", "message": "temperature参数非法。请检查文档。"}}, {"temperature": 0.0},
     "该模型不接受 temperature=0.0（400）：在 .env 设置 LLM_TEMPERATURE=0.01"),
    (404, {"error": {"message": "Not found the model moonshot-v1-8k or Permission denied"}},
     {"model": "moonshot-v1-8k", "available": "kimi-k3、kimi-k2.6"},
     "模型 moonshot-v1-8k 不存在或已下线（404）：在 .env 设置 LLM_MODEL=…"
     "（换成厂商模型列表里现有的名字，例如 kimi-k3、kimi-k2.6）"),
])
def test_doctor_lines_for_errors_the_course_must_handle(code, body, hints, start):
    line = explain_provider_error(vendor_error(code, body), key_env="X_API_KEY", key_url="https://example.invalid",
                                  timeout=15.0, **hints)
    assert line.startswith(start), line
