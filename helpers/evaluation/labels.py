"""人工标注：课程作者读过的回答各标一个"对不对、错在哪一环"，与自动的坏例归类对照（第 6 章）。

标注绑定在回答的文字上（`answer_sha256`，回答文字 SHA-256 的前 16 位）：换了模型、改了提示，回答变了，
这条标注就不再适用——只对照文字完全相同的回答，绝不把旧标注套在新回答上。
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.config import EVAL_DIR
from helpers.evaluation.dataset import read_items
from helpers.evaluation.experiment import FailureKind, QuestionResult, classify_failure

LABELS_FILE = EVAL_DIR / "human_labels.jsonl"
CORRECTNESS = ("对", "部分对", "错")
CAUSES = ("无", "检索", "生成", "闸门")  # 检索：答案原文不在前 k 块；生成：资料里有却没答出；闸门：该拒未拒
PASSED = "通过"  # 自动归类没有挑出毛病
# 自动归类落在哪一环（与人工标注的 cause 同一套词，才能画成一张方的混淆表）；过度拒答记作生成：
# 离线时它来自模型"没找到相关句子"，闸门挡掉的题在归类里分不出来
AUTO_CAUSE = {PASSED: "无", FailureKind.MISSED.value: "检索", FailureKind.OFF_REFERENCE.value: "生成",
              FailureKind.OVER_REFUSED.value: "生成", FailureKind.NOT_REFUSED.value: "闸门"}


@dataclass(frozen=True)
class HumanLabel:
    """一条人工标注：哪道题、标的是哪段回答、对不对、错在哪一环、一句说明（第 6 章）。"""

    id: str
    answer_sha256: str
    correct: str
    cause: str
    note: str


def answer_digest(text: str) -> str:
    """回答文字的指纹（SHA-256 前 16 位）：标注只对文字完全相同的回答有效（第 6 章）。"""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _label(raw: Mapping[str, Any], where: str) -> HumanLabel:
    for key in ("id", "answer_sha256", "correct", "cause", "note"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ValueError(f"{where}缺少字段 {key}（非空字符串）")
    if raw["correct"] not in CORRECTNESS:
        raise ValueError(f"{where}的 correct 是 {raw['correct']!r}：只能是 {'、'.join(CORRECTNESS)}")
    if raw["cause"] not in CAUSES:
        raise ValueError(f"{where}的 cause 是 {raw['cause']!r}：只能是 {'、'.join(CAUSES)}")
    if (raw["correct"] == "对") != (raw["cause"] == "无"):
        raise ValueError(f"{where}：答对的 cause 记“无”，没全对的要写错在哪一环（检索、生成或闸门）")
    return HumanLabel(raw["id"], raw["answer_sha256"], raw["correct"], raw["cause"], raw["note"])


def load_labels(path: Path | str | None = None) -> dict[str, HumanLabel]:
    """读入人工标注（JSON Lines，逐行校验，错误指明行号），返回 {题号: 标注}（第 6 章）。"""
    rows = read_items(path or LABELS_FILE, _label,
                      "{\"id\", \"answer_sha256\", \"correct\", \"cause\", \"note\"}")
    return {label.id: label for label in rows}


def auto_label(result: QuestionResult) -> str:
    """自动归类的结果：坏例的种类（如“检索未命中”），没挑出毛病记“通过”（第 6 章）。"""
    kind = classify_failure(result)
    return PASSED if kind is None else kind.value


def labelled(results: Iterable[QuestionResult], labels: Mapping[str, HumanLabel]) -> list[dict[str, Any]]:
    """把自动归类与人工标注并排：只收有标注、且回答文字与标注时完全相同的题（第 6 章）。"""
    rows = []
    for r in results:
        label = labels.get(r.id)
        if label is None or r.answer is None or answer_digest(r.answer.answer) != label.answer_sha256:
            continue
        auto = auto_label(r)
        rows.append({"id": r.id, "type": r.type, "auto": auto, "auto_cause": AUTO_CAUSE[auto],
                     "human_correct": label.correct,
                     "human_cause": label.cause, "note": label.note})
    return rows


def stale_labels(results: Sequence[QuestionResult], labels: Mapping[str, HumanLabel]) -> list[str]:
    """有标注、但回答已经变了的题号（换了模型或提示）：这些要重新标（第 6 章）。"""
    return [r.id for r in results if r.id in labels and r.answer is not None
            and answer_digest(r.answer.answer) != labels[r.id].answer_sha256]
