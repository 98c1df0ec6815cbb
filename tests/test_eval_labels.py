"""人工标注：文件逐行校验；只与文字完全相同的回答对照，回答变了就报出来要重标。"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.evaluation import labels as lb
from helpers.evaluation.dataset import load_qa
from helpers.evaluation.experiment import QuestionResult
from helpers.rag import RagAnswer


def _result(qid: str, text: str, gold: bool = True, hit: float = 1.0, f1: float = 0.5) -> QuestionResult:
    answer = RagAnswer("问", text, "问", [], refused=False)
    return QuestionResult(qid, "lookup", "问", "问", ({"source": "a.md"},) if gold else (), [], "参考", answer,
                          {"hit": hit, "f1": f1} if gold else {})


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_the_course_labels_load_and_name_real_questions() -> None:
    labels = lb.load_labels()
    ids = {item.id for item in load_qa()}
    assert len(labels) >= 50 and set(labels) <= ids
    assert {lab.correct for lab in labels.values()} == set(lb.CORRECTNESS)


@pytest.mark.parametrize("bad, message", [
    ({"correct": "大概对"}, "correct"),
    ({"cause": "模型"}, "cause"),
    ({"correct": "对", "cause": "生成"}, "答对的 cause"),
    ({"note": ""}, "缺少字段 note"),
])
def test_a_bad_label_line_names_its_line(tmp_path: Path, bad: dict, message: str) -> None:
    good = {"id": "A001", "answer_sha256": "0" * 16, "correct": "错", "cause": "生成", "note": "没答出"}
    path = _write(tmp_path, [good, {**good, "id": "A002", **bad}])
    with pytest.raises(ValueError, match=f"第 2 行.*{message}|{message}.*") as err:
        lb.load_labels(path)
    assert "第 2 行" in str(err.value)


def test_labels_apply_only_to_the_exact_answer_they_were_written_for(tmp_path: Path) -> None:
    text = "根据参考资料：默认度量是 l2。[1]"
    path = _write(tmp_path, [
        {"id": "Q1", "answer_sha256": lb.answer_digest(text), "correct": "对", "cause": "无", "note": "对"},
        {"id": "Q2", "answer_sha256": lb.answer_digest("旧回答"), "correct": "错", "cause": "生成", "note": "旧"},
    ])
    labels = lb.load_labels(path)
    results = [_result("Q1", text, f1=0.05), _result("Q2", "换了模型之后的新回答"), _result("Q3", "没人标")]
    rows = lb.labelled(results, labels)
    assert [(r["id"], r["auto"], r["auto_cause"], r["human_correct"]) for r in rows] == [
        ("Q1", "回答偏离参考", "生成", "对")]
    assert lb.stale_labels(results, labels) == ["Q2"]


def test_reference_facts_are_counted_in_the_retrieved_chunks_not_across_them() -> None:
    from langchain_core.documents import Document

    from helpers import evaluation as ev

    chunks = [Document("上线后，总费用下降了百分之五十八，", metadata={"source": "h.pdf", "page": 24}),
              Document("而用户的点踩率只上升了零点四个百分点。", metadata={"source": "h.pdf", "page": 24})]
    facts = ["总费用下降了 百分之五十八", "点踩率只上升了零点四个百分点"]
    assert ev.facts_in_context(chunks, facts) == 1.0
    assert ev.facts_in_context(chunks, facts, k=1) == 0.5
    assert ev.facts_in_context(chunks, ["百分之五十八，而用户"]) == 0.0  # 跨两块的片段不算：要有一块完整含它
    with pytest.raises(ValueError, match="参考事实"):
        ev.facts_in_context(chunks, [])


def test_every_answerable_course_question_has_reference_facts_found_in_its_gold_page() -> None:
    from helpers import evaluation as ev

    qa = ev.load_qa()
    assert all(item.reference_facts() for item in qa if item.answerable)
    assert sum(bool(item.facts) for item in qa) == 30  # 按页标的 PDF 题另写了 facts
    with pytest.raises(ValueError, match="facts"):
        ev.parse_qa_line('{"id": "X", "question": "问", "gold": [], "answer": "无", "type": "unanswerable", '
                         '"facts": ["某句原文"]}')
