"""基准的命令行入口：python -m helpers.bench retrieval/scale/agent（实现在 helpers.evaluation.bench）（第 6 章）。"""

import sys

from helpers.evaluation import bench as _bench

if __name__ == "__main__":
    sys.exit(_bench.main())
