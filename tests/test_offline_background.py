"""serve_in_background：离线服务真的在本机端口上应答 OpenAI 格式的请求，离开 with 后端口关闭。"""

from __future__ import annotations

import httpx
import openai
import pytest
from zhipuai import ZhipuAI

from helpers.offline.background import serve_in_background


def test_serves_models_chat_and_embeddings_then_stops():
    with serve_in_background() as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        ids = [m["id"] for m in httpx.get(base_url + "/models", timeout=5).json()["data"]]
        assert "offline-extractive" in ids
        client = openai.OpenAI(api_key="offline", base_url=base_url, max_retries=0)
        reply = client.chat.completions.create(
            model="offline-extractive",
            messages=[{"role": "user",
                       "content": "<context>\n[1] Chroma 是向量数据库。\n</context>\n问题：Chroma 是什么？"}],
        )
        assert "[1]" in reply.choices[0].message.content
        client.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(base_url + "/models", timeout=2)


def test_the_zhipuai_sdk_reaches_it_through_base_url():
    with serve_in_background() as base_url:
        zhipu = ZhipuAI(api_key="offline", base_url=base_url)
        emb = zhipu.embeddings.create(model="embedding-3", input=["向量数据库"])
        assert len(emb.data[0].embedding) > 0


def test_two_servers_get_different_ports():
    with serve_in_background() as a, serve_in_background() as b:
        assert a != b
        assert httpx.get(a + "/models", timeout=5).status_code == httpx.get(b + "/models", timeout=5).status_code == 200
