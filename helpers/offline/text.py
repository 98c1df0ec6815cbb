"""离线模型用到的中文文本工具：切句、估算 token 数（第 2 章）。"""

from __future__ import annotations

import math
import re
import unicodedata

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK}]|[A-Za-z]+|\d+|[^\s{_CJK}A-Za-z\d]")
_SENT_RE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*[”’」』）)]*")


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
