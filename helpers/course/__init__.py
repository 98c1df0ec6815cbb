"""课程本身的零件：笔记本的统一开头、章末练习的自检（check_exercise）与第 1 章的大模型一览表（survey）。"""

from helpers.course.exercises import (
    Status,
    check as check_exercise,
    evaluate as evaluate_exercise,
    is_unanswered,
)
from helpers.course.notebook import (
    CJK_FONT_RANGES,
    CORE_PACKAGES,
    cjk_font_path,
    describe_provider,
    package_versions,
    setup,
    use_cjk_font,
)

__all__ = [
    "CJK_FONT_RANGES", "CORE_PACKAGES", "Status", "check_exercise", "cjk_font_path", "describe_provider",
    "evaluate_exercise", "is_unanswered", "package_versions", "setup", "use_cjk_font",
]
