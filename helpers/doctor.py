"""环境检查：python -m helpers.doctor 打印一份可以整段贴进 issue 的中文报告（第 2 章）。

每项一行：✓ 正常，✗ 必须修复，! 提醒（不影响课程）。模型检查发出的请求与课程完全相同（get_chat_model 的温度、
流式用量、get_embeddings 的嵌入请求），对 LLM_PROVIDER 与 EMBEDDING_PROVIDER 各查一遍；厂商的报错翻译成一句
带修法的中文。离线课程能运行、且设置的提供方能为课程服务时退出码为 0，否则为 1。报告里的密钥一律遮盖。
python -m helpers.doctor --strict（每周的真实检查 .github/workflows/live.yml 用）：真实提供方的提醒也算失败。
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from helpers.config import (
    CACHE_DIR,
    ENV_FILE,
    IGNORE_DOTENV_VAR,
    PROJECT_ROOT,
    ConfigError,
    Settings,
    load_settings,
    mask_secret,
)
from helpers.course.notebook import cjk_font_path
from helpers.errors import explain_provider_error, is_missing_model
from helpers.llm import default_model, get_chat_model, get_embeddings, get_openai_client
from helpers.providers import PROVIDERS, Provider, get_provider

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 没有 tomllib，用同源的 tomli（pytest 的依赖）
    import tomli as tomllib  # type: ignore[no-redef]

MIN_PYTHON = (3, 10)
MIN_SQLITE = (3, 35, 0)
LOCK_FILE = PROJECT_ROOT / "uv.lock"
KEY_PACKAGES = (
    "langchain", "langchain-core", "langchain-openai", "langchain-chroma", "langchain-community",
    "chromadb", "openai", "zhipuai", "pymupdf", "matplotlib", "fastapi", "gradio", "jieba", "rjieba",
)
PROBE_TIMEOUT = 15.0
PROBE_PROMPT = "请只回答一个字：好"
PROBE_TEXT = "环境检查：一句用来试嵌入接口的话"
PROBE_MAX_BATCH = 256  # 课程的嵌入批大小不超过它时，探测多送一段、跨过一批（见 probe_texts）
PROBE_TOOL_PROMPT = "请调用 multiply 工具计算 6 乘以 7"
# GET /models 里不是聊天模型的名字（OpenAI 的列表里还有语音、图片、审核等模型）：提示现有模型时跳过它们
NOT_CHAT_MODELS = ("embed", "rerank", "whisper", "tts", "dall-e", "image", "audio", "realtime", "moderation",
                   "transcribe", "search", "davinci", "babbage", "sora", "vision")
# 第 3 章 bind_tools 用的那种工具（OpenAI 格式），只用来看模型会不会发起工具调用
PROBE_TOOL = {"type": "function", "function": {
    "name": "multiply", "description": "计算两个数的乘积",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                   "required": ["a", "b"]}}}


@dataclass(frozen=True)
class Check:
    """一项检查的结果；required=False 的失败只是提醒，不影响退出码（第 2 章）。"""

    name: str
    ok: bool
    detail: str
    required: bool = True
    provider: str | None = None  # 检查真实提供方的项目：失败不影响离线课程

    @property
    def symbol(self) -> str:
        """✓ 正常、✗ 必须修复、! 提醒（第 2 章）。"""
        return "✓" if self.ok else ("✗" if self.required else "!")

    def line(self) -> str:
        """报告中的一行。"""
        return f"{self.symbol} {self.name}：{self.detail}"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def check_python(info: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python 版本是否 ≥ 3.10（第 2 章）。"""
    text = ".".join(map(str, info))
    ok = tuple(info[:2]) >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    detail = f"{text}（需要 ≥ {need}）" if ok else f"{text} 太旧：请安装 Python ≥ {need}"
    return Check("Python 版本", ok, detail)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_file: Path = LOCK_FILE) -> dict[str, set[str]]:
    """读取 uv.lock 中每个包锁定的版本（同名包可能按 Python 版本锁定多个）（第 2 章）。"""
    with open(lock_file, "rb") as fh:
        data = tomllib.load(fh)
    out: dict[str, set[str]] = {}
    for pkg in data.get("package", []):
        if "name" in pkg and "version" in pkg:
            out.setdefault(_canonical(pkg["name"]), set()).add(str(pkg["version"]))
    return out


def check_packages(names: tuple[str, ...] = KEY_PACKAGES, lock_file: Path = LOCK_FILE) -> list[Check]:
    """关键依赖是否已安装、版本是否与 uv.lock 一致（第 2 章）。"""
    try:
        locked = locked_versions(lock_file)
    except (OSError, tomllib.TOMLDecodeError):
        locked = {}
    checks = []
    for name in names:
        try:
            installed = version(name)
        except PackageNotFoundError:
            hint = "未安装：请在项目根目录运行 uv sync（或 pip install -r requirements.txt）"
            checks.append(Check(f"依赖 {name}", False, hint))
            continue
        want = locked.get(_canonical(name))
        if not want:
            checks.append(Check(f"依赖 {name}", True, f"{installed}（uv.lock 中没有可比较的版本）"))
        elif installed in want:
            checks.append(Check(f"依赖 {name}", True, f"{installed}（与 uv.lock 一致）"))
        else:
            locked_text = " 或 ".join(sorted(want))
            checks.append(Check(
                f"依赖 {name}", False,
                f"已装 {installed}，uv.lock 锁定 {locked_text}：运行 uv sync 对齐，否则输出可能与课程不同",
                required=False,
            ))
    return checks


def check_env_file(env_file: Path = ENV_FILE) -> Check:
    """项目根目录是否有 .env（没有也能跑离线课程）（第 2 章）。"""
    ignored = os.environ.get(IGNORE_DOTENV_VAR) == "1"
    suffix = f"（{IGNORE_DOTENV_VAR}=1，本次忽略 .env）" if ignored else ""
    if env_file.is_file():
        return Check(".env 文件", True, f"已找到 {env_file.name}{suffix}")
    return Check(
        ".env 文件", False,
        "未找到：离线课程不需要它；要用真实模型请 cp .env.example .env 再填写" + suffix,
        required=False,
    )


def check_keys(settings: Settings) -> Check:
    """列出已设置的提供方密钥（遮盖后）（第 2 章）。"""
    parts = [
        f"{PROVIDERS[name].key_env}={mask_secret(key)}"
        for name, key in settings.api_keys.items() if key
    ]
    if not parts:
        return Check("提供方密钥", True, "一个也没有设置（离线课程不需要）")
    return Check("提供方密钥", True, "；".join(parts))


def _base_url(settings: Settings, spec: Provider) -> str:
    return settings.base_urls.get(spec.name, spec.base_url)


def region_hint(settings: Settings, spec: Provider) -> str | None:
    """分地域的提供方：密钥被拒时提示另一个地域的 base_url（第 2 章）。"""
    regions = spec.regions  # 各地域的地址与出处记在提供方表里（helpers.providers）
    if not regions:
        return None
    current = _base_url(settings, spec).rstrip("/")
    here = next((label for label, url in regions if url == current), None)
    other = [(label, url) for label, url in regions if url != current]
    names = "与".join(label for label, _ in regions)
    label, url = other[0] if here else regions[-1]
    return f"若密钥属于{label}，设置 {spec.env_prefix}_BASE_URL={url}（{names}的密钥不通用）"


def start_hint(settings: Settings, spec: Provider, model: str) -> str | None:
    """本地模型服务（Ollama、vLLM）没启动时，告诉人怎样启动（第 2 章）。"""
    if spec.name == "ollama":
        return f"先在另一个终端运行 ollama serve，再 ollama pull {model}"
    if spec.name == "vllm":
        port = urlsplit(_base_url(settings, spec)).port or 8000
        return f"先在另一个终端运行 vllm serve {model} --port {port}（端口要与 VLLM_BASE_URL 一致）"
    return None


def available_models(settings: Settings, spec: Provider, *, embedding: bool = False, limit: int = 4) -> str | None:
    """模型不存在时问一次厂商的 GET /models，列出几个现有的名字；没有这个接口或出错时为 None（第 2 章）。"""
    try:
        client = get_openai_client(spec.name, settings=probe_settings(settings), timeout=5.0)
        names = [m.id for m in client.models.list().data]
    except Exception:  # noqa: BLE001 - 很多厂商没有 /models，这只是锦上添花
        return None
    def fits(name: str) -> bool:
        low = name.lower()
        if embedding:
            return "embed" in low
        return not any(word in low for word in NOT_CHAT_MODELS)

    return "、".join([n for n in names if fits(n)][:limit]) or None


def sent_temperature(settings: Settings) -> float | None:
    """课程这次真正发出的温度：get_chat_model 按厂商规则改过之后的值（第 2 章）。"""
    try:
        return get_chat_model(settings=probe_settings(settings)).temperature
    except Exception:  # noqa: BLE001 - 建不出模型时（缺密钥等）退回设置里的值
        return settings.temperature


def _explain(exc: BaseException, settings: Settings, spec: Provider, *, model: str,
             model_env: str = "LLM_MODEL") -> str:
    """把一次探测的异常翻译成一句中文，带上本提供方的变量名、地址与地域提示。"""
    embedding = model_env == "EMBEDDING_MODEL"
    known = available_models(settings, spec, embedding=embedding) if is_missing_model(exc) else None
    return explain_provider_error(
        exc, key_env=spec.key_env, key_url=spec.key_url, timeout=PROBE_TIMEOUT,
        model=model, model_env=model_env, temperature=None if embedding else sent_temperature(settings),
        base_url=_base_url(settings, spec), base_url_env=f"{spec.env_prefix}_BASE_URL",
        region_hint=region_hint(settings, spec), start_hint=start_hint(settings, spec, model), available=known,
    )


def explain(exc: BaseException, settings: Settings, *, embedding: bool = False) -> str:
    """把调用聊天（或嵌入）模型时的异常翻译成环境检查会说的那一句中文（第 2 章）。"""
    spec = get_provider(settings.embedding_provider if embedding else settings.llm_provider)
    model = _embedding_model(settings, spec) if embedding else default_model(settings=settings)
    return _explain(exc, settings, spec, model=model, model_env="EMBEDDING_MODEL" if embedding else "LLM_MODEL")


def _embedding_model(settings: Settings, spec: Provider) -> str:
    """get_embeddings 会用的嵌入模型名（离线嵌入不看 EMBEDDING_MODEL）。"""
    named = settings.embedding_model if spec.name != "offline" else None
    return named or spec.embedding_model or "（未设置）"


def probe_settings(settings: Settings) -> Settings:
    """探测用的设置：与课程相同，只是超时更短、不重试、不走回答缓存（第 2 章）。"""
    return settings.with_overrides(timeout=PROBE_TIMEOUT, max_retries=0, llm_cache=False)


Verdict = tuple[bool, str, bool]  # (是否正常, 说明, 失败时是否必须修复)


def _probe(settings: Settings, title: str, call: Callable[[Settings], Any], judge: Callable[[Any], Verdict], *,
           embedding: bool = False, required: bool = True, suffix: str = "") -> Check:
    """用探测设置调用 call，再由 judge 判断结果；出错时把厂商的报错翻译成一句中文。"""
    spec = get_provider(settings.embedding_provider if embedding else settings.llm_provider)
    name = f"{title}（{spec.name}）"
    try:
        result = call(probe_settings(settings))
    except Exception as exc:  # noqa: BLE001 - 报告里只要一句中文，不要回溯
        model = _embedding_model(settings, spec) if embedding else default_model(settings=settings)
        detail = _explain(exc, settings, spec, model=model, model_env="EMBEDDING_MODEL" if embedding else "LLM_MODEL")
        return Check(name, False, detail + suffix, required=required, provider=spec.name)
    ok, detail, must = judge(result)
    return Check(name, ok, detail, required=must, provider=spec.name)


def check_model_call(settings: Settings) -> Check:
    """用课程的 get_chat_model（同样的温度与参数）真实调用一次：离线时在进程内（第 2 章）。"""
    def judge(reply: Any) -> Verdict:
        usage = (reply.usage_metadata or {}).get("total_tokens", 0)
        served = reply.response_metadata.get("model_name") or default_model(settings=settings)
        return True, f"{served} 回答正常（temperature={settings.temperature}，{usage} tokens）", True

    return _probe(settings, "模型调用", lambda s: get_chat_model(settings=s).invoke(PROBE_PROMPT), judge)


def _judge_stream(chunks: list[Any]) -> Verdict:
    usage = sum((c.usage_metadata or {}).get("total_tokens", 0) for c in chunks)
    if not chunks:
        return False, "流式调用没有返回任何内容：请把这份报告贴进 issue", True
    if not usage:
        return False, "流式回答正常，但最后没有带回用量（usage）：课程的用量与费用统计会记成 0", False
    return True, f"流式回答正常，用量 {usage} tokens", True


def check_stream(settings: Settings) -> Check:
    """用课程的方式流式调用一次（stream_options.include_usage），看最后是否带回用量（第 2 章）。"""
    return _probe(settings, "流式输出与用量", lambda s: list(get_chat_model(settings=s).stream(PROBE_PROMPT)),
                  _judge_stream)


def _judge_tools(reply: Any) -> Verdict:
    called = [c["name"] for c in reply.tool_calls]
    if not called:
        return False, "模型没有发起工具调用，只回答了文字：第 3 章的工具单元格会显示这一点", False
    return True, f"模型调用了 {'、'.join(called)}", False


def check_tool_call(settings: Settings) -> Check:
    """像第 3 章那样 bind_tools 后调用一次，看模型会不会发起工具调用；失败只是提醒（第 2 章）。"""
    return _probe(settings, "工具调用",
                  lambda s: get_chat_model(settings=s).bind_tools([PROBE_TOOL]).invoke(PROBE_TOOL_PROMPT),
                  _judge_tools, required=False, suffix="（只影响第 3 章的工具单元格）")


def probe_texts(embeddings: Any) -> list[str]:
    """嵌入探测的文本：比课程的批大小多一段，请求像第 4 章入库那样分批（批大小超过 256 时只送 2 段）（第 2 章）。"""
    batch = getattr(embeddings, "chunk_size", None)
    count = batch + 1 if isinstance(batch, int) and 0 < batch <= PROBE_MAX_BATCH else 2
    return [f"{PROBE_TEXT}（第 {i + 1} 段）" for i in range(count)]


def check_embeddings(settings: Settings) -> Check:
    """用课程的 get_embeddings（同样的模型、编码与批大小）嵌入比一批多一段的文本（第 2 章）。"""
    model = _embedding_model(settings, get_provider(settings.embedding_provider))
    sent: list[str] = []

    def call(s: Settings) -> list[list[float]]:
        embeddings = get_embeddings(settings=s)
        sent.extend(probe_texts(embeddings))
        return embeddings.embed_documents(sent)

    def judge(vectors: list[list[float]]) -> Verdict:
        if len(vectors) != len(sent) or not all(vectors):
            return False, f"{model} 送去 {len(sent)} 段，只收回 {len(vectors)} 个向量：请把这份报告贴进 issue", True
        return True, f"{model} 返回 {len(vectors[0])} 维向量（{len(sent)} 段）", True

    return _probe(settings, "嵌入", call, judge, embedding=True)


def check_sqlite(text: str = sqlite3.sqlite_version) -> Check:
    """SQLite 版本是否 ≥ 3.35（Chroma 需要）（第 2 章）。"""
    ok = _version_tuple(text) >= MIN_SQLITE
    detail = f"{text}（Chroma 需要 ≥ 3.35）" if ok else (
        f"{text} 太旧，Chroma 需要 ≥ 3.35：请升级 Python 或系统的 SQLite"
    )
    return Check("SQLite 版本", ok, detail)


def check_cjk_font() -> Check:
    """中文字体是否就绪：PyMuPDF 自带字体写到缓存并被 matplotlib 找到（第 2 章）。"""
    try:
        from matplotlib import font_manager  # 放在 try 里：matplotlib 坏了也只是一行报告

        path = cjk_font_path()
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
        found = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
    except Exception as exc:  # noqa: BLE001
        return Check("中文字体", False, f"无法准备中文字体（{type(exc).__name__}）：图中的中文会显示成方框")
    if Path(found).resolve() != path.resolve():
        return Check("中文字体", False, f"matplotlib 找到的是 {Path(found).name}，不是 {path.name}")
    return Check("中文字体", True, f"{family}（matplotlib 可用）")


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
        return True
    except OSError:
        return False


def check_writable(settings: Settings) -> Check:
    """向量库目录与缓存目录是否可写（第 2 章）。"""
    dirs = [settings.vector_db_dir, CACHE_DIR]
    bad = [d for d in dirs if not _writable(d)]

    def show(p: Path) -> str:
        try:
            return p.relative_to(PROJECT_ROOT).as_posix()
        except ValueError:
            return str(p)

    if bad:
        return Check("可写目录", False, "无法写入 " + "、".join(show(d) for d in bad) + "：请检查权限")
    return Check("可写目录", True, "、".join(show(d) for d in dirs))


def run_checks() -> list[Check]:
    """依次执行全部检查，返回结果列表（第 2 章）。"""
    checks = [check_python(), *check_packages(), check_env_file()]
    try:
        settings = load_settings()
    except ConfigError as exc:
        checks.append(Check("读取设置", False, str(exc)))
        settings = None
    if settings is not None:
        spec = get_provider(settings.llm_provider)
        model = settings.llm_model or spec.chat_model
        emb = get_provider(settings.embedding_provider)
        emb_model = _embedding_model(settings, emb)
        checks.append(Check("当前模型", True, f"{spec.name}（{spec.label}） {model}"))
        checks.append(Check("当前嵌入", True, f"{emb.name}（{emb.label}） {emb_model}"))
        checks.append(check_keys(settings))
        chat = check_model_call(settings)
        checks.append(chat)
        if chat.ok:  # 一次调用都不成功时，流式与工具调用只会报同样的错
            checks.append(check_stream(settings))
            checks.append(check_tool_call(settings))
        checks.append(check_embeddings(settings))
    checks.append(check_sqlite())
    checks.append(check_cjk_font())
    if settings is not None:
        checks.append(check_writable(settings))
    return checks


def report(checks: list[Check]) -> str:
    """把检查结果排成可粘贴的中文报告（第 2 章）。"""
    lines = [
        "LLM Universe 环境检查（可整段粘贴到 issue 中，密钥已遮盖）",
        f"系统：{platform.system()} {platform.release()} {platform.machine()}",
        *[c.line() for c in checks],
    ]
    failed = [c for c in checks if not c.ok and c.required]
    warned = [c for c in checks if not c.ok and not c.required]
    providers = sorted({c.provider for c in failed if c.provider})
    if failed and all(c.provider and c.provider != "offline" for c in failed):
        lines.append(f"结论：有 {len(failed)} 项必须修复（✗）：{'、'.join(providers)} 现在不能为课程服务，"
                     "按上面的说明改 .env；离线课程不受影响（LLM_PROVIDER=offline）")
    elif failed:
        lines.append(f"结论：有 {len(failed)} 项必须修复（✗），离线课程暂时无法运行")
    else:
        extra = f"；另有 {len(warned)} 项提醒（!）" if warned else ""
        lines.append("结论：离线课程可以运行" + extra)
    return "\n".join(lines)


def _tools_documented(provider: str) -> bool:
    """提供方表是否写明这家支持工具调用（未写明或未核实时严格模式不要求工具调用）。"""
    rules = getattr(get_provider(provider), "rules", None)
    return getattr(rules, "tools", None) is True


def strict_failures(checks: list[Check]) -> list[Check]:
    """--strict（每周的真实检查）也算失败的项：真实提供方的每个提醒，文档没写支持工具时的工具调用除外（第 2 章）。"""
    def counts(c: Check) -> bool:
        if c.ok or not c.provider or c.provider == "offline":
            return False
        return c.required or not c.name.startswith("工具调用") or _tools_documented(c.provider)
    return [c for c in checks if counts(c)]


def main(argv: list[str] | None = None) -> int:
    """命令行入口：打印报告；离线课程与设置的提供方都能用时返回 0，否则 1；--strict 时提醒也算失败（第 2 章）。"""
    args = list(argv or [])
    unknown = [a for a in args if a != "--strict"]
    if unknown:
        print(f"不认识的参数 {' '.join(unknown)}：用法 python -m helpers.doctor [--strict]")
        return 2
    checks = run_checks()
    print(report(checks))
    failed = not all(c.ok or not c.required for c in checks)
    if "--strict" in args:
        extra = [c for c in strict_failures(checks) if not c.required]
        if extra:
            print(f"严格模式（--strict）：另有 {len(extra)} 项真实调用没有通过：{'、'.join(c.name for c in extra)}")
        failed = failed or bool(extra)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
