"""主流大模型一览表（第 1 章）：数据文件可读、字段合法，图能画出来。"""

from __future__ import annotations

import re

import pytest

from helpers.course.survey import MODEL_TABLE, load_model_table, markdown_table, plot_model_scale


def test_every_row_is_valid():
    rows = load_model_table()
    assert 40 <= len(rows) <= 70
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    for r in rows:
        assert re.fullmatch(r"20(1[7-9]|2\d)-(0[1-9]|1[0-2])", r["release"]), r
        assert r["params_b"] is None or r["params_b"] > 0, r
        assert r["context_k"] is None or r["context_k"] > 0, r
        assert isinstance(r["open"], bool) and r["org"] and r["notes_zh"], r
        if r["release"] >= "2025-01":  # 第 14 号议题起新增的行都带出处和核对日期
            assert r["source"] and r["source"].startswith("https://"), r
            assert r["checked"] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["checked"]), r
        if r["active_b"] is not None:  # MoE：激活参数不超过总参数
            assert r["params_b"] is not None and r["active_b"] <= r["params_b"], r


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
    # OpenAI 也有公开参数量的开放权重模型；MoE 的总参数与激活参数都在表里
    oss = by_name["gpt-oss-120b"]
    assert oss["org"] == "OpenAI" and oss["open"] and (oss["params_b"], oss["active_b"]) == (117, 5.1)
    assert (by_name["Kimi K2"]["params_b"], by_name["Kimi K2"]["active_b"]) == (1000, 32)
    assert by_name["ERNIE 4.5"]["open"] and not by_name["文心一言"]["open"]


def test_old_seven_column_table_still_loads(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("name,org,release,params_b,open,context_k,notes_zh\nX,Org,2023-03,7,true,4,备注\n",
                   encoding="utf-8")
    (row,) = load_model_table(old)
    assert (row["active_b"], row["source"], row["checked"]) == (None, None, None)


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


@pytest.mark.parametrize(("line", "message"), [
    # 备注里的英文逗号没加引号：多出一个字段
    ("X,Org,2023-03,7,true,4,备注,还有半句,,,", r"第 3 行（X）：比表头多出 1 个字段"),
    ("X,Org,2023-03,7,true,4", r"第 3 行（X）：缺少 notes_zh 列"),
    ("X,Org,2023-03,7,true,4,备注,70,,", r"第 3 行（X）：active_b=70 须小于等于 params_b"),
    ("X,Org,2023-03,,false,4,未公开,7,,", r"第 3 行（X）：active_b=7 须小于等于 params_b"),
    ("X,Org,2023-03,7,true,4,备注,,example.com,", r"第 3 行（X）：source='example.com'"),
    ("X,Org,2023-03,7,true,4,备注,,https://example.com,2026/12/01", r"第 3 行（X）：checked='2026/12/01'"),
    ("X,Org,2023-03,7,true,4,备注,abc,,", r"第 3 行（X）：active_b='abc' 不是数字"),
])
def test_malformed_row_names_row_and_column(tmp_path, line, message):
    lines = MODEL_TABLE.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1], line]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
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
    first, last = rows[0]["release"][:4], max(r["release"] for r in rows)[:4]
    assert f"{first}—{last}" in fig.axes[0].get_title()  # 标题里的年份由数据算出
    assert fig.axes[1].get_xticklabels()[-1].get_text() == f"{last} 年"
    plt.close(fig)

    # 换一张只有 2019—2021 的小表，标题和刻度跟着变
    few = [r for r in rows if r["name"] in {"GPT-2", "GPT-3", "BERT"}]
    few = [dict(r, release=f"{2019 + i}-0{i + 1}") for i, r in enumerate(few)]
    fig = plot_model_scale(few)
    assert "2019—2021" in fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["2019 年", "2020 年", "2021 年"]
    plt.close(fig)
