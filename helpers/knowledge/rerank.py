"""重排序：混合检索召回几十块后，再对 (问题, 块) 逐对打分、重新排序（第 8 章）。

两种重排序器，接口相同（rerank / compress_documents），由 get_reranker() 按 RERANK_PROVIDER 选：
- OfflineReranker（默认）：不下载任何权重、2 核上 30 块约 1–3 毫秒的确定性打分器。它看的是第一阶段
  "词袋"看不到的东西：问题里稀有的二字/三字片段覆盖了多少（按候选集里的文档频率与 jieba 词频先验加权）、
  这些片段在块里挨得多近（最短窗口）、公式编号/数字/拉丁与希腊字母是否原样出现、最长公共子串，
  再加上第一阶段的名次。它不是交叉编码器 (cross-encoder)：不懂同义改写，只是比词袋多看了"顺序与位置"。
- ProviderReranker：各家的重排序 API（DashScope、智谱、千帆、vLLM），地址与限额见 helpers/providers.py。
为什么手写 OfflineReranker：能离线、不下载模型的中文重排序库没有（sentence-transformers 的 CrossEncoder 要下载权重）。
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from langchain_core.callbacks import Callbacks
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda

from helpers.config import ConfigError, Settings, load_settings
from helpers.errors import CourseError, redact
from helpers.offline.embeddings import feature_weight
from helpers.providers import Provider, get_provider
from helpers.text import CJK_CLASS

RERANK_SCORE = "rerank_score"  # compress_documents 写进元数据的分数
RERANK_CANDIDATES = 30  # 建议先用混合检索取多少块再重排序

FEATURES = ("first_rank", "first_score", "cover2", "cover3", "window", "exact_ref", "exact_sym", "lcs",
            "answer_type")
FIRST_STAGE_SCORE = "score"  # 第一阶段的分数在元数据里的键（KnowledgeRetriever 写的就是它）
# 特征的固定权重。在两套代理基准的 dev 划分上挑的（data/bench/encyclopedia、data/bench/textbook 里 split == "dev"
# 的问题）：混合检索取 30 块，对权重做坐标搜索，看金标准块的名次；test 划分与课程问题集没有参与挑选。
# 2026-12-01 的结果（hit@1，混合检索 top-30 → 重排序；括号里是纯混合检索）：教材代理 dev 0.899（0.763）、
# test 0.893（0.839），其中"推导式(…)"类问题 0.976（0.807）；百科代理 dev/test、办公文件代理 dev/test 与课程问题集都不变
# （0.935/0.920、0.730/0.676、0.827）。
# 几乎全部收益来自 exact_ref（问题里的"式(9.35)"原样出现在块里）；坐标搜索在 dev 上挑出的更大权重
# （first_score 4、exact_sym 6…）在 dev 上只高 0.006，却让课程问题集的 hit@1 掉到 0.800，所以没有用
# window（最短窗口）与 answer_type（问数问年份时块里有没有数）在 dev 上没有增益，权重为 0，特征照算供展示
WEIGHTS: dict[str, float] = {
    "first_rank": 1.0, "first_score": 1.0, "cover2": 0.3, "cover3": 0.3, "window": 0.0, "exact_ref": 3.0,
    "exact_sym": 0.3, "lcs": 0.3, "answer_type": 0.0,
}

_CJK_RUN = re.compile(rf"[{CJK_CLASS}]+")
# 原样比对的记号：带小数点的编号（9.35、3.2.1）、整数、拉丁字母串、希腊字母
_SYMBOL = re.compile(r"\d+(?:\.\d+)+|\d+|[a-z][a-z0-9_]*|[α-ωΑ-Ω]")
# 编号引用：式(9.35)、图 3.2、第 4.1 节、(2.14)——在教材里几乎只出现在一两页上；0.6、2.26 这样的数值不算
_REFERENCE = re.compile(
    r"(?:式|公式|方程|等式|不等式|图|表|节|章|定理|引理|推论|例|算法|习题)\s*[(]?\s*(\d+(?:\.\d+)+)|[(]\s*(\d+(?:\.\d+)+)\s*[)]")
# 提问用的套话：不是内容，不参与匹配
_ASKING = re.compile(
    r"请问|请|根据上下文|根据|是什么|什么是|什么|为什么|怎么样|怎么|怎样|如何|哪些|哪个|哪里|多少|是否|有没有|"
    r"吗|呢|吧|一下|简述|说明|介绍|回答|推导出|推导"
)


# 全角字母、数字与小数点 → 半角（与 NFKC 对它们的处理相同，但快得多：unicodedata.normalize 每块要几十微秒）；
# 还有全角括号（式（1.1））；全角逗号等不用换：匹配只看汉字串与记号
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_WIDE = re.compile("[\uff08\uff09\uff0e\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_SPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    """比较用的规范化：全角转半角、字母小写（没有全角字符时不做逐字替换，快得多）。"""
    return (text.translate(_HALFWIDTH) if _WIDE.search(text) else text).lower()


# 问题要的答案类型 → 块里答案的样子：问"多少/几次"要有数，问"哪一年/何时"要有年份或日期
_ASKS_NUMBER = re.compile(r"多少|几[个次年种首位名条天岁项人倍座只件届]|多[大高长远重深宽久]|比例|百分之")
_ASKS_TIME = re.compile(r"哪一?年|何时|什么时候|哪个朝代|哪天|年份|日期")
_NUMBER = re.compile(r"\d|[一二两三四五六七八九十百千万亿]+[个次年种首位名条天岁项人倍座只件届%]")
_TIME = re.compile(r"\d{3,4}年|[一二三四五六七八九十〇零]{2,4}年|\d+月|\d+日|公元|世纪|朝")


@dataclass(frozen=True)
class _Query:
    """一个问题拆出的匹配片段：二字、三字、记号，及问题的规范化文本。"""

    text: str
    bigrams: tuple[str, ...]
    trigrams: tuple[str, ...]
    symbols: tuple[str, ...]
    references: tuple[str, ...]
    answer: re.Pattern[str] | None  # 答案的样子（见 _ASKS_NUMBER / _ASKS_TIME），问别的时为 None


def _parse_query(query: str) -> _Query:
    text = _ASKING.sub(" ", _fold(query))
    bi: dict[str, None] = {}
    tri: dict[str, None] = {}
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            bi[run] = None  # 单字的问题词（如"熵"）也要能对上
        for i in range(len(run) - 1):
            bi[run[i : i + 2]] = None
        for i in range(len(run) - 2):
            tri[run[i : i + 3]] = None
    raw = _fold(query)
    refs = tuple(dict.fromkeys(a or b for a, b in _REFERENCE.findall(raw)))
    symbols = tuple(s for s in dict.fromkeys(_SYMBOL.findall(text)) if s not in refs)
    answer = _TIME if _ASKS_TIME.search(raw) else _NUMBER if _ASKS_NUMBER.search(raw) else None
    return _Query(text, tuple(bi), tuple(tri), symbols, refs, answer)


def _prior(gram: str) -> float:
    """片段的先验权重：jieba 词频越高越常见、越低；三字取其中较稀有的二字。"""
    if len(gram) <= 2:
        return feature_weight(gram)
    return max(feature_weight(gram[:2]), feature_weight(gram[1:]))


def _idf_weights(grams: Sequence[str], texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(片段 × 候选) 的出现矩阵与权重 = 先验 × 候选集里的 idf：人人都有的片段分不出高下。"""
    present = np.array([[g in t for t in texts] for g in grams], dtype=bool).reshape(len(grams), len(texts))
    df = present.sum(axis=1)
    n = len(texts)
    idf = np.log1p((n + 1) / (df + 0.5))
    prior = np.array([_prior(g) for g in grams], dtype=np.float64)
    return present, prior * idf


def _best_window(text: str, grams: Sequence[str], weights: np.ndarray, width: int) -> tuple[float, int, int]:
    """宽 width 的窗口里最多能盖住多少片段权重（同一片段只算一次）及窗口起止：问题的字眼挨得越近越好。"""
    hits: list[tuple[int, int]] = []
    for j, g in enumerate(grams):
        start = text.find(g)
        while start >= 0:
            hits.append((start, j))
            start = text.find(g, start + 1)
    if not hits:
        return 0.0, 0, 0
    hits.sort()
    count: dict[int, int] = {}
    covered = best = 0.0
    left = span_start = span_end = 0
    for pos, j in hits:
        if count.get(j, 0) == 0:
            covered += weights[j]
        count[j] = count.get(j, 0) + 1
        while pos - hits[left][0] > width:
            k = hits[left][1]
            count[k] -= 1
            if count[k] == 0:
                covered -= weights[k]
            left += 1
        if covered > best:
            best, span_start, span_end = covered, hits[left][0], pos
    return best, span_start, span_end


def _longest_common(a: str, b: str) -> int:
    """a 与 b 的最长公共子串长度（a 是短的问题）：从每个起点往后延伸，用 in 判断。"""
    best = 0
    for i in range(len(a)):
        length = best + 1
        while i + length <= len(a) and a[i : i + length] in b:
            best = length
            length += 1
    return best


@lru_cache(maxsize=4096)
def _symbol_pattern(symbol: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9a-z])(?<!\d\.){re.escape(symbol)}(?![0-9a-z]|\.\d)")


def _symbol_in(symbol: str, text: str) -> bool:
    """记号原样出现：前后不能紧挨着数字/字母（9.3 不算在 9.35、19.3 里出现，x 不算在 max 里出现）。"""
    return symbol in text and _symbol_pattern(symbol).search(text) is not None  # 先用 in 筛掉绝大多数块


def _symbol_scores(symbols: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """记号原样匹配的得分：每个记号按它在候选里的稀有程度（idf）计分，除以"只有一块有"时的满分。"""
    n = len(texts)
    present = np.array([[_symbol_in(s, t) for t in texts] for s in symbols], dtype=bool).reshape(len(symbols), n)
    idf = np.log((n + 1) / (present.sum(axis=1) + 0.5))
    return (idf @ present) / (len(symbols) * math.log((n + 1) / 1.5))


def pair_features(query: str, texts: Sequence[str], first_scores: Sequence[float] | None = None
                  ) -> np.ndarray:
    """(问题, 每个候选块) 的特征矩阵，形状 (块数, len(FEATURES))，列的含义见 FEATURES，值在 [0, 1]（第 8 章）。"""
    q = _parse_query(query)
    folded = [_fold(t) for t in texts]  # 记号比对用：保留空白，才分得出 "9.35 10" 与 "9.3510"
    docs = [_SPACE.sub("", t) for t in folded]  # 片段与子串比对用：去掉空白，PDF 断行不影响
    n = len(docs)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return out
    out[:, 0] = 1.0 / (1.0 + np.arange(n) / 3.0)  # 第一阶段的名次：排第 1 得 1，第 4 得 0.5
    if first_scores is not None and len(first_scores) == n and max(first_scores) > 0:
        out[:, 1] = np.clip(np.asarray(first_scores, dtype=np.float64) / max(first_scores), 0.0, 1.0)
    for col, grams in ((2, q.bigrams), (3, q.trigrams)):
        if grams:
            present, w = _idf_weights(grams, docs)
            total = w.sum() or 1.0
            out[:, col] = (w @ present) / total
            if col == 2:
                width = max(24, int(1.5 * len(q.text)))
                for i, d in enumerate(docs):
                    best, start, end = _best_window(d, grams, w, width)
                    out[i, 4] = best / total
                    if q.answer is not None and best > 0:  # 答案的样子出现在问题字眼附近（窗口前后再放宽 width）
                        out[i, 8] = float(q.answer.search(d, max(0, start - width), end + width) is not None)
    if q.references:
        out[:, 5] = [sum(_symbol_in(s, d) for s in q.references) / len(q.references) for d in folded]
    if q.symbols and n > 1:
        out[:, 6] = _symbol_scores(q.symbols, folded)
    compact = _SPACE.sub("", q.text)
    if compact:
        cap = max(4, min(12, len(compact)))
        out[:, 7] = [min(_longest_common(compact, d), cap) / cap for d in docs]
    return out


def _first_scores(docs: Sequence[Document]) -> list[float] | None:
    """第一阶段的分数（元数据 score）；有一块没有就不用分数、只用名次。"""
    values = [d.metadata.get(FIRST_STAGE_SCORE) for d in docs]
    if not values or not all(isinstance(v, (int, float)) for v in values):
        return None
    return [float(v) for v in values]


def _ranked(docs: Sequence[Document], scores: Sequence[float], top_n: int | None) -> list[tuple[Document, float]]:
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))  # 同分保持原来的先后
    pairs = [(docs[i], float(scores[i])) for i in order]
    return pairs if top_n is None else pairs[: max(top_n, 0)]


def _with_scores(pairs: list[tuple[Document, float]]) -> list[Document]:
    return [Document(page_content=d.page_content, id=d.id, metadata={**d.metadata, RERANK_SCORE: round(s, 6)})
            for d, s in pairs]


class OfflineReranker(BaseDocumentCompressor):
    """离线重排序器：稀有片段覆盖、最短窗口、记号原样匹配、最长公共子串加第一阶段名次，固定权重相加（第 8 章）。"""

    weights: dict[str, float] = dict(WEIGHTS)
    top_n: int | None = None

    def score(self, query: str, docs: Sequence[Document], first_scores: Sequence[float] | None = None
              ) -> list[float]:
        """每块的分数（越大越相关），顺序同 docs（按第一阶段名次排好）；first_scores 缺省读元数据 score（第 8 章）。"""
        first = list(first_scores) if first_scores is not None else _first_scores(docs)
        feats = pair_features(query, [d.page_content for d in docs], first)
        w = np.array([self.weights.get(name, 0.0) for name in FEATURES])
        return (feats @ w).tolist()

    def rerank(self, query: str, docs: Sequence[Document], top_n: int | None = None,
               first_scores: Sequence[float] | None = None) -> list[tuple[Document, float]]:
        """重新排序，返回 (块, 分数) 从高到低；top_n 只留前几块（第 8 章）。"""
        return _ranked(docs, self.score(query, docs, first_scores), self.top_n if top_n is None else top_n)

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        """LangChain 的文档压缩器接口：重排序后返回块，元数据带 rerank_score（第 8 章）。"""
        return _with_scores(self.rerank(query, documents))


# ---------------------------------------------------------------- 各家的重排序 API


class RerankError(CourseError):
    """重排序服务返回错误：消息用中文说明原因和下一步（第 8 章）。"""


def rerank_url(provider: Provider, base_url: str) -> str:
    """重排序接口的完整地址：以 / 开头的 rerank_path 接在主机后，否则接在 base_url 后（第 8 章）。"""
    if not provider.rerank_path:
        raise ConfigError(f"{provider.label} 没有课程接入的重排序接口：请把 RERANK_PROVIDER 设为 offline、"
                          "dashscope、zhipuai、qianfan 或 vllm")
    if provider.rerank_path.startswith("/"):
        parts = urlsplit(base_url)
        return f"{parts.scheme}://{parts.netloc}{provider.rerank_path}"
    return f"{base_url.rstrip('/')}/{provider.rerank_path}"


def rerank_body(provider: str, model: str, query: str, documents: list[str], top_n: int) -> dict[str, Any]:
    """按厂商文档拼请求体：DashScope 把 query/documents 放在 input 里，其余是 Jina/Cohere 式的平铺（第 8 章）。"""
    if provider == "dashscope":
        return {"model": model, "input": {"query": query, "documents": documents},
                "parameters": {"return_documents": False, "top_n": top_n}}
    return {"model": model, "query": query, "documents": documents, "top_n": top_n}


def _parse_rerank_response(provider: str, body: dict[str, Any]) -> list[tuple[int, float]]:
    """从响应里取出 (原序号, 相关分数)：DashScope 在 output.results，其余在 results。"""
    results = (body.get("output") or {}).get("results") if provider == "dashscope" else body.get("results")
    if not isinstance(results, list):
        raise RerankError(f"重排序服务的响应里没有 results：{redact(str(body))[:120]}")
    return [(int(r["index"]), float(r.get("relevance_score", r.get("score", 0.0)))) for r in results]


def _vendor_text(response: httpx.Response) -> str:
    """错误响应里厂商的原话：DashScope 的 code/message、OpenAI 式的 error.message、vLLM 的 message。"""
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return " ".join(str(err.get(k, "")) for k in ("code", "message") if err.get(k))
        parts = [str(body.get(k)) for k in ("code", "message", "msg", "detail") if body.get(k)]
        if isinstance(err, str):
            parts.append(err)
        return " ".join(parts)
    return str(body)[:120]


_MODEL_WORDS = ("model", "模型")
_LIMIT_WORDS = ("too many", "exceed", "超过", "最多", "documents", "batch")


def _explain_rerank_error(response: httpx.Response, provider: Provider, model: str, secrets: Sequence[str] = ()
                         ) -> str:
    """把重排序接口的错误响应翻译成一句中文：原因 + 下一步 + 厂商原话。"""
    status = response.status_code
    said = redact(_vendor_text(response), secrets)[:120]
    low = said.lower()
    if status == 401 or ("apikey" in low.replace("-", "").replace("_", "") and status in {400, 403}):
        line = f"重排序服务拒绝了密钥（{status}）：请检查 .env 中的 {provider.key_env}（申请地址：{provider.key_url}）"
    elif status == 403:
        line = f"没有权限（403）：账户可能未开通重排序模型 {model}"
    elif status == 404 or (any(w in low for w in _MODEL_WORDS) and "not" in low) or "不存在" in said:
        line = (f"重排序模型 {model} 不存在或地址不对（{status}）："
                "在 .env 设置 RERANK_MODEL=…（厂商重排序模型列表里的名字）")
    elif status in {400, 413, 422} and any(w in low for w in _LIMIT_WORDS):
        line = (f"一次送去重排序的文档太多或太长（{status}）：减少候选块数（课程默认 {RERANK_CANDIDATES}），"
                "或换 RERANK_PROVIDER")
    elif status == 429:
        line = "重排序服务限流（429）：稍后再试，或检查账户余额"
    else:
        line = f"重排序服务返回错误（{status}）：按厂商原话检查 RERANK_MODEL 与 RERANK_PROVIDER"
    return f"{line}；厂商原话：{said}" if said else line


class ProviderReranker(BaseDocumentCompressor):
    """厂商重排序 API（DashScope、智谱、千帆、vLLM）的统一封装：接口与 OfflineReranker 相同（第 8 章）。"""

    provider: str
    model: str
    url: str
    api_key: str | None = None
    timeout: float = 60.0
    max_docs: int = 0  # 每次请求最多几段；超过就分批（交叉编码器逐对打分，分批不改变分数）
    max_chars: int = 4000  # 每段最多送多少字：几家文档写的是 4000 token / 4096 字符，超长部分厂商也会截断
    top_n: int | None = None
    client: Any = None  # httpx.Client；测试里传带 MockTransport 的客户端
    requests: int = 0  # 发出的请求数（笔记本里算成本）

    model_config = {"arbitrary_types_allowed": True}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        client = self.client or httpx.Client(timeout=self.timeout)
        spec = get_provider(self.provider)
        try:
            self.requests += 1
            response = client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise RerankError(f"重排序服务 {self.timeout:.0f} 秒内没有响应：请检查网络或代理") from None
        except httpx.HTTPError as exc:
            raise RerankError(f"连不上重排序服务 {self.url}：{type(exc).__name__}，请检查网络与 "
                              f"{spec.env_prefix}_BASE_URL") from None
        finally:
            if self.client is None:
                client.close()
        if response.status_code >= 400:
            raise RerankError(_explain_rerank_error(response, spec, self.model, [self.api_key or ""]))
        try:
            return response.json()
        except ValueError:
            raise RerankError(f"重排序服务返回的不是 JSON（{response.status_code}）：请检查 {self.url}") from None

    def score(self, query: str, docs: Sequence[Document], first_scores: Sequence[float] | None = None
              ) -> list[float]:
        """每块的相关分数（厂商模型给的，用不上第一阶段的分数），顺序同 docs（第 8 章）。"""
        texts = [d.page_content[: self.max_chars] or " " for d in docs]
        scores = [0.0] * len(texts)
        step = self.max_docs or len(texts) or 1
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            body = self._post(rerank_body(self.provider, self.model, query, batch, len(batch)))
            for index, value in _parse_rerank_response(self.provider, body):
                if 0 <= index < len(batch):
                    scores[start + index] = value
        return scores

    def rerank(self, query: str, docs: Sequence[Document], top_n: int | None = None,
               first_scores: Sequence[float] | None = None) -> list[tuple[Document, float]]:
        """调用厂商接口重新排序，返回 (块, 分数) 从高到低；top_n 只留前几块（第 8 章）。"""
        if not docs:
            return []
        return _ranked(docs, self.score(query, docs, first_scores), self.top_n if top_n is None else top_n)

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        """LangChain 的文档压缩器接口：重排序后返回块，元数据带 rerank_score（第 8 章）。"""
        return _with_scores(self.rerank(query, documents))


Reranker = OfflineReranker | ProviderReranker


def get_reranker(settings: Settings | None = None, *, client: Any = None,
                 top_n: int | None = None) -> Reranker:
    """按 RERANK_PROVIDER / RERANK_MODEL 返回重排序器：默认离线，也可换成各家的重排序 API（第 8 章）。"""
    settings = settings or load_settings()
    spec = get_provider(settings.rerank_provider)
    if spec.name == "offline":
        return OfflineReranker(top_n=top_n)
    base_url = settings.base_urls.get(spec.name, spec.base_url)
    url = rerank_url(spec, base_url)
    key = settings.key_for(spec.name)
    if not key and spec.needs_key:
        raise ConfigError(f"未找到 {spec.key_env}：请在项目根目录的 .env 中设置（申请地址：{spec.key_url}），"
                          "或把 RERANK_PROVIDER 设为 offline 使用离线重排序器")
    model = settings.rerank_model or spec.rerank_model
    return ProviderReranker(provider=spec.name, model=model, url=url, api_key=key, timeout=settings.timeout,
                            max_docs=spec.rerank_max_docs, top_n=top_n, client=client)


def rerank_retriever(retriever: BaseRetriever, reranker: Reranker | None = None, top_n: int = 4
                     ) -> Runnable[str, list[Document]]:
    """两阶段检索：retriever 先召回（如 kb.as_retriever(k=30)），reranker 重排序后留 top_n 块（第 8 章）。

    与 LangChain 的 ContextualCompressionRetriever(base_compressor=重排序器, base_retriever=…) 做的是同一件事。
    """
    reranker = reranker or OfflineReranker()

    def run(question: str) -> list[Document]:
        return _with_scores(reranker.rerank(question, retriever.invoke(question), top_n=top_n))

    return RunnableLambda(run, name="rerank_retriever")


def rerank_cost_note(n_docs: int, reranker: Reranker) -> str:
    """一句话说明这次重排序的代价：离线不发请求，厂商接口按批数发请求（第 8 章）。"""
    if isinstance(reranker, OfflineReranker):
        return f"离线重排序 {n_docs} 块：0 次请求"
    batches = math.ceil(n_docs / (reranker.max_docs or max(n_docs, 1))) if n_docs else 0
    return f"{reranker.provider} 重排序 {n_docs} 块：{batches} 次请求（模型 {reranker.model}）"
