"""切分文档：按中文标点递归切块，每块记下 source、page、chunk 序号与 start 偏移（第 4 章）。"""

from __future__ import annotations

import re

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

# 先按段落、换行，再按句末标点、分句标点，最后才按空格和单字硬切
CHINESE_SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "，", " ", ""]
DEFAULT_CHUNK_SIZE = 300
DEFAULT_CHUNK_OVERLAP = 60


def make_splitter(chunk_size: int = DEFAULT_CHUNK_SIZE,
                  chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> RecursiveCharacterTextSplitter:
    """尊重中文标点的递归切分器：标点留在句子末尾（第 4 章）。"""
    if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(
            f"chunk_size={chunk_size}、chunk_overlap={chunk_overlap} 不合理：要求 chunk_size > 0 且 "
            "0 <= chunk_overlap < chunk_size"
        )
    return RecursiveCharacterTextSplitter(
        separators=CHINESE_SEPARATORS,
        keep_separator="end",  # "。"跟着前一句走，不会跑到下一块开头
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        add_start_index=True,
        strip_whitespace=True,
    )


def split_documents(docs: list[Document], chunk_size: int = DEFAULT_CHUNK_SIZE,
                    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[Document]:
    """把文档切成块；每块带 chunk（在所属文件里的序号）与 start（在所属页/文档里的偏移）（第 4 章）。"""
    splitter = make_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    counters: dict[str, int] = {}
    for doc in docs:
        key = str(doc.metadata.get("file", doc.metadata.get("source", "")))
        for piece in splitter.split_documents([doc]):
            meta = dict(piece.metadata)
            meta["start"] = int(meta.pop("start_index", 0))
            meta["chunk"] = counters.get(key, 0)
            counters[key] = meta["chunk"] + 1
            chunks.append(Document(page_content=piece.page_content, metadata=meta))
    return chunks


_SENTENCE_END = re.compile(r"(?<=[。！？；!?\n])")


def _sentence_units(text: str, max_len: int) -> list[tuple[int, int]]:
    """把文本切成句子（句末标点或换行处），过长的句子再用递归切分器切到 max_len 以内；返回 (起, 止) 偏移。"""
    units, pos = [], 0
    for piece in _SENTENCE_END.split(text):
        start, pos = pos, pos + len(piece)
        if not piece.strip():
            continue
        if len(piece) <= max_len:
            units.append((start, pos))
            continue
        offset = 0
        for part in make_splitter(max_len, 0).split_text(piece):
            offset = piece.index(part, offset)
            units.append((start + offset, start + offset + len(part)))
            offset += len(part)
    return units


def split_sentence_windows(docs: list[Document], chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Document]:
    """句子窗口切分：每块以上一块的最后一句开头，相邻块在每个边界上都共享一整句（第 4 章）。"""
    chunks: list[Document] = []
    counters: dict[str, int] = {}
    for doc in docs:
        text, key = doc.page_content, str(doc.metadata.get("file", doc.metadata.get("source", "")))
        units = _sentence_units(text, chunk_size // 2)  # 每句不超过半块：上一句 + 下一句总装得下
        i = 0
        while i < len(units):
            j = i + 1
            while j < len(units) and units[j][1] - units[i][0] <= chunk_size:
                j += 1
            start, end = units[i][0], units[j - 1][1]
            body = text[start:end]
            lead = len(body) - len(body.lstrip())
            meta = {**doc.metadata, "start": start + lead, "chunk": counters.get(key, 0)}
            counters[key] = meta["chunk"] + 1
            chunks.append(Document(page_content=body.strip(), metadata=meta))
            if j >= len(units):
                break
            i = j - 1 if j - 1 > i else j  # 下一块从这一块的最后一句开始
    return chunks


def adjacent_overlaps(chunks: list[Document]) -> list[int]:
    """同一文件（同一页）里相邻两块重叠了多少字：前一块的结尾减后一块的 start，≤0 表示没有重叠（第 4 章）。"""
    out = []
    for a, b in zip(chunks, chunks[1:]):
        same = (a.metadata.get("source"), a.metadata.get("page")) == (b.metadata.get("source"), b.metadata.get("page"))
        if same:
            out.append(a.metadata["start"] + len(a.page_content) - b.metadata["start"])
    return out
