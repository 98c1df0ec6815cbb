"""helpers.evaluation 的统计与成本：dev/test 划分、配对比较与置信区间、随机检索基线、延迟与 token。"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from helpers import evaluation as ev
from helpers.rag import RagAnswer
from tests.support.corpus import write_corpus

# ---------- dev/test 划分 ----------


def test_eval_set_is_split_in_half_within_every_type_by_the_documented_rule():
    items = ev.load_qa()
    assert {i.split for i in items} == {"dev", "test"}
    assert {i.id: i.split for i in items} == ev.split_rule(items)  # 文件里的 split 就是规则算出来的
    counts = Counter((i.type, i.split) for i in items)
    for kind in ev.QUESTION_TYPES:  # 分层：每种题型（含 15 道不可回答题）两边各一半
        assert abs(counts[kind, "dev"] - counts[kind, "test"]) <= 1 and counts[kind, "test"] > 0
    dev, test = ev.load_qa(split="dev"), ev.load_qa(split="test")
    assert len(dev) + len(test) == len(items) and not {i.id for i in dev} & {i.id for i in test}
    assert ev.load_qa(split=None) == items == ev.load_qa(split="all")


def test_split_rule_is_deterministic_and_ignores_file_order():
    items = ev.load_qa()
    assert ev.split_rule(items[::-1]) == ev.split_rule(items)


def test_split_field_is_validated_and_optional(tmp_path):
    line = {"id": "q1", "question": "问", "gold": [{"source": "a.md"}], "answer": "答", "type": "lookup"}
    assert ev.parse_qa_line(json.dumps(line)).split == "all"  # 没写 split：不参与划分
    assert ev.parse_qa_line(json.dumps({**line, "split": "test"})).split == "test"
    with pytest.raises(ValueError, match="第 7 行.*split"):
        ev.parse_qa_line(json.dumps({**line, "split": "train"}), "第 7 行")
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="split=dev"):
        ev.load_qa(path, split="dev")


# ---------- 配对比较与置信区间（手算的小例子） ----------


def _res(qid: str, **scores: float) -> ev.QuestionResult:
    return ev.QuestionResult(qid, "lookup", "问", "问", ({"source": "a.md"},), [], "答", None, dict(scores))


def test_paired_compare_pairs_by_id_and_lists_who_moved():
    a = [_res("q1", hit=1.0), _res("q2", hit=1.0), _res("q3", hit=0.0), _res("q4")]
    b = [_res("q3", hit=0.0), _res("q2", hit=0.0), _res("q1", hit=1.0), _res("q4", hit=1.0)]
    out = ev.paired_compare(a, b, "hit@k")  # 汇总列名也行：hit@k → 逐题的 hit
    assert out["n"] == 3 and out["better"] == ["q2"] and out["worse"] == []  # q4 在 a 里没有值：不算
    assert out["delta"] == pytest.approx(1 / 3) and out["lo"] <= out["delta"] <= out["hi"]
    same = ev.paired_compare(a, a, "hit")
    assert (same["delta"], same["lo"], same["hi"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="共同"):
        ev.paired_compare(a, b, "f1")


def test_metric_ci_and_refusal_correct():
    results = [_res("q1", rr=1.0), _res("q2", rr=0.5), _res("q3", rr=0.0)]
    mean, lo, hi = ev.metric_ci(results, "mrr@k")
    assert mean == pytest.approx(0.5) and 0.0 <= lo < mean < hi <= 1.0
    with pytest.raises(ValueError, match="没有一道题"):
        ev.metric_ci(results, "f1")
    refused = RagAnswer("问", "知识库中没有找到相关内容", "问", refused=True)
    wrong = replace(results[0], answer=refused)  # 可回答题却拒答了
    right = replace(results[0], gold=(), answer=refused)
    assert ev.question_metric(wrong, "refusal_correct") == 0.0 and ev.question_metric(right, "refusal_accuracy") == 1.0
    assert ev.question_metric(results[0], "refusal_correct") is None  # 没有回答：拒答决定无从谈起


# ---------- 运行器：划分、区间列、随机基线、成本与延迟 ----------

DOCS = {
    "vector.md": "# 向量数据库\n\nChroma 是一个开源的向量数据库。"
                 "HNSW 索引的 M 参数是每个节点保留的最大邻居数，常取 16 到 64。"
                 "ef_search 越大，召回越高，查询越慢。\n\nChroma 默认使用平方 L2 距离，也可以改成 cosine。",
    "deploy.md": "# 部署\n\nGradio 的默认端口是 7860。Streamlit 的默认端口是 8501。"
                 "\n\nNginx 的 proxy_read_timeout 默认 60 秒，流式回答要调大到 300 秒。",
    "prompt.md": "# 提示工程\n\n少样本提示一般给 2 到 5 个示例。示例应覆盖不同情况。"
                 "\n\n思维链提示让模型先写出推理步骤再给答案。",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"), DOCS)
    qa = [
        ev.QAItem("t1", "HNSW 的 M 参数常取多少？", ({"source": "vector.md", "quote": "常取 16 到 64"},),
                  "常取 16 到 64", "lookup", "dev"),
        ev.QAItem("t2", "Gradio 默认端口是多少？", ({"source": "deploy.md", "quote": "Gradio 的默认端口是 7860"},),
                  "7860", "lookup", "test"),
        ev.QAItem("t3", "少样本提示给几个示例？", ({"source": "prompt.md"},), "2 到 5 个", "lookup", "dev"),
        ev.QAItem("t4", "明天上海会下雨吗？", (), "知识库中没有相关信息", "unanswerable", "test"),
    ]
    return ev.ExperimentRunner(qa, corpus=root)


CFG = ev.ExperimentConfig(chunk_size=80, chunk_overlap=0, retriever="hybrid", k=2)


def test_split_rows_summarise_only_that_half_from_one_run(tiny):
    everything = tiny.details(CFG)
    dev = tiny.run(CFG, split="dev")
    assert (dev["split"], dev["questions"], dev["answerable"]) == ("dev", 2, 2)
    assert tiny.run(CFG)["split"] == "all" and tiny.run(CFG)["questions"] == 4
    assert all(any(r is e for e in everything) for r in tiny.details(CFG, split="test"))  # 没有重跑
    assert [r.id for r in tiny.details(CFG, split="test")] == ["t2", "t4"]
    with pytest.raises(ValueError, match="split"):
        tiny.run(CFG, split="train")


def test_with_ci_adds_error_bar_columns_around_the_row_means(tiny):
    table = tiny.run_many([CFG, replace(CFG, score_threshold=0.5)])
    out = tiny.with_ci(table, ["hit@k", "mrr@k", "refusal_accuracy", "f1"])
    for name in ("hit@k", "mrr@k", "refusal_accuracy", "f1"):
        assert (out[f"{name}_lo"] <= out[name] + 1e-9).all() and (out[name] <= out[f"{name}_hi"] + 1e-9).all()
        # 区间的中心就是表里的平均分：逐题值与汇总列一致
        assert ev.metric_ci(tiny.details(CFG), name)[0] == pytest.approx(table.loc[0, name])
    assert "hit@k_lo" not in table  # 原表不变
    dev = tiny.with_ci(tiny.run_many([CFG], split="dev"), "hit@k")
    assert dev.loc[0, "hit@k_lo"] <= dev.loc[0, "hit@k"] == tiny.run(CFG, split="dev")["hit@k"]


def test_random_retriever_is_a_seeded_uniform_baseline(tiny):
    rnd = replace(CFG, retriever="random")
    kb = tiny.knowledge_base(rnd)
    retriever = ev.RandomRetriever(kb, k=3)
    first = [d.id for d in retriever.invoke("同一个问题")]
    assert first == [d.id for d in ev.RandomRetriever(kb, k=3).invoke("同一个问题")]  # 种子取自问题文字
    assert len(set(first)) == 3 and set(first) <= {d.id for d in kb.chunks()}  # 库里的块，不重复
    draws = {tuple(d.id for d in retriever.invoke(f"问题{i}")) for i in range(20)}
    assert len(draws) > 10  # 不同问题抽到不同的块
    row = tiny.run(rnd, answers=False)
    assert row["retriever"] == "random" and row["collection"] == tiny.run(CFG)["collection"]
    assert all(len(r.retrieved) == 2 for r in tiny.details(rnd, answers=False))


def test_cost_and_latency_count_tokens_of_cache_hits_but_not_their_time(tiny):
    base = tiny.details(CFG)
    row = tiny.run(CFG)
    assert row["tokens_per_question"] > 0 and 0 < row["calls_per_question"] <= 1
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
    answered = [r for r in base if r.cost["calls"]]
    assert answered and all(r.cost["prompt_tokens"] > 0 and r.cost["cached_calls"] == 0 for r in answered)
    # 阈值略变、提示完全相同：这次的模型调用全部命中缓存
    again = tiny.details(replace(CFG, score_threshold=0.11))
    same = [(a, b) for a, b in zip(base, again) if a.cost["calls"] and a.answer.answer == b.answer.answer]
    assert same and all(b.cost["cached_calls"] == b.cost["calls"] for _, b in same)
    for a, b in same:  # token 照算（真实运行要付），延迟沿用第一次真实调用的耗时
        assert b.cost["tokens"] == a.cost["tokens"] and b.cost["generation_ms"] == a.cost["generation_ms"]
        assert b.cost["retrieval_ms"] == a.cost["retrieval_ms"]


def test_rows_say_what_produced_them_and_still_save(tiny, tmp_path):
    row = tiny.run(CFG)
    assert row["temperature"] == 0.0 and row["prompt_hash"] == ev.prompt_hash(CFG.prompt)
    assert ev.prompt_hash("guarded_v3") != ev.prompt_hash("naive_v1") and len(row["prompt_hash"]) == 10
    retrieval_only = tiny.run(replace(CFG, k=1), answers=False)
    assert retrieval_only["prompt_hash"] == "" and retrieval_only["tokens_per_question"] == 0
    csv_path, json_path = ev.save_results([row, retrieval_only], tmp_path / "offline")
    back = ev.load_results(csv_path, json_path)
    assert len(back) == 4 and back.loc[0, "prompt_hash"] == row["prompt_hash"]
    assert back.loc[0, "latency_p95_ms"] == pytest.approx(row["latency_p95_ms"], rel=1e-5)


def test_any_chat_model_works_and_repeated_rewrites_count_as_cached_calls(tmp_path):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    root = write_corpus(tmp_path, DOCS)
    qa = [ev.QAItem("t1", "HNSW 的 M 参数常取多少？", ({"source": "vector.md"},), "16 到 64", "lookup", "dev"),
          ev.QAItem("t2", "明天上海会下雨吗？", (), "没有", "unanswerable", "test")]
    llm = FakeListChatModel(responses=["HNSW M 参数"])  # 不报用量、没有 temperature 的任意模型
    runner = ev.ExperimentRunner(qa, corpus=root, llm=llm)
    cfg = ev.ExperimentConfig(chunk_size=80, chunk_overlap=0, retriever="bm25", k=2, rewrite=True)
    row = runner.run(cfg)
    assert row["temperature"] is None and row["provider"] == "?"
    first = runner.details(cfg)
    assert all(r.cost["calls"] >= 1 and r.cost["cached_calls"] == 0 for r in first)  # 改写本身就是一次调用
    wider = runner.details(replace(cfg, k=3))  # 同一问题不再改写：那次调用记成缓存命中，耗时沿用第一次
    assert all(r.cost["cached_calls"] >= 1 and r.cost["latency_ms"] is not None for r in wider)
    assert [r.query for r in wider] == [r.query for r in first] == ["HNSW M 参数"] * 2
