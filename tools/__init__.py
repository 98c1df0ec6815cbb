"""仓库工具（不属于课程代码库、不进 wheel）：课程网站与 PDF、笔记本重跑、章节标注检查。

在仓库根目录运行：uv run python -m tools.site build|pdf|links、uv run python -m tools.notebooks [C2]。
"""
