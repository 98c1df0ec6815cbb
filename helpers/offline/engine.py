"""离线教学模型的"大脑"：从提示里的参考资料中抽取最相关的句子（第 2 章）。

它不是大模型：不会遵循任意指令、不会推理，也不会编造。规则如下：
1. 提示里有参考资料（<context>…</context>、``` 围起的文本、\"\"\" 围起的文本等）时，
   挑出与问题最相关的 1～3 句原文作答，并带上资料里的来源编号 [n]；
2. 资料里没有相关内容时，明确说"不知道"；
3. 没有资料时，如实说明自己是离线教学模型；
4. 请求带了工具（tools）时，按名称与描述的字面重合挑一个工具，按参数类型从问题中取值；
   tool_choice 强制调用（指名某个工具，或 "required"/"any"）时一定调用：指名的那个，或重合最多的那个
   （都不重合就取第一个）；取不到值的数字参数留空，没有参数的工具给 {}；选填参数（不在 required 里）一律不填；
5. 请求要求 JSON Schema 格式（response_format 为 json_schema）时，把按上面规则得到的回答原样装进字段：
   字符串字段填摘出的原句，字符串数组填逐句，整数数组填来源编号，其他字段不填（它不会理解字段的含义）；
6. 工具已经返回了结果：结果里有带 [n] 编号的参考资料（检索工具的输出）时，按规则 1、2 从中摘句作答，
   相关度按这次检索用的查询（工具调用的字符串参数；离线模型给的就是问题本身或引号里的词）来算；
   其他结果（计算器、文档清单……）原样转述为"根据工具返回的结果：…"；
7. "换个说法再搜一次"也只是一条规则，不是规划：最近一条工具结果以"未找到"标记（prompts.SEARCH_NOT_FOUND）开头、
   而这个工具在本轮（最后一条用户消息之后）只调用过一次时，用问题的关键词（去掉疑问词与标点）再调用它一次；
   关键词与上次的参数相同、或第二次仍未找到，就回答规则 2 的"不知道"。
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from helpers.offline.embeddings import features, sparse_cosine, sparse_vector
from helpers.prompts import SEARCH_NOT_FOUND
from helpers.text import count_tokens, split_sentences

MODEL_ID = "offline-extractive"
SELF_INTRO = (
    "我是离线教学模型 offline-extractive：没有接入真正的大模型，"
    "只会从提示里给出的参考资料中摘出最相关的原句。"
)
NOT_FOUND = "参考资料中没有找到与问题相关的内容，我不知道答案。"
RELEVANCE_THRESHOLD = 0.2
_QUESTION_WORDS = re.compile(
    r"问题[:：]|请问|请|是什么|什么是|什么|为什么|怎么样|怎么|怎样|如何|哪些|哪个|哪里|多少|吗|呢|吧|一下|回答|根据"
)

_BLOCK_PATTERNS = [
    re.compile(r"<(context|document|documents|资料|text|article|source)[^>]*>(.*?)</\1>", re.S | re.I),
    re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.S),
    re.compile(r'"""(.*?)"""', re.S),
    re.compile(r"<<<(.*?)>>>", re.S),
]
_SOURCE_TAG = re.compile(r"^\s*\[(\d+)\]")
_REFERENCE_TAG = re.compile(r"^\s*\[\d+\]", re.M)  # 工具结果里的编号资料（规则 6）
_PUNCTUATION = re.compile(r"[，。？！、；：,.?!;:“”\"'‘’「」『』（）()《》<>\[\]]+")


@dataclass
class Reply:
    """一次回答：正文或工具调用，以及 token 用量（第 2 章）。"""

    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # OpenAI 多段内容格式
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def extract_material(text: str) -> tuple[list[str], str]:
    """分出提示里被分隔符围起的资料块，与剩下的指令/问题文本（第 5 章）。"""
    blocks: list[str] = []
    rest = text
    for pattern in _BLOCK_PATTERNS:
        for match in pattern.finditer(rest):
            blocks.append(match.group(match.lastindex or 1))
        rest = pattern.sub(" ", rest)
    return [b for b in blocks if b.strip()], rest.strip()


def _sentences_with_sources(blocks: list[str]) -> list[tuple[str, str]]:
    """把资料切成句子，并记下每句所属的来源编号（形如 [2]）。"""
    out: list[tuple[str, str]] = []
    for block in blocks:
        tag = ""
        for line in block.splitlines():
            m = _SOURCE_TAG.match(line)
            if m:
                tag = f"[{m.group(1)}]"
                line = line[m.end():]
                if re.match(r"\s*[（(]?来源[:：]", line):  # "[n] 来源：…" 这一行只是出处说明
                    continue
            for sent in split_sentences(line):
                if len(sent) >= 4:
                    out.append((sent, tag))
    return out


def _seed_for(messages: list[dict[str, Any]], seed: int | None) -> int:
    digest = hashlib.sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode())
    return int(digest.hexdigest()[:8], 16) ^ (seed or 0)


def _question_of(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return extract_material(_text_of(msg))[1] or _text_of(msg)
    return ""


def _answer_from_material(
    question: str, blocks: list[str], temperature: float, rng: random.Random, max_sentences: int = 3
) -> str:
    sents = _sentences_with_sources(blocks)
    if not sents:
        return NOT_FOUND
    q = sparse_vector(_QUESTION_WORDS.sub(" ", question))
    total = sum(q.values()) or 1.0
    # 得分 = 问题中被这句话覆盖的权重占比，再用余弦打破平手
    scores = np.array(
        [
            sum(w for f, w in q.items() if f in sv) / total + 0.2 * sparse_cosine(q, sv)
            for sv in (sparse_vector(s) for s, _ in sents)
        ]
    )
    order = list(np.argsort(-scores, kind="stable"))
    if float(scores[order[0]]) < RELEVANCE_THRESHOLD:
        return NOT_FOUND
    if temperature > 0:  # 温度越高，越可能选到排名靠后的句子
        top = order[:6]
        weights = np.exp((scores[top] - scores[top].max()) / max(temperature, 1e-3) * 10)
        picked = []
        pool = list(top)
        w = list(weights)
        while pool and len(picked) < max_sentences:
            i = rng.choices(range(len(pool)), weights=w)[0]
            picked.append(pool.pop(i))
            w.pop(i)
    else:
        best = float(scores[order[0]])
        picked = [i for i in order[:max_sentences] if scores[i] >= max(RELEVANCE_THRESHOLD, 0.6 * best)]
    parts = []
    for i in picked:
        sent, tag = sents[i]
        parts.append(sent + (tag if tag and not sent.endswith(tag) else ""))
    return "根据参考资料：" + "".join(parts)


def _pick_tool(question: str, tools: list[dict[str, Any]], forced: str | None = None
               ) -> dict[str, Any] | None:
    """按字面重合选工具，按参数类型从问题里取值；选不出就返回 None。

    forced 是 tool_choice 强制的工具名（"" 表示任选一个）：这时一定返回一次调用。
    """
    qf = set(features(question))
    best, best_score = None, 0.0
    for tool in tools:
        fn = tool.get("function", tool)
        if forced:  # 指名的工具：不比较，直接用它
            if fn.get("name") == forced:
                best = fn
                break
            continue
        desc = f"{fn.get('name', '')} {fn.get('description', '')}".replace("_", " ")
        score = len(qf & set(features(desc))) / (len(qf) + 1)
        if score > best_score:
            best, best_score = fn, score
    if best is None and forced == "" and tools:  # 必须调用却一个都不重合：取第一个
        best = tools[0].get("function", tools[0])
    if best is None:
        return None
    params = best.get("parameters") or {}
    props = params.get("properties", {})
    required = set(params.get("required", props))  # 没写 required 的旧式说明：当作全部必填
    numbers = re.findall(r"-?\d+(?:\.\d+)?", question)
    quoted = re.findall(r"[“\"「『'](.+?)[”\"」』']", question)
    args: dict[str, Any] = {}
    for name, schema in props.items():
        if name not in required:  # 选填参数不填，用工具自己的默认值
            continue
        kind = schema.get("type")
        if kind in {"number", "integer"}:
            if not numbers:
                if forced is not None:  # 强制调用：问题里没有数字就不填，让工具自己报缺参数
                    continue
                return None
            raw = numbers.pop(0)
            args[name] = int(float(raw)) if kind == "integer" else float(raw)
        elif kind == "string":
            args[name] = quoted.pop(0) if quoted else question
        elif kind == "boolean":
            args[name] = True
    digest = hashlib.sha256((best["name"] + json.dumps(args, ensure_ascii=False)).encode()).hexdigest()
    return {
        "id": "call_" + digest[:16],
        "type": "function",
        "function": {"name": best["name"], "arguments": json.dumps(args, ensure_ascii=False)},
    }


def _keywords(question: str) -> str:
    """规则 7 再搜一次用的查询：去掉问题里的疑问词与标点，只留关键词。"""
    return " ".join(_PUNCTUATION.sub(" ", _QUESTION_WORDS.sub(" ", question)).split())


def _tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """助手消息里发出的全部工具调用，按先后。"""
    return [c for m in messages if m.get("role") == "assistant" for c in (m.get("tool_calls") or [])]


def _call_for(messages: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any] | None:
    """工具结果对应的那次调用（按 tool_call_id 在助手消息里找）。"""
    return next((c for c in _tool_calls(messages) if c.get("id") == result.get("tool_call_id")), None)


def _args_of(call: dict[str, Any] | None) -> dict[str, Any] | None:
    """一次工具调用的参数（arguments 是 JSON 字符串）；解析不了返回 None。"""
    try:
        args = json.loads(((call or {}).get("function") or {}).get("arguments") or "{}")
    except json.JSONDecodeError:
        return None
    return args if isinstance(args, dict) else None


def _string_args(messages: list[dict[str, Any]], result: dict[str, Any]) -> str:
    """规则 6：产生这条工具结果的调用里的字符串参数（检索查询），拼成一段；找不到就是空串。"""
    args = _args_of(_call_for(messages, result)) or {}
    return " ".join(v for v in args.values() if isinstance(v, str))


def _search_again(messages: list[dict[str, Any]], latest: dict[str, Any], tools: list[dict[str, Any]],
                  question: str) -> dict[str, Any] | None:
    """规则 7：最近的工具结果是"未找到"、这个工具本轮只调用过一次时，用关键词再调用一次；否则 None。"""
    if not tools or not _text_of(latest).startswith(SEARCH_NOT_FOUND):
        return None
    start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1) + 1
    turn = messages[start:]
    call = _call_for(turn, latest)
    if call is None:
        return None
    name = (call.get("function") or {}).get("name")
    if sum((c.get("function") or {}).get("name") == name for c in _tool_calls(turn)) != 1:
        return None
    spec = [t for t in tools if t.get("function", t).get("name") == name]
    again = _pick_tool(_keywords(question), spec, forced=name) if spec else None
    if again is None or _args_of(again) == _args_of(call):  # 关键词就是上次的查询：再搜也一样
        return None
    return again


def forced_tool(tool_choice: Any) -> str | None:
    """tool_choice 强制调用的工具名：指名时是名字，"required"/"any" 时是 ""，不强制时是 None（第 3 章）。"""
    if tool_choice in ("required", "any"):
        return ""
    if isinstance(tool_choice, dict):  # {"type": "function", "function": {"name": …}}，或 {…, "name": …}
        fn = tool_choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else tool_choice.get("name")
        if isinstance(name, str) and name:
            return name
    return None


def _fill_schema(content: str, response_format: dict[str, Any] | None) -> str:
    """规则 5：把抽取式回答装进 JSON Schema 的字段，只是格式化，不是理解（第 3 章）。"""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return content
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    props = schema.get("properties")
    if not isinstance(props, dict):
        return content
    sources = sorted({int(n) for n in re.findall(r"\[(\d+)\]", content)})
    text = re.sub(r"\[\d+\]", "", content.removeprefix("根据参考资料："))
    filled: dict[str, Any] = {}
    for name, spec in props.items():
        if not isinstance(spec, dict):
            continue
        kind, items = spec.get("type"), (spec.get("items") or {}).get("type")
        if kind == "string":
            filled[name] = text
        elif kind == "array" and items == "string":
            filled[name] = split_sentences(text)
        elif kind == "array" and items == "integer":
            filled[name] = sources
    return json.dumps(filled, ensure_ascii=False)


def respond(
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    tool_choice: Any = None,
) -> Reply:
    """按上面的规则回答一组对话消息（第 2 章）。"""
    prompt_text = "\n".join(_text_of(m) for m in messages)
    prompt_tokens = count_tokens(prompt_text) + 4 * len(messages)
    rng = random.Random(_seed_for(messages, seed))
    question = _question_of(messages)

    forced = forced_tool(tool_choice) if tools else None
    if forced is not None:  # 强制调用工具：即使工具已经返回过结果，也照样再调用（与 OpenAI 的规定一致）
        call = _pick_tool(question, tools or [], forced)
        if call is not None:
            return Reply("", [call], "tool_calls", prompt_tokens, count_tokens(json.dumps(call)))

    # 工具调用的后半程：工具已经返回了结果，就把结果转述给用户
    tail_tools = []
    for msg in reversed(messages):
        if msg.get("role") == "tool":
            tail_tools.append(msg)
        else:
            break
    if tail_tools:
        again = _search_again(messages, tail_tools[0], tools or [], question)
        if again is not None:  # 规则 7：未找到就用关键词再搜一次
            return Reply("", [again], "tool_calls", prompt_tokens, count_tokens(json.dumps(again)))
        texts = [_text_of(m) for m in reversed(tail_tools)]
        material = [m for m in reversed(tail_tools) if _REFERENCE_TAG.search(_text_of(m))]
        if material:  # 规则 6：检索工具返回了编号资料，像规则 1 一样摘句
            query = " ".join(_string_args(messages, m) for m in material).strip() or question
            content = _answer_from_material(query, [_text_of(m) for m in material], temperature, rng)
        elif texts[-1].startswith(SEARCH_NOT_FOUND):
            content = NOT_FOUND
        else:
            content = f"根据工具返回的结果：{'；'.join(texts)}"
    elif tools:
        call = _pick_tool(question, tools)
        if call is not None:
            return Reply("", [call], "tool_calls", prompt_tokens, count_tokens(json.dumps(call)))
        content = SELF_INTRO + "这次没有找到能用的工具，也无法自行回答。"
    else:
        blocks: list[str] = []
        for msg in messages:
            if msg.get("role") in {"system", "user"}:
                blocks.extend(extract_material(_text_of(msg))[0])
        if blocks:
            content = _answer_from_material(question, blocks, temperature, rng)
        else:
            content = SELF_INTRO + f"这次没有收到参考资料，所以无法回答“{question[:40]}”。"
    content = _fill_schema(content, response_format)

    finish = "stop"
    if max_tokens is not None and count_tokens(content) > max_tokens:
        kept = []
        for ch in content:
            if count_tokens("".join(kept) + ch) > max_tokens:
                break
            kept.append(ch)
        content, finish = "".join(kept), "length"
    return Reply(content, [], finish, prompt_tokens, count_tokens(content))
