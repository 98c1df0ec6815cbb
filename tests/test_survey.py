"""主流大模型一览表（第 1 章）：数据文件可读、字段合法，图能画出来。"""

from __future__ import annotations

import re

import pytest

from helpers.course.survey import MODEL_TABLE, load_model_table, markdown_table, plot_model_scale


def test_every_row_is_valid():
    rows = load_model_table()
    assert 20 <= len(rows) <= 40
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    for r in rows:
        assert re.fullmatch(r"20(1[7-9]|2\d)-(0[1-9]|1[0-2])", r["release"]), r
        assert r["params_b"] is None or r["params_b"] > 0, r
        assert r["context_k"] is None or r["context_k"] > 0, r
        assert isinstance(r["open"], bool) and r["org"] and r["notes_zh"], r


def test_open_and_closed_and_undisclosed_rows_present():
    rows = load_model_table()
    assert any(r["open"] for r in rows) and any(not r["open"] for r in rows)
    undisclosed = {r["name"] for r in rows if r["params_b"] is None}
    assert {"GPT-4", "Claude 3", "文心一言", "讯飞星火"} <= undisclosed
    # 未公开参数量的模型都在备注里写明了
    assert all("未公开" in r["notes_zh"] for r in rows if r["name"] in undisclosed)
    by_name = {r["name"]: r for r in rows}
    assert by_name["GPT-3"]["params_b"] == 175 and not by_name["GPT-3"]["open"]
    assert by_name["LLaMA"]["open"] and "RMSNorm" in by_name["LLaMA"]["notes_zh"]


def test_bad_rows_give_chinese_errors(tmp_path):
    header = MODEL_TABLE.read_text(encoding="utf-8").splitlines()[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\nX,Org,2023/03,7,true,4,备注\n", encoding="utf-8")
    with pytest.raises(ValueError, match="YYYY-MM"):
        load_model_table(bad)
    bad.write_text(header + "\nX,Org,2023-03,-1,true,4,备注\n", encoding="utf-8")
    with pytest.raises(ValueError, match="大于 0"):
        load_model_table(bad)
    bad.write_text(header + "\nX,Org,2023-03,7,yes,4,备注\n", encoding="utf-8")
    with pytest.raises(ValueError, match="true 或 false"):
        load_model_table(bad)


def test_markdown_table_escapes_pipes():
    text = markdown_table(["a", "b"], [["x|y", 1]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]


def test_plot_labels_every_model():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers import course

    course.use_cjk_font()

    rows = load_model_table()
    fig = plot_model_scale(rows)
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {r["name"] for r in rows} <= labels
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)
