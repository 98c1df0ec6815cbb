"""搭建知识库：加载 → 清洗 → 切分 → 嵌入 → Chroma，以及向量、BM25 与混合检索（第 4 章）。"""

import logging as _logging

from helpers.knowledge.clean import (
    clean_pdf_pages,
    clean_text,
    is_page_number,
    join_broken_lines,
    join_formula_fragments,
    normalize_whitespace,
    repeated_edge_lines,
    strip_headers_footers,
)
from helpers.knowledge.collection import collection_name_for, embedding_id, make_client
from helpers.knowledge.formats import STRUCTURED_SUFFIXES, load_structured, row_text
from helpers.knowledge.ingest import FileStatus, IngestReport, IngestStatus, chunk_ids
from helpers.knowledge.load import (
    DEFAULT_MAX_FILE_MB,
    SUPPORTED,
    LoadError,
    decode_text,
    discover,
    load_directory,
    load_file,
)
from helpers.knowledge.pdf import pdf_pages
from helpers.knowledge.rerank import OfflineReranker, ProviderReranker, get_reranker
from helpers.knowledge.search import BM25Index, matches_filter, rrf_fuse, weighted_fuse
from helpers.knowledge.split import (
    CHINESE_SEPARATORS,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    make_splitter,
    semantic_chunks,
    split_by_headings,
    split_documents,
    with_heading_context,
)
from helpers.knowledge.store import (
    DEFAULT_RETRIEVER,
    RETRIEVER_KINDS,
    KnowledgeBase,
    KnowledgeRetriever,
    course_knowledge_base,
)
from helpers.text import char_tokens, tokenize, word_tokens  # BM25 的两种分词（第 4 章讲）

try:  # jieba 默认往 stderr 打印加载日志：课程里用到它时保持安静
    import jieba as _jieba

    _jieba.setLogLevel(_logging.WARNING)
except ImportError:  # pragma: no cover
    pass

__all__ = [
    "BM25Index", "CHINESE_SEPARATORS", "DEFAULT_CHUNK_OVERLAP", "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_FILE_MB", "DEFAULT_RETRIEVER", "FileStatus", "IngestReport", "IngestStatus", "KnowledgeBase",
    "KnowledgeRetriever",
    "LoadError", "RETRIEVER_KINDS", "SUPPORTED", "chunk_ids", "clean_pdf_pages", "clean_text",
    "collection_name_for", "course_knowledge_base", "decode_text", "discover", "embedding_id",
    "is_page_number", "join_broken_lines", "load_directory", "load_file", "make_client",
    "make_splitter", "matches_filter", "normalize_whitespace", "repeated_edge_lines", "rrf_fuse",
    "split_documents", "strip_headers_footers", "tokenize", "char_tokens", "weighted_fuse",
    "word_tokens",
    # 第 8 章：更多格式、PDF 版面、结构感知切块、重排序
    "OfflineReranker", "ProviderReranker", "STRUCTURED_SUFFIXES", "get_reranker", "join_formula_fragments",
    "load_structured", "pdf_pages", "row_text", "semantic_chunks", "split_by_headings", "with_heading_context",
]
