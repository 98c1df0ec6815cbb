"""切分文档：按中文标点递归切块，每块记下 source、page、chunk 序号与 start 偏移（第 4 章）。"""

from __future__ import annotations

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
