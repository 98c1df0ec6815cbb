"""离线默认：确定性的教学模型、本地嵌入与 OpenAI 兼容服务（第 2 章）。"""

from helpers.offline.client import async_http_client, http_client
from helpers.offline.embeddings import DIM, MODEL_NAME as EMBEDDING_MODEL, embed_text, embed_texts
from helpers.offline.engine import MODEL_ID as CHAT_MODEL, respond
from helpers.text import count_tokens, split_sentences

__all__ = [
    "CHAT_MODEL", "DIM", "EMBEDDING_MODEL", "async_http_client", "count_tokens", "embed_text",
    "embed_texts", "http_client", "respond", "split_sentences",
]
