"""过渡：旧导入路径。中文文本工具已搬到 helpers.text（第 2 章）。"""

from helpers.text import count_tokens, normalize, split_sentences  # noqa: F401  # 过渡：旧导入路径
