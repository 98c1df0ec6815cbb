"""主流大模型一览表：读取 data/models/llm_models.csv 并画出参数规模随时间的增长（第 1 章）。"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.config import DATA_DIR

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODEL_TABLE: Path = DATA_DIR / "models" / "llm_models.csv"
COLUMNS = ("name", "org", "release", "params_b", "open", "context_k", "notes_zh")
_RELEASE_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_BOOLS = {"true": True, "false": False}


def _positive_or_none(raw: str, where: str, column: str) -> float | None:
    if raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{where}：{column}={raw!r} 不是数字，请填数字或留空（表示未公开）") from None
    if value <= 0:
        raise ValueError(f"{where}：{column}={raw!r} 必须大于 0，未公开请留空")
    return value


def load_model_table(path: Path | None = None) -> list[dict[str, Any]]:
    """读取主流大模型一览表并校验、转换类型：未公开的参数量为 None（第 1 章）。"""
    path = Path(path) if path is not None else MODEL_TABLE
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name} 缺少列 {missing}：表头应包含 {', '.join(COLUMNS)}")
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for lineno, raw in enumerate(reader, start=2):
            name = (raw["name"] or "").strip()
            where = f"{path.name} 第 {lineno} 行（{name or '无名'}）"
            if not name or name in seen:
                raise ValueError(f"{where}：name 为空或重复，每个模型只写一行")
            seen.add(name)
            release = (raw["release"] or "").strip()
            if not _RELEASE_RE.match(release):
                raise ValueError(f"{where}：release={release!r} 应写成 YYYY-MM，例如 2023-03")
            is_open = _BOOLS.get((raw["open"] or "").strip().lower())
            if is_open is None:
                raise ValueError(f"{where}：open={raw['open']!r} 应为 true 或 false")
            rows.append({
                "name": name,
                "org": (raw["org"] or "").strip(),
                "release": release,
                "params_b": _positive_or_none(raw["params_b"] or "", where, "params_b"),
                "open": is_open,
                "context_k": _positive_or_none(raw["context_k"] or "", where, "context_k"),
                "notes_zh": (raw["notes_zh"] or "").strip(),
            })
    return rows


def release_year(release: str) -> float:
    """把 'YYYY-MM' 换成带小数的年份，便于画时间轴（第 1 章）。"""
    year, month = release.split("-")
    return int(year) + (int(month) - 1) / 12


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """把表头与若干行拼成 Markdown 表格文本（第 1 章）。"""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _chinese_count(value_b: float, _pos: Any = None) -> str:
    """把以十亿为单位的参数量写成中文数量级：0.1→1 亿，1000→1 万亿。"""
    yi = value_b * 10
    if yi >= 10_000:
        return f"{yi / 10_000:g} 万亿"
    return f"{yi:g} 亿"


# 标签候选位置（单位：磅）：右、左、上、下、右上、右下、左上、左下，再放远一倍
_OFFSETS = [(6, -3), (-6, -3), (0, 6), (0, -13), (5, 3), (5, -11), (-5, 3), (-5, -11)]
_OFFSETS += [(2 * dx, 2 * dy) for dx, dy in _OFFSETS]


def _place_labels(ax: Any, points: list[tuple[float, float, str]], occupied: list[Any]) -> None:
    """逐个放标签：选第一个不与已有标签、数据点重叠且不出界的位置（贪心）。"""
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    for x, y, text in points:
        chosen = None
        for i, (dx, dy) in enumerate(_OFFSETS):
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            # 离点较远的位置画一条细线连回数据点
            line = {"arrowstyle": "-", "color": "gray", "lw": 0.6} if i >= 4 else None
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                                ha=ha, fontsize=8, arrowprops=line)
            label.update_positions(renderer)
            box = _padded(Text.get_window_extent(label, renderer))  # 只算文字，不算连线
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(o) for o in occupied):
                chosen = box
                break
            label.remove()
        if chosen is None:  # 实在放不下就放在默认位置
            label = ax.annotate(text, (x, y), xytext=_OFFSETS[0], textcoords="offset points", fontsize=8)
            label.update_positions(renderer)
            chosen = Text.get_window_extent(label, renderer)
        occupied.append(chosen)


def plot_model_scale(rows: list[dict[str, Any]]) -> Figure:
    """参数规模随时间（对数坐标）：开源/闭源分色，参数未公开的模型放在下方单独一栏（第 1 章）。"""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, (ax, strip) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True,
                                    gridspec_kw={"height_ratios": [5, 1.3]})
    colors = {True: "tab:orange", False: "tab:blue"}
    kinds = {True: "开源（公开权重）", False: "闭源"}
    known = [r for r in rows if r["params_b"] is not None]
    hidden = [r for r in rows if r["params_b"] is None]
    for is_open in (True, False):
        pts = [r for r in known if r["open"] is is_open]
        ax.scatter([release_year(r["release"]) for r in pts], [r["params_b"] for r in pts],
                   s=36, color=colors[is_open], label=kinds[is_open], zorder=3)
        pts = [r for r in hidden if r["open"] is is_open]
        strip.scatter([release_year(r["release"]) for r in pts], [0] * len(pts), s=36,
                      facecolors="none", edgecolors=colors[is_open], zorder=3)
    ax.set_yscale("log")
    ax.set_ylim(0.05, 3000)
    ax.yaxis.set_major_formatter(FuncFormatter(_chinese_count))
    ax.set_ylabel("参数量（对数坐标）")
    ax.set_title("大模型参数规模的增长（2018—2025，每个系列取首发时最大的版本）")
    ax.grid(True, which="major", alpha=0.3)
    for x, text in [(release_year("2017-06"), "Transformer 论文\n2017-06"),
                    (release_year("2022-11"), "ChatGPT 发布\n2022-11")]:
        for a in (ax, strip):
            a.axvline(x, color="gray", linestyle="--", linewidth=1)
        ax.text(x + 0.05, 2400, text, fontsize=8, color="gray", va="top")
    ax.legend(loc="lower right")
    strip.set_ylim(-1.5, 1.5)
    strip.set_yticks([0])
    strip.set_yticklabels(["参数量\n未公开"])
    strip.set_xlabel("发布时间")
    strip.set_xlim(2017.2, 2025.6)
    strip.set_xticks(range(2018, 2026))
    strip.set_xticklabels([f"{y} 年" for y in range(2018, 2026)])
    fig.tight_layout()
    fig.canvas.draw()
    for axis, group in ((ax, known), (strip, hidden)):
        occupied = [axis.transData.transform((release_year(r["release"]), r["params_b"] or 0))
                    for r in group]
        boxes = [_point_box(x, y) for x, y in occupied]
        pts = [(release_year(r["release"]), r["params_b"] or 0, r["name"]) for r in group]
        _place_labels(axis, pts, boxes)
    return fig


def _padded(box: Any, pad: float = 2.0) -> Any:
    """给标签框四周留几个像素的空隙，避免两个标签紧贴在一起。"""
    from matplotlib.transforms import Bbox

    return Bbox.from_extents(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad)


def _point_box(x: float, y: float, radius: float = 6.0) -> Any:
    """数据点在屏幕坐标中占据的小方框，放标签时避开它。"""
    from matplotlib.transforms import Bbox

    return Bbox([[x - radius, y - radius], [x + radius, y + radius]])
