"""中文文本工具：汉字范围、规范化、估算 token、切句、分词、字级特征，以及从模型回复里取 JSON（第 2、4 章）。

离线模型、离线嵌入、BM25 与评估共用这一份定义，所以这里不导入任何课程模块。
字级特征的整数键（feature_counts）由离线嵌入哈希成向量，也由字级 BM25 当作词表：两边必须一致。
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- 汉字范围（唯一的定义）

# CJK 统一表意文字：扩展 A、基本区、兼容区（码位闭区间）
CJK_RANGES: tuple[tuple[int, int], ...] = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
# 同一组范围写成正则字符类的内容，如 rf"[{CJK_CLASS}]" 匹配一个汉字
CJK_CLASS: str = "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in CJK_RANGES)

_CJK_RUN = re.compile(rf"[{CJK_CLASS}]+")
_TOKEN_RE = re.compile(rf"[{CJK_CLASS}]|[A-Za-z]+|\d+|[^\s{CJK_CLASS}A-Za-z\d]")
_SENT_RE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*[”’」』）)]*")
_WORD = re.compile(r"[a-z][a-z0-9_\-\.]*[a-z0-9]|[a-z]|\d+(?:\.\d+)?")
_PUNCT = re.compile(r"^[\W_]+$")
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)  # 本地部署的思考模型常把思考过程写在正文开头
_ASCII_RUN = re.compile(r"[a-z0-9]+(?:\.\d+)?%?")  # jieba 对英文与数字的切法（保留 3.5、90%）

# ---------------------------------------------------------------- 规范化、token 数、切句


def normalize(text: str) -> str:
    """全角转半角、英文小写，便于比较（第 4 章）。"""
    return unicodedata.normalize("NFKC", text).lower()


def count_tokens(text: str) -> int:
    """粗略估算 token 数：一个汉字约 1 个，英文单词约每 4 个字母 1 个（第 2 章）。"""
    total = 0
    for piece in _TOKEN_RE.findall(text):
        if piece.isascii() and piece.isalnum():
            total += max(1, math.ceil(len(piece) / 4))
        else:
            total += 1
    return total


def split_sentences(text: str) -> list[str]:
    """按中文句末标点与换行切句，去掉空白句（第 2 章）。"""
    return [s.strip() for s in _SENT_RE.findall(text) if s.strip()]


# ---------------------------------------------------------------- 字级特征：单字、二字、英文单词

# 特征键（int64）：高位是类型标签，低位是码位或哈希
# 特征键右移这么多位得到类型：0 单字，1 二元组，2 英文单词/数字，3 符号，4 三元组，5 公式编号
FEATURE_TAG_SHIFT = 42
TAG_CHAR, TAG_BIGRAM, TAG_WORD, TAG_SYMBOL, TAG_TRIGRAM, TAG_EQUATION = 0, 1, 2, 3, 4, 5
# 公式编号：正文里行末的 "(9.35)" 是这条公式的编号（定义处）；"式(9.35)" 是引用它。问题里的 "式(9.35)"
# 要找的多半是定义它的那一页，所以块里只认行末的编号、问题里只认 "式(…)"，两边对上就是一个很稀有的特征
_EQ_NUMBER = r"\(\s*(\d{1,3}(?:\s*[.\-]\s*\d{1,3}){1,2})\s*\)"
_EQ_LABEL = re.compile(rf"(?<!式){_EQ_NUMBER}[ \t]*(?=\n|$)")
_EQ_REF = re.compile(rf"式\s*{_EQ_NUMBER}")
EQUATION_MODES = ("", "label", "ref")  # 不抽公式编号 / 抽块里的编号（定义处）/ 抽问题里的引用
FEATURE_KEY_MASK = (1 << FEATURE_TAG_SHIFT) - 1  # 取出低位（码位或哈希）
_DOC_SHIFT = FEATURE_TAG_SHIFT + 3  # feature_counts 内部把 (文本序号, 键) 拼成一个整数时的位移


def jieba_dict() -> Path:
    """jieba 自带词典 dict.txt 的路径（离线嵌入的词频先验与基准都读它）（第 4 章）。"""
    import jieba  # 只为找到词典文件（导入约 0.05 秒）；多数导入 helpers.text 的地方用不到

    return Path(jieba.__file__).resolve().parent / "dict.txt"


@lru_cache(maxsize=1)
def _symbol_table() -> np.ndarray:
    """基本多文种平面里每个码位是不是"符号"（一次算好，约 30 毫秒）。"""
    table = np.array([unicodedata.category(chr(c))[0] in "LNS" for c in range(0x10000)], dtype=bool)
    table[: 0x80] = False  # ASCII 的字母数字已是英文单词/数字特征，标点与运算符不要
    table[is_cjk(np.arange(0x10000))] = False
    return table


def _is_symbol(codes: np.ndarray) -> np.ndarray:
    """码位数组中哪些是"符号"：希腊字母、数学符号等非汉字、非 ASCII、非空白、非标点的字符（第 8 章）。"""
    table = _symbol_table()
    mask = table[np.minimum(codes, 0xFFFF)]
    high = np.flatnonzero(codes > 0xFFFF)
    if len(high):
        mask[high] = [unicodedata.category(chr(c))[0] in "LNS" and not is_cjk(np.array([c]))[0]
                      for c in codes[high].tolist()]
    return mask


def equation_numbers(text: str, mode: str = "label") -> list[str]:
    """公式编号：mode="label" 取行末的编号 "(9.35)"（公式定义处），"ref" 取 "式(9.35)" 引用（第 8 章）。"""
    if mode not in EQUATION_MODES[1:]:
        raise ValueError(f"mode 只能是 label 或 ref，收到 {mode!r}")
    pattern = _EQ_LABEL if mode == "label" else _EQ_REF
    return [re.sub(r"\s+", "", m) for m in pattern.findall(normalize(text))]


def _equation_key(number: str) -> int:
    return (TAG_EQUATION << FEATURE_TAG_SHIFT) | zlib.crc32(("e:" + number).encode("utf-8"))


def features(text: str, symbols: bool = False, trigrams: bool = False, equations: str = "") -> Counter[str]:
    """抽取特征：汉字单字、相邻二字、英文单词与数字；symbols 加希腊字母等符号，trigrams 加相邻三字（第 4 章）。"""
    text = normalize(text)
    feats: Counter[str] = Counter()
    for run in _CJK_RUN.findall(text):
        feats.update(run)
        feats.update(run[i : i + 2] for i in range(len(run) - 1))
        if trigrams:
            feats.update("t:" + run[i : i + 3] for i in range(len(run) - 2))
    feats.update("w:" + w for w in _WORD.findall(text))
    if equations:
        feats.update("e:" + n for n in equation_numbers(text, equations))
    if symbols:
        codes = np.array([ord(c) for c in text], dtype=np.int64)
        feats.update("s:" + chr(c) for c in codes[_is_symbol(codes)].tolist())
    return feats


def is_cjk(codes: np.ndarray) -> np.ndarray:
    """码位数组中哪些是汉字（按 CJK_RANGES，向量化）（第 4 章）。"""
    mask = np.zeros(len(codes), dtype=bool)
    for lo, hi in CJK_RANGES:
        mask |= (codes >= lo) & (codes <= hi)
    return mask


_TRI_A, _TRI_B = 0x9E3779B1, 0x85EBCA77  # 三元组的键：三个码位混合后取低 42 位


def feature_counts(texts: list[str], symbols: bool = False, trigrams: bool = False, equations: str = ""
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """批量抽取特征并计数，返回三个等长数组 (文本序号, 特征键, 次数)；两个开关同 features（第 4 章）。"""
    norm = [normalize(t).replace("\x00", " ") for t in texts]
    codes = np.frombuffer("\x00".join(norm).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    doc = np.cumsum(codes == 0)
    cjk = is_cjk(codes)
    parts_doc = [doc[cjk]]
    parts_key = [codes[cjk] | (TAG_CHAR << FEATURE_TAG_SHIFT)]
    if len(codes) > 1:
        pair = cjk[:-1] & cjk[1:]
        parts_doc.append(doc[:-1][pair])
        parts_key.append((codes[:-1][pair] << 21) | codes[1:][pair] | (TAG_BIGRAM << FEATURE_TAG_SHIFT))
    if trigrams and len(codes) > 2:
        tri = cjk[:-2] & cjk[1:-1] & cjk[2:]
        mixed = (codes[:-2][tri] * _TRI_A) ^ (codes[1:-1][tri] * _TRI_B) ^ (codes[2:][tri] << 21)
        parts_doc.append(doc[:-2][tri])
        parts_key.append((mixed & FEATURE_KEY_MASK) | (TAG_TRIGRAM << FEATURE_TAG_SHIFT))
    if symbols:
        sym = _is_symbol(codes)
        parts_doc.append(doc[sym])
        parts_key.append(codes[sym] | (TAG_SYMBOL << FEATURE_TAG_SHIFT))
    words_doc, words_key = [], []
    for i, t in enumerate(norm):
        for w in _WORD.findall(t):
            words_doc.append(i)
            words_key.append((TAG_WORD << FEATURE_TAG_SHIFT) | zlib.crc32(("w:" + w).encode("utf-8")))
        if equations and "(" in t:
            for n in equation_numbers(t, equations):
                words_doc.append(i)
                words_key.append(_equation_key(n))
    parts_doc.append(np.array(words_doc, dtype=np.int64))
    parts_key.append(np.array(words_key, dtype=np.int64))
    pairs = (np.concatenate(parts_doc) << _DOC_SHIFT) | np.concatenate(parts_key)
    uniq, counts = np.unique(pairs, return_counts=True)
    return uniq >> _DOC_SHIFT, uniq & ((1 << _DOC_SHIFT) - 1), counts


# ---------------------------------------------------------------- 分词（BM25 用）


def word_tokens(text: str) -> list[str]:
    """词级 BM25 的分词：jieba 精确模式（rjieba），去掉标点与空白，英文转小写（第 4 章）。"""
    import rjieba  # 导入时加载词典，约 0.15 秒：只在词级分词时才需要

    out: list[str] = []
    for w in rjieba.cut(normalize(text)):
        if w.isalnum():  # 绝大多数词走这条快路
            out.append(w)
        elif w.isascii() and not rjieba.has_word(w):  # "gpt-4o"、"base_url"：像 jieba 一样拆开；"c++" 是词典词
            out.extend(_ASCII_RUN.findall(w))
        elif w.strip() and not _PUNCT.match(w):
            out.append(w)
    return out


def char_tokens(text: str, symbols: bool = False, trigrams: bool = False, equations: str = "") -> list[str]:
    """字级 BM25 的分词：汉字单字 + 相邻二字 + 英文单词/数字（开关同 features）（第 4 章）。"""
    return [f for f, n in features(text, symbols, trigrams, equations).items() for _ in range(n)]


tokenize = word_tokens  # 默认的 BM25 分词


def strip_thinking(text: str) -> str:
    """去掉模型回复里的 <think>…</think> 思考过程（第 8 章）。"""
    return _THINK.sub("", text)


def first_json_object(text: str) -> dict | None:
    """模型回复里第一个完整的 JSON 对象（允许前后有说明、``` 代码块或 <think> 段）；没有时返回 None（第 8 章）。"""
    text = strip_thinking(text)
    start = text.find("{")
    while start >= 0:
        depth = 0
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                try:
                    value = json.loads(text[start : end + 1])
                except ValueError:
                    break
                return value if isinstance(value, dict) else None
        start = text.find("{", start + 1)
    return None
