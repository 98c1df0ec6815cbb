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
# 第 14 号议题起新增的三列：MoE 的激活参数、出处网址、核对日期（可留空）
OPTIONAL_COLUMNS = ("active_b", "source", "checked")
_RELEASE_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DATE_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
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
    # 可选列 active_b（MoE 每个 token 激活的参数）、source（出处）、checked（核对日期）缺列或留空时为 None；
    # 任何一格不合法都报出文件名、行号、模型名和列名。
    path = Path(path) if path is not None else MODEL_TABLE
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name} 缺少列 {missing}：表头应包含 {', '.join(COLUMNS)}")
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        width = len(reader.fieldnames or [])
        for raw in reader:
            lineno = reader.line_num  # 物理行号：备注里的换行也算进去
            name = (raw.get("name") or "").strip()
            where = f"{path.name} 第 {lineno} 行（{name or '无名'}）"
            _check_width(raw, where, width)
            if not name or name in seen:
                raise ValueError(f"{where}：name 为空或重复，每个模型只写一行")
            seen.add(name)
            release = (raw["release"] or "").strip()
            if not _RELEASE_RE.match(release):
                raise ValueError(f"{where}：release={release!r} 应写成 YYYY-MM，例如 2023-03")
            is_open = _BOOLS.get((raw["open"] or "").strip().lower())
            if is_open is None:
                raise ValueError(f"{where}：open={raw['open']!r} 应为 true 或 false")
            params_b = _positive_or_none(raw["params_b"] or "", where, "params_b")
            rows.append({
                "name": name,
                "org": (raw["org"] or "").strip(),
                "release": release,
                "params_b": params_b,
                "open": is_open,
                "context_k": _positive_or_none(raw["context_k"] or "", where, "context_k"),
                "notes_zh": (raw["notes_zh"] or "").strip(),
                **_optional_fields(raw, where, params_b),
            })
    return rows


def _check_width(raw: dict[str, Any], where: str, width: int) -> None:
    """字段比表头多、或缺了必填列时，指出是哪一行、哪一列（多半是备注里的英文逗号没加引号）。"""
    extra = raw.get(None)
    if extra:
        raise ValueError(f"{where}：比表头多出 {len(extra)} 个字段 {extra!r}，"
                         f"表头只有 {width} 列；备注里有英文逗号时请给整格加双引号")
    missing = [c for c, v in raw.items() if v is None and c in COLUMNS]  # 行尾的可选列可以省略
    if missing:
        raise ValueError(f"{where}：缺少 {missing[0]} 列的值（这一行的字段比表头的 {width} 列少）")


def _optional_fields(raw: dict[str, Any], where: str, params_b: float | None) -> dict[str, Any]:
    """校验并转换可选列 active_b、source、checked；表里没有这些列时都给 None。"""
    active = _positive_or_none(raw.get("active_b") or "", where, "active_b")
    if active is not None and (params_b is None or active > params_b):
        raise ValueError(f"{where}：active_b={active:g} 须小于等于 params_b（总参数），"
                         "且只有公开了总参数的 MoE 模型才填")
    source = (raw.get("source") or "").strip() or None
    if source is not None and not source.startswith(("https://", "http://")):
        raise ValueError(f"{where}：source={source!r} 应是以 https:// 开头的网址")
    checked = (raw.get("checked") or "").strip() or None
    if checked is not None and not _DATE_RE.match(checked):
        raise ValueError(f"{where}：checked={checked!r} 应写成 YYYY-MM-DD，例如 2026-12-01")
    return {"active_b": active, "source": source, "checked": checked}


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


# 标签候选位置（单位：磅）：先试紧挨着数据点的右、左、上、下、右上、右下、左上、左下，
# 再按离点由近到远试一张网格（这些位置会画一条细线连回数据点）
_NEAR = [(6, -3), (-6, -3), (0, 6), (0, -13), (5, 3), (5, -11), (-5, 3), (-5, -11)]
_GRID = sorted(((dx, dy) for dx in range(-48, 49, 12) for dy in range(-66, 67, 11)
                if abs(dx) > 12 or abs(dy) > 11), key=lambda d: (d[0] ** 2 + d[1] ** 2, -d[0]))
_OFFSETS = _NEAR + _GRID


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
            line = {"arrowstyle": "-", "color": "gray", "lw": 0.6} if i >= len(_NEAR) else None
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
    """参数规模随时间（对数坐标）：开源/闭源分色，MoE 另标激活参数，参数未公开的放在下方一栏（第 1 章）。"""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, (ax, strip) = plt.subplots(2, 1, figsize=(12, 8.5), sharex=True,
                                    gridspec_kw={"height_ratios": [5, 1.8]})
    colors = {True: "tab:orange", False: "tab:blue"}
    kinds = {True: "开源（公开权重）", False: "闭源"}
    known = [r for r in rows if r["params_b"] is not None]
    hidden = [r for r in rows if r["params_b"] is None]
    moe = [r for r in known if r.get("active_b") is not None]
    for is_open in (True, False):
        pts = [r for r in known if r["open"] is is_open]
        ax.scatter([release_year(r["release"]) for r in pts], [r["params_b"] for r in pts],
                   s=36, color=colors[is_open], label=kinds[is_open], zorder=3)
        pts = [r for r in hidden if r["open"] is is_open]
        strip.scatter([release_year(r["release"]) for r in pts], [0] * len(pts), s=36,
                      facecolors="none", edgecolors=colors[is_open], zorder=3)
    if moe:  # MoE：总参数（实心点）与每个 token 激活的参数（空心三角）用虚线连起来
        xs = [release_year(r["release"]) for r in moe]
        ax.vlines(xs, [r["active_b"] for r in moe], [r["params_b"] for r in moe],
                  colors="gray", linestyles=":", linewidth=0.9, zorder=2)
        ax.scatter(xs, [r["active_b"] for r in moe], s=22, marker="v", facecolors="none",
                   edgecolors="gray", zorder=3, label="MoE 每个 token 激活的参数")
    first = min(int(r["release"][:4]) for r in rows)
    last = max(int(r["release"][:4]) for r in rows)
    top = max([r["params_b"] for r in known] + [1000])
    ax.set_yscale("log")
    ax.set_ylim(0.05, top * 5)
    ax.yaxis.set_major_formatter(FuncFormatter(_chinese_count))
    ax.set_ylabel("参数量（对数坐标）")
    ax.set_title(f"大模型参数规模的增长（{first}—{last}，多数系列取首发时最大的版本）")
    ax.grid(True, which="major", alpha=0.3)
    for x, text in [(release_year("2017-06"), "Transformer 论文\n2017-06"),
                    (release_year("2022-11"), "ChatGPT 发布\n2022-11")]:
        for a in (ax, strip):
            a.axvline(x, color="gray", linestyle="--", linewidth=1)
        ax.text(x + 0.05, 0.98, text, fontsize=8, color="gray", va="top",
                transform=ax.get_xaxis_transform())
    ax.legend(loc="lower right")
    strip.set_ylim(-1.5, 1.5)
    strip.set_yticks([0])
    strip.set_yticklabels(["参数量\n未公开"])
    strip.set_xlabel("发布时间")
    strip.set_xlim(min(2017.2, first - 0.8), last + 1.0)
    strip.set_xticks(range(first, last + 1))
    strip.set_xticklabels([f"{y} 年" for y in range(first, last + 1)])
    fig.tight_layout()
    fig.canvas.draw()
    for axis, group in ((ax, known), (strip, hidden)):
        occupied = [axis.transData.transform((release_year(r["release"]), r["params_b"] or 0))
                    for r in group]
        occupied += [axis.transData.transform((release_year(r["release"]), r["active_b"]))
                     for r in group if r.get("active_b") is not None]
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
