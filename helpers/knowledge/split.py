"""切分文档：按中文标点递归切块，每块记下 source、page、chunk 序号与 start 偏移（第 4 章）。"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from helpers.knowledge.formats import DOC_TITLE_KEY, HEADING_SEP
from helpers.text import CJK_CLASS

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


# ---------- 按结构切分（第 8 章） ----------
HEADING_KEY = "heading"  # 块元数据里的标题路径，如 "二、RAG 流水线 > 2.3 切分（Split）"；分隔符与 Word/网页的小节相同
_MD_HEADERS = [("#" * n, f"h{n}") for n in range(1, 7)]
# PDF 页里的编号标题行：第3章 …、3.2 …、3.2.1 …、一、…（不以句末标点结尾、不太长）
_PDF_HEADING = re.compile(
    rf"^(?:(?P<chap>第\s*[一二三四五六七八九十百零\d]+\s*[章篇部分])|(?P<num>\d{{1,2}}(?:\.\d{{1,2}}){{1,3}})"
    rf"|(?P<cn>[一二三四五六七八九十]{{1,3}}、))\s*[{CJK_CLASS}A-Za-z][^。！？；;!?]{{0,38}}$"
)


def _key_of(doc: Document) -> str:
    return str(doc.metadata.get("file", doc.metadata.get("source", "")))


def _markdown_sections(text: str) -> list[tuple[int, str]]:
    """用 LangChain 的 MarkdownHeaderTextSplitter 找各节：返回 (该节在原文里的起点, 标题路径)，起点升序。"""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(_MD_HEADERS, strip_headers=False)
    out: list[tuple[int, str]] = []
    cursor = 0
    for sec in splitter.split_text(text):
        path = HEADING_SEP.join(sec.metadata[k] for _, k in _MD_HEADERS if k in sec.metadata)
        first = next((ln.strip() for ln in sec.page_content.split("\n") if ln.strip()), "")
        pos = text.find(first, cursor) if first else -1
        if pos < 0:  # 找不到这一节的开头（不可见字符被它滤掉了等）：并进上一节
            continue
        line_start = text.rfind("\n", 0, pos) + 1
        if out and line_start == out[-1][0]:
            out[-1] = (line_start, path)
        else:
            out.append((line_start, path))
        cursor = pos + len(first)
    if not out or out[0][0] > 0:
        out.insert(0, (0, ""))
    return out


def _pdf_level(m: re.Match[str]) -> int:
    """PDF 编号标题的层级：第N章 / 一、 是 1 级，3.2 是 2 级，3.2.1 是 3 级。"""
    return m.group("num").count(".") + 1 if m.group("num") else 1


def _pdf_sections(text: str, carried: list[str]) -> list[tuple[int, str]]:
    """PDF 一页里的编号标题行：返回 (起点, 标题路径)；carried 是上一页结尾时的标题栈（就地更新）。"""
    out = [(0, HEADING_SEP.join(carried))]
    pos = 0
    for line in text.split("\n"):
        m = _PDF_HEADING.match(line.strip())
        if m:
            level = _pdf_level(m)
            del carried[level - 1:]
            carried.extend([""] * (level - 1 - len(carried)))
            carried.append(line.strip())
            path = HEADING_SEP.join(h for h in carried if h)
            if out[-1][0] == pos:
                out[-1] = (pos, path)
            else:
                out.append((pos, path))
        pos += len(line) + 1
    return out


def split_by_headings(docs: list[Document], chunk_size: int = DEFAULT_CHUNK_SIZE,
                      chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[Document]:
    """按标题分节再递归切块：每块带 heading（标题路径），块不跨节，start 仍是在原文档里的偏移（第 8 章）。"""
    splitter = make_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    counters: dict[str, int] = {}
    carried: dict[str, list[str]] = {}  # PDF：标题栈跨页延续
    for doc in docs:
        text, key = doc.page_content, _key_of(doc)
        if doc.metadata.get(HEADING_KEY):  # docx/html 等加载器已经按节给了标题
            sections = [(0, str(doc.metadata[HEADING_KEY]))]
        elif "page" in doc.metadata:
            sections = _pdf_sections(text, carried.setdefault(key, []))
        else:
            sections = _markdown_sections(text)
        bounds = [s for s, _ in sections[1:]] + [len(text)]
        for (start, path), end in zip(sections, bounds):
            body = text[start:end]
            if not body.strip():
                continue
            for piece in splitter.split_documents([Document(page_content=body, metadata=doc.metadata)]):
                meta = dict(piece.metadata)
                meta["start"] = start + int(meta.pop("start_index", 0))
                meta[HEADING_KEY] = path
                meta["chunk"] = counters.get(key, 0)
                counters[key] = meta["chunk"] + 1
                chunks.append(Document(page_content=piece.page_content, metadata=meta))
    return chunks


def with_heading_context(chunk: Document, depth: int | None = None) -> str:
    """建索引用的文字：标题路径（depth 只取最后几级）+ 换行 + 块正文；块的 page_content 不变（第 8 章）。"""
    path = [h for h in str(chunk.metadata.get(HEADING_KEY) or "").split(HEADING_SEP) if h.strip()]
    heading = HEADING_SEP.join(path[-depth:] if depth else path).strip()
    if not heading or chunk.page_content.startswith(heading):
        return chunk.page_content
    return f"{heading}\n{chunk.page_content}"


# 办公、网页与字幕文件切出的小单位（一行表格、一条字幕段）自己不说它属于哪份文件、哪张工作表：
# 建索引时把这几项元数据写在正文前面（只影响检索，page_content 与引用不变）；
# Markdown/PDF/.jsonl 的块没有这些键，不受影响
CONTEXT_KEYS = (DOC_TITLE_KEY, "sheet", "title")  # 文件标题、工作表名、幻灯片或网页标题


def document_context(metadata: dict[str, Any]) -> str:
    """块的文件级上下文："文件标题 > 工作表 > 幻灯片标题"（去掉重复的，没有就是空串）（第 8 章）。"""
    parts: list[str] = []
    for key in CONTEXT_KEYS:
        value = str(metadata.get(key) or "").strip()
        if value and value not in parts:
            parts.append(value)
    return HEADING_SEP.join(parts) if metadata.get(DOC_TITLE_KEY) else ""


def with_document_context(chunk: Document, heading: bool = False) -> str:
    """建索引用的文字：文件级上下文（见 document_context）+ 标题路径（正文开头没有时）+ 块正文（第 8 章）。

    办公/网页文件的块总带标题路径（长的一节切成几块时，后面几块的正文里没有标题行）；
    Markdown/PDF 的块只在 heading=True（KnowledgeBase(heading_context=True)）时加。
    """
    context = document_context(chunk.metadata)
    body = with_heading_context(chunk) if heading or context else chunk.page_content
    return f"{context}\n{body}" if context else body


# ---------- 语义切分（第 8 章） ----------
SEMANTIC_DELIMS = ["。", "！", "？", "；", "\n"]
# chonkie 的 threshold 是分位数：只在最低的这一比例的相似度低谷处切（在两套代理集的 dev 上选的）
DEFAULT_SEMANTIC_THRESHOLD = 0.1


def _chonkie_embeddings(embeddings: Any) -> Any:
    """把任意 LangChain Embeddings 包成 chonkie 的 BaseEmbeddings，按字计长度，离线可用。"""
    import numpy as np
    from chonkie.embeddings import BaseEmbeddings

    class LangChainEmbeddings(BaseEmbeddings):
        def __init__(self) -> None:
            super().__init__()
            self._dim: int | None = None

        def embed(self, text: str) -> Any:
            return np.asarray(embeddings.embed_query(text), dtype=np.float32)

        def embed_batch(self, texts: list[str]) -> list[Any]:
            vecs = [np.asarray(v, dtype=np.float32) for v in embeddings.embed_documents(list(texts))]
            if vecs:
                self._dim = len(vecs[0])
            return vecs

        def similarity(self, u: Any, v: Any) -> Any:
            norm = float(np.linalg.norm(u) * np.linalg.norm(v))
            return np.float32(float(np.dot(u, v)) / norm if norm else 0.0)

        @property
        def dimension(self) -> int:
            if self._dim is None:
                self._dim = len(self.embed("维度"))
            return self._dim

        def get_tokenizer(self) -> Any:
            return "character"

    return LangChainEmbeddings()


def semantic_chunks(docs: list[Document], embeddings: Any, chunk_size: int = DEFAULT_CHUNK_SIZE,
                    threshold: float = DEFAULT_SEMANTIC_THRESHOLD) -> list[Document]:
    """语义切分（chonkie SemanticChunker）：在相邻句子语义变化最大处切开，块不超过 chunk_size 字（第 8 章）。"""
    from chonkie import SemanticChunker

    chunker = SemanticChunker(
        embedding_model=_chonkie_embeddings(embeddings), threshold=threshold, chunk_size=chunk_size,
        similarity_window=2, min_sentences_per_chunk=1, min_characters_per_sentence=12,
        delim=SEMANTIC_DELIMS, include_delim="prev",
    )
    fallback = make_splitter(chunk_size, 0)
    chunks: list[Document] = []
    counters: dict[str, int] = {}
    for doc in docs:
        text, key = doc.page_content, _key_of(doc)
        spans: list[tuple[int, str]] = []
        cursor = 0
        for ch in chunker.chunk(text):
            start = ch.start_index if text[ch.start_index:ch.end_index] == ch.text else text.find(ch.text, cursor)
            cursor = max(start, 0) + len(ch.text)
            if len(ch.text) <= chunk_size:
                spans.append((start, ch.text))
                continue
            offset = 0  # 一句就超长：在块里再用递归切分器切
            for part in fallback.split_text(ch.text):
                offset = ch.text.index(part, offset)
                spans.append((start + offset, part))
                offset += len(part)
        for start, body in spans:
            if not body.strip():
                continue
            lead = len(body) - len(body.lstrip())
            meta = {**doc.metadata, "start": start + lead, "chunk": counters.get(key, 0)}
            counters[key] = meta["chunk"] + 1
            chunks.append(Document(page_content=body.strip(), metadata=meta))
    return chunks
