"""知识库助手的前端：Gradio 界面（流式对话、引用出处、上传文档），挂在同一个 FastAPI 上（第 7 章）。"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.routing import Mount

from helpers.app.service import Assistant, document_url
from helpers.app.validation import ALLOWED_SUFFIXES, token_matches
from helpers.course import CJK_FONT_RANGES
from helpers.errors import AppError
from helpers.rag import RagAnswer

TITLE = "个人知识库助手"
FONT_URL = "/assets/cjk-font.ttf"
UI_CHAT_CONCURRENCY = 16  # 界面里同时回答几个问题（每个占一个线程；REST 接口不受这个限制）
# 没装中文字体的机器（如精简的 Linux）也能显示中文：只在缺字时才下载随 PyMuPDF 分发的字体
_CSS = f"""
@font-face {{font-family: "LLMUniverseCJK"; src: url("{FONT_URL}") format("truetype");
  unicode-range: {CJK_FONT_RANGES};}}
:root, .gradio-container {{
  --font: "Source Sans Pro", ui-sans-serif, system-ui, "LLMUniverseCJK", sans-serif;
  --font-mono: "IBM Plex Mono", ui-monospace, monospace, "LLMUniverseCJK";
}}
#status {{font-size: 0.9em; opacity: 0.8}}
"""


def format_answer(answer: RagAnswer) -> str:
    """回答正文 + "引用"列表：每条出处是一个能点开原文的链接，悬停可见片段（第 7 章）。"""
    if not answer.sources:
        return answer.answer
    lines = [answer.answer, "", "**引用**", ""]
    for s in answer.sources:
        snippet = s.snippet.replace('"', "'").replace("\n", " ")[:80]
        lines.append(f"{s.n}. [{s.label()}]({document_url(s.source)} \"{snippet}\")")
    return "\n".join(lines)


def _text(content: Any) -> str:
    """Gradio 消息的 content 可能是字符串或内容块列表，取出文字。"""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") if isinstance(c, dict) else str(c) for c in content)
    return str(content)


def _documents_table(assistant: Assistant) -> list[list[Any]]:
    return [[d["name"], d["chunks"], "是" if d["uploaded"] else ""] for d in assistant.documents()]


def create_ui(assistant: Assistant) -> gr.Blocks:
    """搭建界面：对话页（流式回答、清空对话）与文档页（上传、清单、删除）（第 7 章）。"""

    async def respond(message: str, history: list[dict], session_id: str) -> AsyncIterator[tuple[str, list]]:
        history = [{"role": m["role"], "content": _text(m["content"])} for m in history or []]
        try:
            pieces = assistant.astream(message, session_id)
        except AppError as exc:  # 空问题、过长：提示一下，不进对话记录
            gr.Warning(exc.message)
            yield message, history
            return
        history += [{"role": "user", "content": message.strip()}, {"role": "assistant", "content": ""}]
        yield "", history
        text = ""
        try:
            async for piece in pieces:
                if isinstance(piece, RagAnswer):
                    history[-1]["content"] = format_answer(piece)
                else:
                    text += piece
                    history[-1]["content"] = text
                yield "", history
        except Exception as exc:  # 模型出错：显示原因，之前的对话都还在
            _, detail = assistant.explain_failure(exc)
            history[-1]["content"] = (text + "\n\n" if text else "") + f"⚠️ {detail}"
            yield "", history

    def clear(session_id: str) -> tuple[list, str]:
        assistant.clear_session(session_id)
        return [], uuid.uuid4().hex

    def upload(paths: list[str] | None) -> tuple[str, list, Any, str]:
        lines = []
        for p in paths or []:
            path = Path(p)
            try:
                data = path.read_bytes()
            finally:  # Gradio 在自己的临时目录里留了一份：读完就删，文档只留在上传区（删掉时不留副本）
                path.unlink(missing_ok=True)
            try:
                result = assistant.upload(path.name, data)
                lines += [f"- ✔ {line}" for line in result.report]
                lines += [f"- ⚠ {line}" for line in result.warnings]
            except AppError as exc:
                lines.append(f"- ✘ {exc.message}")
        return ("\n".join(lines) or "没有选择文件", _documents_table(assistant),
                gr.update(choices=assistant.uploaded_names(), value=None), assistant.provider_line())

    def delete(name: str | None) -> tuple[str, list, Any, str]:
        if not name:
            message = "请先选择要删除的文档"
        else:
            try:
                assistant.delete(name)
                message = f"已删除 {name}"
            except AppError as exc:
                message = f"❌ {exc.message}"
        return (message, _documents_table(assistant),
                gr.update(choices=assistant.uploaded_names(), value=None), assistant.provider_line())

    def refresh() -> tuple[str, list, Any]:
        return (assistant.provider_line(), _documents_table(assistant),
                gr.update(choices=assistant.uploaded_names(), value=None))

    with gr.Blocks(title=TITLE) as demo:
        session = gr.State(lambda: uuid.uuid4().hex)  # 每个浏览器标签页一个会话
        gr.Markdown(f"# {TITLE}\n基于检索增强生成（RAG）：回答只依据知识库，并标出引用的出处。")
        status = gr.Markdown(assistant.provider_line(), elem_id="status")
        with gr.Tab("对话"):
            chatbot = gr.Chatbot(label="对话", height=460, elem_id="chatbot", buttons=["copy", "copy_all"],
                                 placeholder="问一个关于知识库的问题，例如：什么是检索增强生成？")
            with gr.Row():
                box = gr.Textbox(placeholder="输入问题，按回车发送", show_label=False, scale=6,
                                 elem_id="question", max_length=assistant.config.max_question_chars)
                send = gr.Button("发送", variant="primary", scale=1, elem_id="send")
            clear_btn = gr.Button("清空对话", elem_id="clear")
        with gr.Tab("文档"):
            files = gr.File(label="上传文档（PDF、Word、PPT、Excel/CSV、网页、字幕、Markdown、TXT），上传后自动入库",
                            file_count="multiple", file_types=list(ALLOWED_SUFFIXES),
                            elem_id="upload")
            report = gr.Markdown(elem_id="report")
            table = gr.Dataframe(_documents_table(assistant), headers=["文档", "块数", "上传的"],
                                 label="知识库中的文档", interactive=False, elem_id="documents")
            with gr.Row():
                doomed = gr.Dropdown(assistant.uploaded_names(), label="选择要删除的上传文档",
                                     scale=4, elem_id="delete-choice")
                delete_btn = gr.Button("删除", variant="stop", scale=1, elem_id="delete")

        # Gradio 默认每个事件同时只处理 1 个请求（别的用户排队）；问答在线程里跑，放开到 UI_CHAT_CONCURRENCY 个
        box.submit(respond, [box, chatbot, session], [box, chatbot], concurrency_limit=UI_CHAT_CONCURRENCY)
        send.click(respond, [box, chatbot, session], [box, chatbot], concurrency_limit=UI_CHAT_CONCURRENCY)
        clear_btn.click(clear, [session], [chatbot, session])
        chatbot.clear(clear, [session], [chatbot, session])  # 对话框右上角的垃圾桶也清空会话
        files.upload(upload, [files], [report, table, doomed, status])
        delete_btn.click(delete, [doomed], [report, table, doomed, status])
        demo.load(refresh, None, [status, table, doomed])
    return demo


def mount_ui(app: Any, assistant: Assistant, path: str = "/") -> Any:
    """把 Gradio 界面挂到 FastAPI 应用上；设置了令牌时界面要求登录（密码即令牌）（第 7 章）。"""
    from fastapi.responses import FileResponse

    from helpers.course import cjk_font_path

    @app.get(FONT_URL, include_in_schema=False)
    def cjk_font() -> FileResponse:
        return FileResponse(cjk_font_path(), media_type="font/ttf",
                            headers={"Cache-Control": "public, max-age=86400"})

    token = assistant.config.token
    auth = (lambda _user, password: token_matches(password, token)) if token else None
    mounted = gr.mount_gradio_app(
        app, create_ui(assistant), path=path, auth=auth,
        auth_message="请输入访问令牌（用户名随意，密码填 APP_TOKEN）" if token else None,
        max_file_size=int(assistant.config.max_upload_bytes), css=_CSS, footer_links=[],
        head=f'<link rel="preload" href="{FONT_URL}" as="font" type="font/ttf" crossorigin>',
    )
    if token:  # 回答里的引用链接（/api/documents/…）凭界面登录的会话 cookie 也能打开
        ui_app = next(r.app for r in app.routes if isinstance(r, Mount) and isinstance(r.app, gr.routes.App))
        app.state.ui_logged_in = lambda request: _logged_in(ui_app, request)
    return mounted


def _logged_in(ui_app: Any, request: Any) -> bool:
    """这个请求带着 Gradio 登录后发的会话 cookie（与 Gradio 自己的 get_current_user 同一规则）。"""
    cookie = (request.cookies.get(f"access-token-{ui_app.cookie_id}")
              or request.cookies.get(f"access-token-unsecure-{ui_app.cookie_id}"))
    return cookie is not None and ui_app.tokens.get(cookie) is not None
