"""课程网站与 PDF：把提交的笔记本输出（不重新执行）做成离线可看的静态网站和一本 PDF，并检查链接。

    uv run python -m tools.site build      # → site/index.html、每章一页、course.html（全书一页）
    uv run python -m tools.site pdf        # → site/llm-universe.pdf（Chromium 打印，内嵌中文字体）
    uv run python -m tools.site links      # 检查内部链接是否可达，列出外部链接（从不访问）
    uv run python -m tools.site exercises  # 各章练习一览（--write 写进 docs/teaching.md）

pages：笔记本与文档 → 页面片段；build：拼装网站（样式在 site.css）；pdf：打印全书；
links：链接检查；exercises：练习一览。
"""
