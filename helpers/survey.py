"""过渡：旧导入路径。大模型一览表已搬到 helpers.course.survey（第 1 章）。"""

from helpers.course.survey import (  # noqa: F401  # 过渡：旧导入路径
    COLUMNS,
    MODEL_TABLE,
    load_model_table,
    markdown_table,
    plot_model_scale,
    release_year,
)
