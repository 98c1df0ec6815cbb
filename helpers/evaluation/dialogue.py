"""多轮追问评估：读对话评估集，分别用原样追问、压缩后的问题与人写的独立问题检索，比较检索指标（第 6 章）。

三种检索查询（mode）：
- raw：原样检索最后那句追问（不看历史）；
- condensed：与检索问答链同一次调用 condense_question（真实模型按 CONDENSE_PROMPT 改写，离线模型用一条明说的规则）；
- oracle：人写的独立问题，是"改写做到完美"时的上限。

金标准（gold）与问答评估集同一写法，quote 逐字摘自资料；答案在资料里出现不止一处时 gold 列出每一处，
任一处进了前 k 块就算命中（hit），recall 是找到的处数占比。
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from helpers.config import EVAL_DIR
from helpers.evaluation.compare import bootstrap_ci, paired_bootstrap, text_table
from helpers.evaluation.dataset import SPLITS, check_gold, json_object, read_items
from helpers.evaluation.metrics import hit_at_k, recall_at_k, reciprocal_rank
from helpers.llm import get_chat_model
from helpers.rag import RagChain, condense_question

DIALOGUES_FILE = EVAL_DIR / "dialogues.jsonl"
DIALOGUE_KINDS = ("followup", "topic_switch")  # topic_switch：追问换了话题，不该与历史合并
MODES = ("raw", "condensed", "oracle")
MAX_TURNS = 5  # 压缩时一般只保留最近 3 到 5 轮（rag.md 6.6）
PAIRS = (("condensed", "raw"), ("oracle", "condensed"))  # 汇总表里的配对差值：新 − 旧


@dataclass(frozen=True)
class Turn:
    """对话里较早的一轮：用户的问题，以及可选的简短参考回答（第 6 章）。"""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Dialogue:
    """多轮评估集的一条：前几轮、最后的追问、人写的独立问题、金标准与参考答案（第 6 章）。"""

    id: str
    turns: tuple[Turn, ...]
    question: str
    standalone: str
    gold: tuple[Mapping[str, Any], ...]
    answer: str
    kind: str
    split: str
    type: str = "followup"

    def history_messages(self, answers: bool = True) -> list[BaseMessage]:
        """前几轮对话的消息：用户问题为 HumanMessage，参考回答为 AIMessage（answers=False 时只留问题）（第 6 章）。"""
        messages: list[BaseMessage] = []
        for turn in self.turns:
            messages.append(HumanMessage(turn.question))
            if answers and turn.answer:
                messages.append(AIMessage(turn.answer))
        return messages


@dataclass
class DialogueResult:
    """一条对话在某种查询方式下的检索结果：实际用的查询、检索到的块与 hit / recall / rr（第 6 章）。"""

    id: str
    kind: str
    split: str
    mode: str
    question: str
    query: str
    retrieved: list[Document]
    k: int
    hit: float
    recall: float
    rr: float

    @property
    def sources(self) -> list[str]:
        """检索到的块的出处（文件名），看检索偏到了哪篇文档（第 6 章）。"""
        return [str(d.metadata.get("source", "?")) for d in self.retrieved]


# ---------------------------------------------------------------------------
# 读取与校验
# ---------------------------------------------------------------------------


def _text(raw: Mapping[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}缺少字段 {name}（非空字符串）")
    return value


def _turn(entry: Any, where: str, n: int) -> Turn:
    if isinstance(entry, str) and entry.strip():
        return Turn(entry)
    if isinstance(entry, dict) and isinstance(entry.get("question"), str) and entry["question"].strip():
        answer = entry.get("answer")
        if answer is not None and (not isinstance(answer, str) or not answer.strip()):
            raise ValueError(f"{where}：turns 第 {n} 轮的 answer 应是非空字符串（没有参考回答就不写这个键）")
        return Turn(entry["question"], answer)
    raise ValueError(f"{where}：turns 第 {n} 轮应是问题字符串，或 {{\"question\": …, \"answer\": …}}")


def _dialogue(raw: dict[str, Any], where: str) -> Dialogue:
    for name in ("id", "question", "standalone", "answer"):
        _text(raw, name, where)
    turns = raw.get("turns")
    if not isinstance(turns, list) or not 1 <= len(turns) <= MAX_TURNS:
        raise ValueError(f"{where}：turns 应是 1 到 {MAX_TURNS} 轮较早的用户问题组成的列表")
    if raw.get("type") != "followup":
        raise ValueError(f"{where}的 type={raw.get('type')!r}：多轮评估集的 type 只能是 'followup'")
    if raw.get("kind") not in DIALOGUE_KINDS:
        raise ValueError(f"{where}的 kind={raw.get('kind')!r} 不在 {'、'.join(DIALOGUE_KINDS)} 之中")
    if raw.get("split") not in SPLITS:
        raise ValueError(f"{where}的 split={raw.get('split')!r} 不在 {'、'.join(SPLITS)} 之中")
    if not isinstance(raw.get("gold"), list) or not raw["gold"]:
        raise ValueError(f"{where}缺少字段 gold（非空的出处列表，如 [{{\"source\": \"rag.md\", \"quote\": \"…\"}}]）")
    if raw["kind"] == "followup" and raw["standalone"].strip() == raw["question"].strip():
        raise ValueError(f"{where}：standalone 与 question 相同；追问应离不开上文，standalone 写补全后的独立问题")
    gold = tuple(check_gold(g, where) for g in raw["gold"])
    return Dialogue(raw["id"], tuple(_turn(t, where, n) for n, t in enumerate(turns, 1)), raw["question"],
                    raw["standalone"], gold, raw["answer"], raw["kind"], raw["split"])


def parse_dialogue_line(line: str, where: str = "第 1 行") -> Dialogue:
    """解析并校验多轮评估集的一行；出错时用中文说明是哪一行、哪里不对（第 6 章）。"""
    return _dialogue(json_object(line, where), where)


def load_dialogues(path: Path | str | None = None) -> list[Dialogue]:
    """读取多轮评估集（默认 data/eval/dialogues.jsonl）并逐行校验，id 不得重复（第 6 章）。"""
    return read_items(path if path is not None else DIALOGUES_FILE, _dialogue,
                      "{\"id\", \"turns\", \"question\", \"standalone\", \"gold\", \"answer\", …}")


# ---------------------------------------------------------------------------
# 三种查询与检索
# ---------------------------------------------------------------------------


def dialogue_query(dialogue: Dialogue, chain: RagChain, mode: str = "condensed", answers: bool = True) -> str:
    """这条对话在 mode 下实际拿去检索的查询：原样追问、链压缩后的问题或人写的独立问题（第 6 章）。"""
    if mode == "raw":
        return dialogue.question
    if mode == "oracle":
        return dialogue.standalone
    if mode != "condensed":
        raise ValueError(f"mode={mode!r} 不认识：可选 {'、'.join(MODES)}")
    # 与 RagChain 回答时同一条路：历史放进链的会话仓库，按链的 token 预算裁剪，再调 condense_question
    session = f"eval-{dialogue.id}-{uuid.uuid4().hex[:8]}"  # 每次一个新会话：同一条链反复用也不会串历史
    chain.history_store.add_messages(session, dialogue.history_messages(answers))
    return condense_question(dialogue.question, chain.history(session), chain.llm)


def _factory(chain_factory: Callable[[], RagChain] | None, kb: Any, llm: BaseChatModel | None,
             k: int, retriever: str) -> Callable[[], RagChain]:
    if chain_factory is not None:
        return chain_factory
    if kb is None:
        raise ValueError("请给出 chain_factory（返回一条 RagChain 的函数），或者 kb（知识库，可再给 llm）")
    model = llm if llm is not None else get_chat_model()
    return lambda: RagChain(kb.as_retriever(retriever, k=k), model, embeddings=kb.embeddings)


def run_dialogues(dialogues: Sequence[Dialogue], chain_factory: Callable[[], RagChain] | None = None, *,
                  kb: Any = None, llm: BaseChatModel | None = None, mode: str = "condensed", k: int = 4,
                  retriever: str = "hybrid", answers: bool = True) -> list[DialogueResult]:
    """逐条对话按 mode 得出查询、检索前 k 块并算 hit@k / recall@k / rr；每条对话用一条新链（第 6 章）。

    chain_factory 返回一条 RagChain（用它的检索器与模型）；不给时用 kb.as_retriever(retriever, k) 与 llm
    （默认 get_chat_model()）。answers=False 时历史里只有用户的问题，没有参考回答。
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} 不认识：可选 {'、'.join(MODES)}")
    if k < 1:
        raise ValueError(f"k 应当 ≥ 1，现为 {k}")
    make = _factory(chain_factory, kb, llm, k, retriever)
    out = []
    for d in dialogues:
        chain = make()
        query = dialogue_query(d, chain, mode, answers)
        docs = list(chain.retriever.invoke(query))[:k]  # 与评估集实验一样，按阈值过滤之前的检索结果打分
        out.append(DialogueResult(d.id, d.kind, d.split, mode, d.question, query, docs, k,
                                  hit_at_k(docs, d.gold, k), recall_at_k(docs, d.gold, k),
                                  reciprocal_rank(docs, d.gold, k)))
    return out


def run_modes(dialogues: Sequence[Dialogue], chain_factory: Callable[[], RagChain] | None = None, *,
              modes: Sequence[str] = MODES, **kwargs: Any) -> dict[str, list[DialogueResult]]:
    """对同一批对话把几种 mode 各跑一遍：{mode: 逐条结果}（参数同 run_dialogues）（第 6 章）。"""
    return {m: run_dialogues(dialogues, chain_factory, mode=m, **kwargs) for m in modes}


# ---------------------------------------------------------------------------
# 汇总与逐条对比
# ---------------------------------------------------------------------------


def _select(results: Sequence[DialogueResult], split: str | None, kind: str | None) -> list[DialogueResult]:
    return [r for r in results if (split is None or r.split == split) and (kind is None or r.kind == kind)]


def _aligned(runs: Mapping[str, Sequence[DialogueResult]], split: str | None,
             kind: str | None) -> dict[str, list[DialogueResult]]:
    picked = {m: _select(rs, split, kind) for m, rs in runs.items()}
    ids = {m: [r.id for r in rs] for m, rs in picked.items()}
    first = next(iter(ids.values()), [])
    if any(v != first for v in ids.values()):
        raise ValueError("各 mode 的结果不是同一批对话（或顺序不同）：请用同一个 dialogues 列表跑每种 mode")
    if not first:
        raise ValueError(f"没有可汇总的对话（split={split!r}，kind={kind!r}）")
    return picked


def _rounded(stats: tuple[float, float, float]) -> tuple[float, tuple[float, float]]:
    mean, lo, hi = stats
    return round(mean, 4), (round(lo, 4), round(hi, 4))


def dialogue_summary(runs: Mapping[str, Sequence[DialogueResult]], *, split: str | None = None,
                     kind: str | None = None, n: int = 2000, seed: int = 0,
                     level: float = 0.95) -> list[dict[str, Any]]:
    """每种 mode 一行（hit@k、recall@k、mrr@k 及自助法区间），再加 condensed − raw 等配对差值行（第 6 章）。"""
    picked = _aligned(runs, split, kind)
    k = next(iter(picked.values()))[0].k
    rows: list[dict[str, Any]] = []
    for mode, rs in picked.items():
        row: dict[str, Any] = {"mode": mode, "dialogues": len(rs)}
        row[f"hit@{k}"], row[f"hit@{k}_ci"] = _rounded(bootstrap_ci([r.hit for r in rs], n, seed, level))
        row[f"recall@{k}"] = round(sum(r.recall for r in rs) / len(rs), 4)
        row[f"mrr@{k}"], row[f"mrr@{k}_ci"] = _rounded(bootstrap_ci([r.rr for r in rs], n, seed, level))
        rows.append(row)
    for new, old in PAIRS:
        if new in picked and old in picked:
            a, b = picked[new], picked[old]
            row = {"mode": f"{new} − {old}", "dialogues": len(a)}
            row[f"hit@{k}"], row[f"hit@{k}_ci"] = _rounded(
                paired_bootstrap([r.hit for r in a], [r.hit for r in b], n, seed, level))
            row[f"recall@{k}"] = round(sum(x.recall - y.recall for x, y in zip(a, b)) / len(a), 4)
            row[f"mrr@{k}"], row[f"mrr@{k}_ci"] = _rounded(
                paired_bootstrap([r.rr for r in a], [r.rr for r in b], n, seed, level))
            rows.append(row)
    return rows


def dialogue_table(runs: Mapping[str, Sequence[DialogueResult]], **kwargs: Any) -> str:
    """把 dialogue_summary 排成中文纯文本表：指标 [95% 区间]，差值行带正负号（参数同 dialogue_summary）（第 6 章）。"""
    rows = dialogue_summary(runs, **kwargs)
    k = next(iter(runs.values()))[0].k

    def cell(row: Mapping[str, Any], key: str) -> str:
        fmt = "{:+.3f}" if "−" in row["mode"] else "{:.3f}"
        lo, hi = row[f"{key}_ci"]
        return f"{fmt.format(row[key])} [{fmt.format(lo)}, {fmt.format(hi)}]"

    header = ["查询方式", "对话数", f"hit@{k}", f"recall@{k}", f"mrr@{k}"]
    body = [[r["mode"], str(r["dialogues"]), cell(r, f"hit@{k}"),
             ("{:+.3f}" if "−" in r["mode"] else "{:.3f}").format(r[f"recall@{k}"]), cell(r, f"mrr@{k}")]
            for r in rows]
    return text_table(header, body)


def dialogue_diff(runs: Mapping[str, Sequence[DialogueResult]], a: str = "condensed",
                  b: str = "oracle") -> list[dict[str, Any]]:
    """逐条列出 a 与 b 两种查询倒数排名不同的对话：id、类别、两边的查询与 rr（找压缩出错的对话）（第 6 章）。"""
    missing = [m for m in (a, b) if m not in runs]
    if missing:
        raise ValueError(f"结果里没有 {'、'.join(missing)}：先用 run_modes 跑这几种 mode（现有 {'、'.join(runs)}）")
    picked = _aligned({a: runs[a], b: runs[b]}, None, None)
    return [{"id": x.id, "kind": x.kind, "question": x.question, f"{a}_query": x.query, f"{b}_query": y.query,
             f"rr_{a}": round(x.rr, 4), f"rr_{b}": round(y.rr, 4)}
            for x, y in zip(picked[a], picked[b]) if x.rr != y.rr]


def dialogue_rows(runs: Mapping[str, Sequence[DialogueResult]]) -> list[dict[str, Any]]:
    """逐条对话一行：追问、每种 mode 实际用的查询与 rr，交给 pandas.DataFrame 逐条查看（第 6 章）。"""
    picked = _aligned(runs, None, None)
    rows = []
    for results in zip(*picked.values()):
        first = results[0]
        row: dict[str, Any] = {"id": first.id, "kind": first.kind, "split": first.split, "question": first.question}
        for r in results:
            row[f"{r.mode}_query"], row[f"rr_{r.mode}"] = r.query, round(r.rr, 4)
        rows.append(row)
    return rows
