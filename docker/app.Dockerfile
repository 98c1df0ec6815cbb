# syntax=docker/dockerfile:1
# 知识库助手镜像（第 7 章）：FastAPI 后端 + Gradio 界面，默认离线模型、嵌入式 Chroma，不需要密钥。
#   构建：docker build -f docker/app.Dockerfile -t llm-universe-app .
#   运行：docker run --rm -p 7860:7860 -e APP_TOKEN=换成你的令牌 \
#           -v assistant-db:/app/data/vector_db -v assistant-uploads:/app/data/uploads llm-universe-app
#   浏览器打开 http://localhost:7860/ ，接口文档在 /docs
# 用真实模型：加 --env-file .env（密钥只在运行时传给服务器，不进镜像，也不会发到浏览器）。
# 多人共享一个知识库：另起 chroma run 容器，再加 -e CHROMA_HOST=chroma -e CHROMA_PORT=8000。
FROM python:3.11-slim-bookworm

ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:${PATH}"

RUN pip install --no-cache-dir "uv==0.13.*" \
    && useradd --create-home --uid 1000 assistant

WORKDIR /app
RUN chown 1000:1000 /app
USER 1000

# 先只装依赖（不含开发依赖；有 uv.lock 就能缓存这一层），再拷贝代码与课程文档
COPY --chown=1000:1000 pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project

COPY --chown=1000:1000 helpers ./helpers
COPY --chown=1000:1000 data/knowledge_db ./data/knowledge_db
# 向量库与上传区各挂一个卷，重启、升级镜像都不丢（目录先建好，属主是运行服务的用户）
RUN uv sync --locked --no-dev \
    && mkdir -p data/vector_db data/uploads
VOLUME ["/app/data/vector_db", "/app/data/uploads"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/health', timeout=4)"]
CMD ["python", "-m", "helpers.app", "--host", "0.0.0.0", "--port", "7860"]
