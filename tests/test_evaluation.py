"""helpers.evaluation：手算的期望值、空输入与退化输入。"""

from __future__ import annotations

import json
import math

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from helpers import evaluation as ev
from helpers.rag import RagAnswer, Source
from tests.support.corpus import write_corpus

A, B, C = {"source": "a.md"}, {"source": "b.md"}, {"source": "c.md"}


# ---------- 评估集 ----------

def test_real_eval_set_loads_with_types():
    items = ev.load_qa()
    assert len(items) == 125
    assert sum(not i.answerable for i in items) == 15
    assert {i.type for i in items} == set(ev.QUESTION_TYPES)
    assert all(isinstance(g.get("page", 0), int) for i in items for g in i.gold)


@pytest.mark.parametrize("bad, words", [
    ('{"id": "x", "question": "问", "gold": [], "answer": "答", "type": "unanswerable"', "不是合法的 JSON"),
    ('{"id": "x", "gold": [], "answer": "答", "type": "unanswerable"}', "question"),
    ('{"id": "x", "question": "问", "gold": [{"page": 1}], "answer": "答", "type": "lookup"}', "source"),
    ('{"id": "x", "question": "问", "gold": [{"source": "a.md", "page": "2"}], "answer": "答", "type": "lookup"}',
     "page"),
    ('{"id": "x", "question": "问", "gold": [], "answer": "答", "type": "lookup"}', "unanswerable"),
    ('{"id": "x", "question": "问", "gold": [], "answer": "答", "type": "其他"}', "type"),
])
def test_malformed_line_names_its_line_number(tmp_path, bad, words):
    good = json.dumps({"id": "q1", "question": "问", "gold": [A], "answer": "答", "type": "lookup"})
    path = tmp_path / "qa.jsonl"
    path.write_text(good + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        ev.load_qa(path)
    assert "qa.jsonl 第 3 行" in str(err.value) and words in str(err.value)


def test_duplicate_ids_and_empty_file_are_rejected(tmp_path):
    line = json.dumps({"id": "q1", "question": "问", "gold": [A], "answer": "答", "type": "lookup"})
    path = tmp_path / "qa.jsonl"
    path.write_text(line + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="重复"):
        ev.load_qa(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="空的"):
        ev.load_qa(path)


# ---------- 检索指标 ----------

def test_match_compares_pages_as_integers_and_needs_every_key():
    gold = {"source": "h.pdf", "page": 2}
    assert ev.matches({"source": "h.pdf", "page": "2", "extra": 1}, gold)
    assert ev.matches({"source": "h.pdf", "page": 2.0}, gold)
    assert not ev.matches({"source": "h.pdf", "page": 3}, gold)
    assert not ev.matches({"source": "h.pdf"}, gold)
    assert not ev.matches({"source": "h.pdf", "page": None}, gold)
    assert ev.matches({"source": "h.pdf", "page": 7}, {"source": "h.pdf"})
    assert ev.matches(ev.metadata_of(Document("x", metadata={"source": "h.pdf", "page": 2})), gold)


def test_single_gold_second_rank():
    got = [B, A, A]
    assert [ev.hit_at_k(got, [A], k) for k in (1, 2, 3)] == [0.0, 1.0, 1.0]
    assert ev.recall_at_k(got, [A], 1) == 0.0 and ev.recall_at_k(got, [A], 3) == 1.0
    assert ev.reciprocal_rank(got, [A]) == 0.5
    assert ev.reciprocal_rank(got, [A], k=1) == 0.0
    assert ev.ndcg_at_k(got, [A], 3) == pytest.approx(1 / math.log2(3))


def test_duplicate_chunks_count_once():
    got = [A, A, A, B]
    assert ev.recall_at_k(got, [A], 4) == 1.0
    assert ev.ndcg_at_k(got, [A], 4) == 1.0  # 不会因为同一文档的多个片段超过 1
    assert ev.ndcg_at_k(got, [A, B], 4) == pytest.approx((1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_multi_gold_recall_and_ndcg():
    got = [A, C, B]
    assert ev.recall_at_k(got, [A, B], 2) == 0.5
    assert ev.recall_at_k(got, [A, B], 3) == 1.0
    assert ev.ndcg_at_k(got, [A, B], 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_k_larger_than_results_and_empty_results():
    assert ev.recall_at_k([A], [A, B], 10) == 0.5
    assert ev.ndcg_at_k([A], [A, B], 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ev.hit_at_k([], [A], 5) == 0.0
    assert ev.reciprocal_rank([], [A]) == 0.0
    assert ev.ndcg_at_k([], [A], 5) == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="不可回答"):
        ev.hit_at_k([A], [], 1)
    with pytest.raises(ValueError, match="k 应当"):
        ev.recall_at_k([A], [A], 0)


def _item(qid, gold, answer="答", kind=None):
    return ev.QAItem(qid, "问题" + qid, tuple(gold), answer, kind or ("lookup" if gold else "unanswerable"))


def test_guide_example_averages_and_unanswerable_excluded():
    # 评估指南第 5.2 节的例子：Q1 第 1 名命中；Q2 两篇相关在第 2、6 名；Q3 第 4 名命中
    x = {"source": "x.md"}
    items = [_item("1", [A]), _item("2", [A, B]), _item("3", [A]), _item("4", [])]
    got = {"1": [A, x, x, x, x], "2": [x, A, x, x, x, B], "3": [x, x, x, A, x], "4": [A]}
    m = ev.retrieval_metrics(items, got, ks=(3, 5))
    assert m["queries"] == 3
    assert m["hit@3"] == pytest.approx(2 / 3)
    assert m["recall@5"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.25) / 3)


def test_all_unanswerable_set_gives_none_not_zero():
    m = ev.retrieval_metrics([_item("1", []), _item("2", [])], {}, ks=(1,))
    assert m == {"queries": 0, "hit@1": None, "recall@1": None, "ndcg@1": None, "mrr": None}


# ---------- 回答指标 ----------

def test_exact_match_normalizes_width_case_space_and_punctuation():
    assert ev.exact_match("2022 年", "2022年。") == 1.0
    assert ev.exact_match("ＣｈａｔＧＰＴ", "chatgpt") == 1.0
    assert ev.exact_match("2022 年 11 月", "2022 年") == 0.0
    assert ev.exact_match("", "") == 1.0 and ev.exact_match("", "x") == 0.0


def test_answer_tokens_use_jieba_and_drop_punctuation():
    assert ev.answer_tokens("Gradio 的默认端口是 7860。") == ["gradio", "的", "默认", "端口", "是", "7860"]
    assert ev.answer_tokens("，。！  ") == []


def test_token_f1_hand_computed():
    assert ev.token_f1("a b c", "a b d") == pytest.approx(2 / 3)
    # 预测 4 词、参考 6 词、重合 4 词：P=1，R=2/3，F1=0.8
    assert ev.token_f1("默认端口是 7860", "Gradio 的默认端口是 7860") == pytest.approx(0.8)
    assert ev.token_f1("a a", "a") == pytest.approx(2 / 3)  # 多重集合：重合只算 1 次


def test_empty_prediction_or_reference():
    for fn in (ev.token_f1, ev.rouge_l, ev.bleu):
        assert fn("", "参考答案") == 0.0
        assert fn("回答", "") == 0.0
        assert fn("", "") == 1.0
        assert fn("。。", "") == 1.0  # 只有标点等于空


def test_rouge_l_hand_computed():
    assert ev.lcs_length("abcd", "acbd") == 3
    assert ev.rouge_l("a b c d", "a c b d") == pytest.approx(0.75)
    assert ev.rouge_l("a b", "a b c d") == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_bleu_hand_computed_with_smoothing():
    # p1..p4 = 4/5, 3/4, 2/3, 1/2；长度相同 BP=1
    assert ev.bleu("a b c d e", "a b c d f") == pytest.approx((4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25)
    # 回答只有 2 个词：p3、p4 没有 n 元，按方法 1 取 0.1/1；BP = exp(1 - 3/2)
    assert ev.bleu("a b", "a b c") == pytest.approx(math.exp(-0.5) * (1 * 1 * 0.1 * 0.1) ** 0.25)
    assert ev.bleu("x y", "a b") == 0.0
    assert ev.bleu("a b c d", "a b c d") == pytest.approx(1.0)
    # 退化情形：完全相同但不足 4 个词，p4 仍按 0.1 平滑（与 nltk 相同），所以不是 1
    assert ev.bleu("a b c", "a b c") == pytest.approx(0.1 ** 0.25)


def test_answer_metrics_keys():
    assert set(ev.answer_metrics("回答", "回答")) == {"em", "f1", "rouge_l", "bleu"}
    m = ev.answer_metrics("默认端口是 7860。", "默认端口是7860")
    assert m == {"em": 1.0, "f1": 1.0, "rouge_l": 1.0, "bleu": pytest.approx(1.0)}


# ---------- 引用与拒答 ----------

def _answer(text, *sources, refused=False):
    return RagAnswer("问", text, "问", [Source(n, s, p, "") for n, s, p in sources], refused)


def test_citation_accuracy_and_recall():
    ans = _answer("甲[1]乙[2]", (1, "a.md", None), (2, "b.md", None))
    assert ev.citation_scores(ans, [A]) == {"citation_accuracy": 0.5, "citation_recall": 1.0, "cited": 1.0}
    # 多条金标准：引到任一条即算对；召回看被引到的金标准占比
    one = _answer("甲[1]", (1, "a.md", None), (2, "b.md", None))
    assert ev.citation_scores(one, [A, B]) == {"citation_accuracy": 1.0, "citation_recall": 0.5, "cited": 1.0}
    pdf = _answer("甲[1]", (1, "h.pdf", 2))
    assert ev.citation_scores(pdf, [{"source": "h.pdf", "page": 2}])["citation_accuracy"] == 1.0
    assert ev.citation_scores(pdf, [{"source": "h.pdf", "page": 3}])["citation_accuracy"] == 0.0


def test_answer_without_markers_cites_nothing():
    ans = _answer("没有标号的回答", (1, "a.md", None))
    assert ev.cited_sources(ans) == []
    assert ev.citation_scores(ans, [A])["citation_accuracy"] == 0.0
    with pytest.raises(ValueError):
        ev.citation_scores(ans, [])


def test_refusal_metrics_hand_computed():
    m = ev.refusal_metrics([True, False, True, False], [False, True, True, False])
    assert m == {"refusal_accuracy": 0.5, "refusal_precision": 0.5, "refusal_recall": 0.5}
    never = ev.refusal_metrics([False, False], [True, True])
    assert never == {"refusal_accuracy": 1.0, "refusal_precision": None, "refusal_recall": None}
    assert ev.refusal_metrics([], [])["refusal_accuracy"] is None
    assert ev.refusal_metrics([True], [False]) == {
        "refusal_accuracy": 1.0, "refusal_precision": 1.0, "refusal_recall": 1.0}


# ---------- 量表与裁判 ----------

def test_rubric_has_the_seven_dimensions():
    names = [d.name for d in ev.RUBRIC]
    assert names == ["知识查找正确性", "回答一致性", "回答幻觉比例", "回答正确性", "逻辑性", "通顺性", "智能性"]
    assert list(ev.rubric_table()["维度"]) == names


def test_score_table_averages_and_validates():
    table = ev.score_table({"q1": {"知识查找正确性": 1, "回答正确性": 0.7},
                            "q2": {"知识查找正确性": 0, "回答正确性": 0.3}})
    assert table.loc["平均", "回答正确性"] == pytest.approx(0.5)
    assert table.loc["q1", "总分"] == pytest.approx(1.7)
    with pytest.raises(ValueError, match="0 或 1"):
        ev.score_table({"q1": {"知识查找正确性": 0.5}})
    with pytest.raises(ValueError, match="超出范围"):
        ev.score_table({"q1": {"通顺性": 1.5}})
    with pytest.raises(ValueError, match="未知的评分维度"):
        ev.score_table({"q1": {"好不好": 1}})


def test_offline_judge_says_it_is_not_a_judge():
    from helpers.llm import get_chat_model

    res = ev.judge_answer("端口是多少？", "默认端口是 7860[1]", "Gradio 默认端口是 7860。",
                          "默认端口 7860", llm=get_chat_model(), hit=1.0, refused=False)
    assert res.judge == "offline-heuristic" and "不是真正的裁判" in res.note
    assert res.scores["逻辑性"] is None and res.scores["知识查找正确性"] == 1.0
    assert 0 < res.scores["回答正确性"] <= 1


GOOD = json.dumps({"analysis": "多了一条无依据的陈述", "knowledge": 1, "consistency": 1, "faithfulness": 0.5,
                   "correctness": 0.5, "logic": 1, "fluency": 1, "intelligence": 0.5})  # 先分析后打分，只取锚定档位


def test_real_judge_parses_validates_and_retries_once():
    llm = FakeListChatModel(responses=["我觉得挺好", "```json\n" + GOOD + "\n```"])
    res = ev.judge_answer("问", "答", "资料", "参考", llm=llm)
    assert res.judge != "offline-heuristic"
    assert res.scores["回答幻觉比例"] == 0.5 and res.reason == "多了一条无依据的陈述"
    bad = GOOD.replace('"logic": 1', '"logic": 0.7')  # 不是锚定的档位（0、0.5、1）
    with pytest.raises(ValueError, match="连续 2 次"):
        ev.judge_answer("问", "答", "资料", "参考", llm=FakeListChatModel(responses=[bad, bad]))


# ---------- 查询改写与坏例归类 ----------

def test_rule_rewrite_only_drops_question_words():
    assert ev.rule_rewrite("HNSW 的 M 参数表示什么，常取什么范围？") == "HNSW 的 M 参数表示 常取 范围"
    assert ev.rule_rewrite("？") == "？"  # 删光了就保留原问题


def test_rewrite_query_uses_a_real_model_and_rules_offline():
    from helpers.llm import get_chat_model

    assert ev.rewrite_query("请问什么是 RRF？", get_chat_model()) == "RRF"
    fake = FakeListChatModel(responses=["倒数排名融合 RRF 公式"])
    assert ev.rewrite_query("RRF 是啥", fake) == "倒数排名融合 RRF 公式"


def test_classify_failure_looks_at_retrieval_first():
    def res(gold, hit=None, refused=False, f1=0.5):
        ans = RagAnswer("问", "答", "问", [], refused)
        scores = {"f1": f1} if gold else {}
        if hit is not None:
            scores["hit"] = hit
        return ev.QuestionResult("q", "lookup", "问", "问", tuple(gold), [], "参考", ans, scores)

    assert ev.classify_failure(res([A], hit=0.0, refused=True)) == "检索未命中"
    assert ev.classify_failure(res([A], hit=1.0, refused=True)) == "过度拒答"
    assert ev.classify_failure(res([A], hit=1.0, f1=0.05)) == "回答偏离参考"
    assert ev.classify_failure(res([A], hit=1.0)) is None
    assert ev.classify_failure(res([], refused=False)) == "该拒未拒"
    assert ev.classify_failure(res([], refused=True)) is None
    assert list(ev.FAILURE_KINDS) == ["检索未命中", "过度拒答", "该拒未拒", "回答偏离参考"]
    kind = ev.classify_failure(res([A], hit=0.0))
    assert kind is ev.FailureKind.MISSED and f"{kind}" == "检索未命中" and repr([kind]) == "['检索未命中']"


def test_score_question_and_summarize_are_plain_functions():
    item, none = _item("1", [A]), _item("2", [])
    ans = _answer("甲[1]", (1, "a.md", None))
    s1 = ev.score_question(item, [Document("x", metadata=A), Document("y", metadata=B)], ans, k=2)
    assert s1["hit"] == 1.0 and s1["rr"] == 1.0 and s1["distinct_sources"] == 2.0
    assert s1["refused"] == 0.0 and s1["citation_accuracy"] == 1.0 and set(ev.answer_metrics("", "")) <= set(s1)
    s2 = ev.score_question(none, [], _answer("", refused=True), k=2)
    assert s2 == {"distinct_sources": 0.0, "refused": 1.0}
    results = [ev.QuestionResult(i.id, i.type, i.question, i.question, i.gold, [], i.answer, a, s)
               for i, a, s in ((item, ans, s1), (none, _answer("", refused=True), s2))]
    row = ev.summarize(results)
    assert row["hit@k"] == 1.0 and row["distinct_sources"] == 1.0 and row["refusal_accuracy"] == 1.0
    assert list(ev.summarize(results, answers=False)) == ["hit@k", "recall@k", "ndcg@k", "mrr@k", "facts@k",
                                                          "distinct_sources"]


def test_evaluation_prompts_live_with_the_other_prompts():
    from helpers import prompts

    assert ev.JUDGE_PROMPT is prompts.JUDGE_PROMPT and ev.REWRITE_PROMPT is prompts.REWRITE_PROMPT
    assert "JUDGE_PROMPT" not in prompts.PROMPTS  # 登记表只放检索问答的提示版本


# ---------- 对比实验 ----------

def test_config_validation_and_stable_key():
    cfg = ev.ExperimentConfig()
    assert cfg.key() == ev.ExperimentConfig().key() and len(cfg.key()) == 10
    assert cfg.key() != ev.ExperimentConfig(k=5).key()
    assert ev.ExperimentConfig(retriever="dense", mmr=True).kind == "mmr"
    with pytest.raises(ValueError, match="MMR"):
        ev.ExperimentConfig(mmr=True)
    with pytest.raises(ValueError):
        ev.ExperimentConfig(chunk_size=50, chunk_overlap=50)
    with pytest.raises(ValueError, match="提示版本"):
        ev.ExperimentConfig(prompt="v9")
    with pytest.raises(ValueError, match="retriever"):
        ev.ExperimentConfig(retriever="bm26")


DOCS = {
    "vector.md": "# 向量数据库\n\nChroma 是一个开源的向量数据库。"
                 "HNSW 索引的 M 参数是每个节点保留的最大邻居数，常取 16 到 64。"
                 "ef_search 越大，召回越高，查询越慢。向量数据库按余弦相似度返回最相近的片段。\n\n"
                 "Chroma 默认使用平方 L2 距离，也可以在创建集合时改成 cosine。持久化目录由 persist_directory 指定。",
    "deploy.md": "# 部署\n\nGradio 的默认端口是 7860。launch(share=True) 生成的公网链接有效期为 72 小时。"
                 "Streamlit 的默认端口是 8501。\n\nNginx 的 proxy_read_timeout 默认 60 秒，流式回答要调大到 300 秒。"
                 "反向代理还要关闭 proxy_buffering，否则流式输出会被缓冲。",
    "prompt.md": "# 提示工程\n\n少样本提示一般给 2 到 5 个示例。示例应覆盖不同情况，标签分布不要过于偏斜。"
                 "思维链提示让模型先写出推理步骤再给答案。\n\n提示里用分隔符把资料和指令分开，可以防止提示注入。",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"), DOCS)
    qa = [
        ev.QAItem("t1", "HNSW 的 M 参数常取多少？", ({"source": "vector.md"},), "常取 16 到 64", "lookup"),
        ev.QAItem("t2", "Gradio 默认端口是多少？", ({"source": "deploy.md"},), "7860", "lookup"),
        ev.QAItem("t3", "少样本提示给几个示例？", ({"source": "prompt.md"},), "2 到 5 个", "lookup"),
        ev.QAItem("t4", "明天上海会下雨吗？", (), "知识库中没有相关信息", "unanswerable"),
    ]
    return ev.ExperimentRunner(qa, corpus=root)


def test_chunk_sizes_never_share_a_collection_and_give_different_results(tiny):
    small = ev.ExperimentConfig(chunk_size=40, chunk_overlap=0, retriever="bm25", k=2)
    large = ev.ExperimentConfig(chunk_size=400, chunk_overlap=0, retriever="bm25", k=2)
    a, b = tiny.run(small, answers=False), tiny.run(large, answers=False)
    assert a["collection"] != b["collection"]
    assert a["chunks"] > b["chunks"]
    # 每个集合里只有自己那种切分的块：没有混进另一种配置的块
    assert tiny.knowledge_base(small).count() == a["chunks"]
    assert tiny.knowledge_base(large).count() == b["chunks"]
    texts = lambda cfg: [[d.page_content for d in r.retrieved] for r in tiny.details(cfg, answers=False)]  # noqa: E731
    assert texts(small) != texts(large)
    assert max(len(t) for r in texts(small) for t in r) <= 40 < max(len(t) for r in texts(large) for t in r)


def test_query_time_settings_read_the_same_index_without_writing(tiny):
    base = ev.ExperimentConfig(chunk_size=120, chunk_overlap=20, retriever="bm25", k=1)
    wider = ev.ExperimentConfig(chunk_size=120, chunk_overlap=20, retriever="dense", k=3)
    before = tiny.knowledge_base(base).count()
    r1, r3 = tiny.run(base, answers=False), tiny.run(wider, answers=False)
    assert r1["collection"] == r3["collection"] and tiny.knowledge_base(wider).count() == before
    assert all(len(r.retrieved) == 1 for r in tiny.details(base, answers=False))
    assert r1["config_id"] != r3["config_id"]


def test_answer_run_row_and_results_files(tiny, tmp_path):
    cfg = ev.ExperimentConfig(chunk_size=120, chunk_overlap=20, retriever="hybrid", k=2)
    row = tiny.run(cfg)
    assert row["provider"] == "offline" and row["model"] == "offline-extractive"
    assert row["questions"] == 4 and row["answerable"] == 3 and row["hit@k"] == 1.0
    assert row["refusal_recall"] == 1.0  # 明天的天气：相关度低于阈值，直接拒答
    assert 0 < row["f1"] <= 1 and row["citation_accuracy"] == 1.0
    assert tiny.run(cfg) is row  # 同一配置不重跑
    csv1, json1 = ev.save_results([row], tmp_path / "a" / "offline")
    csv2, _ = ev.save_results([row], tmp_path / "b" / "offline")
    assert csv1.read_bytes() == csv2.read_bytes()  # 不含时间戳：同样的结果写出同样的文件
    back = ev.load_results(csv1, json1)
    assert len(back) == 2 and list(back["qa"]) == [row["qa"]] * 2
    assert back.loc[0, "f1"] == pytest.approx(row["f1"], rel=1e-5)
    with pytest.raises(ValueError):
        ev.load_results()
