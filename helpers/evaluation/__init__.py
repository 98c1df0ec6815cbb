"""评估：评估集、检索指标、回答指标、评分量表、大模型裁判与对比实验（第 6 章）。

dataset（评估集）→ metrics（指标）→ judge（量表与裁判）、experiment（对比实验）、bench（检索基准命令行）。
"""

from helpers.evaluation.dataset import (
    QA_FILE,
    QUESTION_TYPES,
    QAItem,
    load_qa,
    load_queries,
    parse_qa_line,
    qa_fingerprint,
    read_rows,
)
from helpers.evaluation.experiment import (
    FAILURE_KINDS,
    RESULTS_DIR,
    RETRIEVERS,
    ExperimentConfig,
    ExperimentRunner,
    FailureKind,
    QuestionResult,
    classify_failure,
    load_results,
    rewrite_query,
    rule_rewrite,
    save_results,
    score_question,
    summarize,
)
from helpers.evaluation.judge import (
    RUBRIC,
    RUBRIC_BY_NAME,
    JudgeResult,
    JudgeScores,
    RubricDimension,
    check_scores,
    heuristic_judge,
    judge_answer,
    judge_messages,
    rubric_table,
    score_table,
)
from helpers.evaluation.metrics import (
    CITE_MARK,
    answer_metrics,
    answer_tokens,
    bleu,
    citation_scores,
    cited_sources,
    distinct_sources,
    exact_match,
    first_hit_rank,
    first_matches,
    hit_at_k,
    is_hit,
    lcs_length,
    matches,
    metadata_of,
    metrics_from_ranks,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    reciprocal_rank,
    refusal_metrics,
    retrieval_metrics,
    rouge_l,
    token_f1,
)
from helpers.prompts import JUDGE_PROMPT, REWRITE_PROMPT
from helpers.rag import is_offline

__all__ = [
    "CITE_MARK", "FAILURE_KINDS", "JUDGE_PROMPT", "QA_FILE", "QUESTION_TYPES", "RESULTS_DIR", "RETRIEVERS",
    "REWRITE_PROMPT", "RUBRIC", "RUBRIC_BY_NAME", "ExperimentConfig", "ExperimentRunner", "FailureKind",
    "JudgeResult", "JudgeScores", "QAItem", "QuestionResult", "RubricDimension", "answer_metrics",
    "answer_tokens", "bleu", "check_scores", "citation_scores", "cited_sources", "classify_failure",
    "distinct_sources", "exact_match", "first_hit_rank", "first_matches", "heuristic_judge", "hit_at_k",
    "is_hit", "is_offline", "judge_answer", "judge_messages", "lcs_length", "load_qa", "load_queries",
    "load_results", "matches", "metadata_of", "metrics_from_ranks", "ndcg_at_k", "normalize_answer",
    "parse_qa_line", "qa_fingerprint", "read_rows", "recall_at_k", "reciprocal_rank", "refusal_metrics",
    "retrieval_metrics", "rewrite_query", "rouge_l", "rubric_table", "rule_rewrite", "save_results",
    "score_question", "score_table", "summarize", "token_f1",
]
