"""python -m helpers.app：启动个人知识库助手（第 7 章）。"""

import sys

from helpers.app.server import main

sys.exit(main())
