"""进程内访问离线服务的 HTTP 客户端：OpenAI SDK 照常发请求，但不经过网络（第 2 章）。"""

from __future__ import annotations

import time

import httpx
from starlette.testclient import TestClient

from helpers.offline.app import FAULT_HEADER, get_app
from helpers.providers import OFFLINE_BASE_URL

_ORIGIN = OFFLINE_BASE_URL.rsplit("/v1", 1)[0]


class _InProcessClient(TestClient):
    """TestClient 不计超时；这里把 timeout 故障转换成客户端真实看到的超时异常。"""

    def send(self, request: httpx.Request, **kwargs):  # type: ignore[override]
        spec = request.headers.get(FAULT_HEADER, "")
        if spec.startswith("timeout"):
            read = (request.extensions.get("timeout") or {}).get("read") or 1.0
            time.sleep(min(float(read), 2.0))
            raise httpx.ReadTimeout("模拟超时：离线服务没有在规定时间内响应", request=request)
        return super().send(request, **kwargs)


def http_client() -> httpx.Client:
    """同步客户端：交给 openai.OpenAI(http_client=...) 或 ChatOpenAI 使用（第 4 章）。"""
    return _InProcessClient(get_app(), base_url=_ORIGIN, raise_server_exceptions=False)


def async_http_client() -> httpx.AsyncClient:
    """异步客户端：交给 AsyncOpenAI 或 ChatOpenAI(http_async_client=...)（第 3 章）。"""
    transport = httpx.ASGITransport(app=get_app())
    return httpx.AsyncClient(transport=transport, base_url=_ORIGIN)
