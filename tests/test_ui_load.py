"""经界面压测（python -m helpers.app.load --ui）：走浏览器同一条路（Gradio 的排队与流式输出），几个对话同时在回答。"""

from __future__ import annotations

import pytest

from helpers.app import create_app, ui
from helpers.app.load import main, ui_level
from tests.support.corpus import PLACES, write_corpus
from tests.support.factories import make_assistant, synced_kb
from tests.support.servers import serve_in_thread


def test_ui_mode_refuses_what_the_ui_cannot_do(capsys):
    for argv in (["--ui", "--stream"], ["--ui", "--workers", "2"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "界面只能单进程" in capsys.readouterr().err


@pytest.mark.slow  # 真起一个带界面的服务（后台线程里），压两次
@pytest.mark.parametrize("limit", [1, 16])
def test_the_ui_answers_several_chats_at_once(tmp_path, monkeypatch, limit):
    # Gradio 的默认 concurrency_limit 是 1：界面一次只答一个；课程设成 UI_CHAT_CONCURRENCY=16
    monkeypatch.setattr(ui, "UI_CHAT_CONCURRENCY", limit)
    corpus = write_corpus(tmp_path / "docs", PLACES)
    assistant = make_assistant(synced_kb(corpus, tmp_path / "db"), corpus, tmp_path / "up")
    with serve_in_thread(create_app(assistant, ui=True)) as base:
        result = ui_level(base, clients=6, requests=12)
    assert result.errors == 0 and result.requests == 12 and result.p95_ms > 0
    assert "服务端同一时刻最多在答" in result.line()
    if limit == 1:  # 排着队一个个答
        assert assistant.chats.peak == 1 and result.answering_peak == 1
    else:  # 几个对话同时在答（6 个客户端同时提问，本机量到 4–5 个）
        assert assistant.chats.peak >= 2 and result.answering_peak >= 1
