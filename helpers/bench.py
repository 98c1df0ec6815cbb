"""检索基准的命令行入口：python -m helpers.bench retrieval/scale（实现在 helpers.evaluation.bench）（第 6 章）。"""

import sys

from helpers.evaluation import bench as _bench

# 过渡：旧导入路径（第 4 章笔记本从这里导入这五个名字；改成从 helpers.evaluation 导入后删掉这三行）
from helpers.evaluation.bench import DEFAULT_RETRIEVER, format_table  # noqa: F401
from helpers.evaluation.dataset import load_queries  # noqa: F401
from helpers.evaluation.metrics import first_hit_rank, metrics_from_ranks as retrieval_metrics  # noqa: F401

if __name__ == "__main__":
    sys.exit(_bench.main())
