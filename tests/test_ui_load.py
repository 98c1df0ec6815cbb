"""经界面压测（python -m helpers.app.load --ui）：走浏览器同一条路（Gradio 的排队与流式输出），几个对话同时在回答。"""

from __future__ import annotations

import pytest

from helpers.app.load import main, peak_overlap, ui_level
from helpers.app.scenarios import isolated_env
from tests.support.corpus import PLACES, write_corpus
from tests.support.servers import serve_in_subprocess


def test_peak_overlap_counts_answers_in_flight_at_once():
    assert peak_overlap([]) == 0
    assert peak_overlap([(0, 2), (1, 3), (2.5, 4)]) == 2
    assert peak_overlap([(0, 1), (1, 2), (2, 3)]) == 1  # 一个结束、下一个才开始：一次只答一个
    assert peak_overlap([(0, 5)] * 4) == 4


def test_ui_mode_refuses_what_the_ui_cannot_do(capsys):
    for argv in (["--ui", "--stream"], ["--ui", "--workers", "2"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "界面只能单进程" in capsys.readouterr().err


@pytest.mark.slow  # 真起一个带界面的服务
def test_the_ui_answers_several_chats_at_once(tmp_path):
    corpus = write_corpus(tmp_path / "docs", PLACES)
    args = ["--collection", "ui", "--uploads-dir", str(tmp_path / "up"), "--corpus-dir", str(corpus)]
    with serve_in_subprocess(*args, env=isolated_env(tmp_path / "db"), timeout=120) as base:
        result = ui_level(base, clients=6, requests=12)
    assert result.errors == 0 and result.requests == 12 and result.p95_ms > 0
    assert result.answering_peak >= 2  # 界面一次只答一个时（Gradio 默认的 concurrency_limit=1）这里是 1
    assert "同一时刻最多" in result.line()
