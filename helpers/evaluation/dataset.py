"""评估集：逐行读取 JSON Lines 问题集，严格校验（第 6 章的评估集）或宽松读取（检索基准的问题集）。"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from helpers.config import EVAL_DIR

QA_FILE = EVAL_DIR / "qa.jsonl"


class _HasId(Protocol):
    id: str


Item = TypeVar("Item", bound=_HasId)


class _HasSplit(Protocol):
    split: str


Split = TypeVar("Split", bound=_HasSplit)
QUESTION_TYPES = ("lookup", "paraphrase", "multi", "unanswerable")
SPLITS = ("dev", "test")  # 调参（阈值、权重、k、切分）只看 dev，结论在 test 上报告
NO_SPLIT = "all"  # 没写 split 字段的行（旧文件、自己写的小问题集）：不参与划分，只在"全部题"里出现
QUOTE_KEY = "quote"  # gold 里可选的原文片段：块的正文含这段原文才算命中（与切块方式无关）
MIN_QUOTE_CHARS = 6  # 去掉空白后至少这么多字：太短的片段到处都能碰上


@dataclass(frozen=True)
class QAItem:
    """评估集的一条：问题、金标准出处、参考答案与题型（第 6 章）。"""

    id: str
    question: str
    gold: tuple[Mapping[str, Any], ...]
    answer: str
    type: str
    split: str = NO_SPLIT  # dev / test；没写 split 字段时为 all
    facts: tuple[str, ...] = ()  # 参考事实：答案所在的原文片段；没写时取 gold 里的 quote（见 reference_facts）

    def reference_facts(self) -> tuple[str, ...]:
        """回答这道题需要的原文片段：facts 字段，没有时取 gold 的 quote（按页标的 PDF 题要写 facts）（第 6 章）。"""
        return self.facts or tuple(g[QUOTE_KEY] for g in self.gold if QUOTE_KEY in g)

    @property
    def answerable(self) -> bool:
        """金标准非空即可回答；空列表表示知识库里没有答案（第 6 章）。"""
        return bool(self.gold)


def json_object(line: str, where: str) -> dict[str, Any]:
    """把一行解析成 JSON 对象；不是合法 JSON 或不是对象时用中文说明是哪一行（第 6 章）。"""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}不是合法的 JSON（第 {err.colno} 列：{err.msg}）") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}应是一个 JSON 对象")
    return raw


def read_rows(path: Path | str) -> list[tuple[str, dict[str, Any]]]:
    """逐行读 JSON Lines（空行跳过，每行须是一个 JSON 对象），返回 [(“xx.jsonl 第 n 行”, 对象)]（第 6 章）。"""
    path = Path(path)
    rows = []
    # 按 \n 切而不用 splitlines()：JSON 字符串里可以有 U+2028 等字符，splitlines 会把它们当成换行
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if line.strip():
            where = f"{path.name} 第 {n} 行"
            rows.append((where, json_object(line, where)))
    return rows


def check_gold(entry: Any, where: str) -> dict[str, Any]:
    """校验 gold 的一项：非空对象、有 source，page 是从 0 数的整数，quote 够长（第 6 章）。"""
    if not isinstance(entry, dict) or not entry:
        raise ValueError(f"{where}：gold 的每一项都应是非空对象，如 {{\"source\": \"rag.md\"}}")
    if not isinstance(entry.get("source"), str) or not entry["source"]:
        raise ValueError(f"{where}：gold 的每一项都要有字符串字段 source（文档相对路径）")
    if "page" in entry and (isinstance(entry["page"], bool) or not isinstance(entry["page"], int)
                            or entry["page"] < 0):
        raise ValueError(f"{where}：gold 的 page 应是从 0 开始的整数页码，现为 {entry['page']!r}")
    if QUOTE_KEY in entry and (not isinstance(entry[QUOTE_KEY], str)
                               or len(_squash_spaces(entry[QUOTE_KEY])) < MIN_QUOTE_CHARS):
        raise ValueError(f"{where}：gold 的 quote 应是原文里的一小段（去掉空白后至少 {MIN_QUOTE_CHARS} 个字），"
                         f"现为 {entry[QUOTE_KEY]!r}")
    return dict(entry)


def _squash_spaces(text: str) -> str:
    """去掉全部空白（含换行），核对 gold 的 quote 时不受断行与切块边界的影响。"""
    return re.sub(r"\s+", "", text)


def _qa_item(raw: dict[str, Any], where: str) -> QAItem:
    for name in ("id", "question", "answer", "type"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise ValueError(f"{where}缺少字段 {name}（非空字符串）")
    if not isinstance(raw.get("gold"), list):
        raise ValueError(f"{where}缺少字段 gold（出处列表；不可回答的问题写 []）")
    if raw["type"] not in QUESTION_TYPES:
        raise ValueError(f"{where}的 type={raw['type']!r} 不在 {'、'.join(QUESTION_TYPES)} 之中")
    gold = tuple(check_gold(g, where) for g in raw["gold"])
    if (raw["type"] == "unanswerable") != (not gold):
        raise ValueError(f"{where}：type 为 unanswerable 当且仅当 gold 为空列表")
    split = raw.get("split", NO_SPLIT)
    if "split" in raw and split not in SPLITS:
        raise ValueError(f"{where}的 split={split!r} 只能是 {' 或 '.join(SPLITS)}（不参与划分就不写这个字段）")
    facts = raw.get("facts", [])
    if not isinstance(facts, list) or not all(isinstance(f, str) and len(_squash_spaces(f)) >= 2 for f in facts):
        raise ValueError(f"{where}的 facts 应是原文片段（字符串）的列表，如 [\"总费用下降了百分之五十八\"]")
    if facts and not gold:
        raise ValueError(f"{where}：不可回答的题没有参考事实，去掉 facts 字段")
    return QAItem(raw["id"], raw["question"], gold, raw["answer"], raw["type"], split, tuple(facts))


def parse_qa_line(line: str, where: str = "第 1 行") -> QAItem:
    """解析并校验评估集的一行；出错时用中文说明是哪一行、哪里不对（第 6 章）。"""
    return _qa_item(json_object(line, where), where)


def read_items(path: Path | str, parse: Callable[[dict[str, Any], str], Item], example: str) -> list[Item]:
    """逐行读 JSON Lines，用 parse 校验成记录；id 不得重复，文件不得为空，出错时指明行号（第 6 章）。"""
    items: list[Item] = []
    seen: set[str] = set()
    for where, raw in read_rows(path):
        item = parse(raw, where)
        if item.id in seen:
            raise ValueError(f"{where}：id {item.id!r} 与前面的重复")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ValueError(f"{Path(path).name} 是空的：每行写一条 {example}")
    return items


def load_qa(path: Path | str = QA_FILE, split: str | None = None) -> list[QAItem]:
    """读取 JSON Lines 评估集并逐行校验（空行跳过，id 不得重复）；split 给 dev 或 test 时只留那一半（第 6 章）。"""
    items = read_items(path, _qa_item, "{\"id\", \"question\", \"gold\", \"answer\", \"type\"}")
    return filter_split(items, split)


def filter_split(items: Sequence[Split], split: str | None = None) -> list[Split]:
    """只留 split 为 dev 或 test 的题（评估集的题，或带 split 的逐题结果）；None 或 "all" 全要（第 6 章）。"""
    if split is None or split == NO_SPLIT:
        return list(items)
    if split not in SPLITS:
        raise ValueError(f"split 只能是 dev、test 或 all，收到 {split!r}")
    picked = [i for i in items if i.split == split]
    if not picked:
        raise ValueError(f"评估集里没有 split={split} 的题：给每行加上 \"split\": \"dev\" 或 \"test\"，"
                         "或用 split=None 取全部")
    return picked


def split_rule(items: Sequence[QAItem]) -> dict[str, str]:
    """评估集的 dev/test 划分规则：每种题型内按 id 排序，第 1、3、5… 题进 dev，第 2、4、6… 题进 test（第 6 章）。

    按题型分层，每种题型（含不可回答题）两边各占一半（奇数时 dev 多一题）；只看 id，与题目内容、
    模型和检索结果无关，谁来算都得到同一个划分。data/eval/qa.jsonl 的 split 字段就是按它写的
    （tests/test_eval_experiment_stats.py 核对）。以后加题：新题按同一规则在自己的题型里接着排，
    已有的题不换边——test 上的结论才不会被调参"看过"。
    """
    out: dict[str, str] = {}
    for kind in sorted({i.type for i in items}):
        for n, item in enumerate(sorted((i for i in items if i.type == kind), key=lambda i: i.id)):
            out[item.id] = SPLITS[n % 2]
    return out


def load_queries(path: Path | str) -> list[dict[str, Any]]:
    """读取问题集 .jsonl：{"id", "question", "gold": [...], "answer"?}（第 4 章）。"""
    # 宽松读法（检索基准用）：只要求 question，gold 缺省为 []（无答案），其余字段原样保留
    rows = []
    for where, row in read_rows(path):
        if "question" not in row or not isinstance(row.get("gold", []), list):
            raise ValueError(f"{where}缺少 question 或 gold 不是列表")
        row.setdefault("gold", [])
        rows.append(row)
    return rows


def qa_fingerprint(items: Sequence[QAItem]) -> str:
    """评估集内容的短哈希：不同班级、不同提供方的结果只在同一评估集上比较（第 6 章）。"""
    blob = json.dumps([asdict(i) for i in items], ensure_ascii=False, sort_keys=True, default=dict)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
