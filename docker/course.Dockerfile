# syntax=docker/dockerfile:1
# 课程镜像：JupyterLab 打开全部笔记本，不需要任何密钥、不需要联网（离线默认）。
#   构建：docker build -f docker/course.Dockerfile -t llm-universe-course .
#   运行：docker run --rm -p 8888:8888 -e JUPYTER_TOKEN=换成你的口令 llm-universe-course
#   浏览器打开 http://localhost:8888/lab?token=换成你的口令
# 用真实模型：加 --env-file .env（密钥只在运行时传入，不进镜像）。
FROM python:3.11-slim-bookworm

ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONUNBUFFERED=1 \
    PATH="/course/.venv/bin:${PATH}"

RUN pip install --no-cache-dir "uv==0.13.*" \
    && useradd --create-home --uid 1000 learner

WORKDIR /course
RUN chown 1000:1000 /course
USER 1000

# 先只装依赖（有 uv.lock 就能缓存这一层），再拷贝课程本身
COPY --chown=1000:1000 pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project

COPY --chown=1000:1000 . .
RUN uv sync --locked

EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/course"]
