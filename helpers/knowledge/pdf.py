"""按版面取 PDF 文字：双栏页先左栏后右栏，公式里上下错开的碎片（上下标、分式、求和上下限）拼回一行（第 8 章）。

为什么手写：PyMuPDF 的 get_text("text") 按内容流的顺序逐行输出，双栏页会把左右两栏串在一起，LaTeX 式的公式
会碎成一行一个符号；它给出每个字的坐标，这里只用坐标重排：同一视觉行里的片段按横坐标拼起来，
式号 "(9.35)" 就留在它的公式那一行。单栏、没有碎片的页与 get_text("text") 逐字相同。
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from helpers.errors import LoadError
from helpers.text import CJK_CLASS

ROW_OVERLAP = 0.3  # 两段文字竖直方向重叠超过较矮一段高度的这一比例，就算同一视觉行
STACK_OVERLAP = 0.3  # 横向重叠、竖直不重叠：分式的分子分母、求和的上下限，按从上到下拼
MIN_COLUMN_SHARE = 0.25  # 双栏：左右两栏各至少占全页文字的这一比例
MAX_SPANNING_SHARE = 0.15  # 双栏：横跨栏间空白的文字（通栏标题等）不超过这一比例
EQ_NUMBER = re.compile(r"^[(（]\d+(?:[.\-]\d+)*[a-z]?[)）]$")  # 式号：(9.35)、(3-2)、（12）
MAX_ROW_FRAGMENTS = 200  # 一行片段太多（大表格）时不做逐字插入，只按横坐标排
_CJK = re.compile(rf"[{CJK_CLASS}]")


@dataclass
class Frag:
    """一行文字（PyMuPDF 的 line）：外框、字号与每个字 (字, x0, x1)。"""

    x0: float
    y0: float
    x1: float
    y1: float
    size: float
    chars: list[tuple[str, float, float]]

    @property
    def text(self) -> str:
        return "".join(c for c, _, _ in self.chars)

    @cached_property
    def prose(self) -> bool:
        """像正文的一行（至少 4 个汉字）：两行正文上下不重叠，就不会被中间的公式连成一行。"""
        return len(_CJK.findall(self.text)) >= 4

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1e-6)

    @property
    def width(self) -> float:
        return max(self.x1 - self.x0, 1e-6)


def _blocks(page: Any) -> list[list[Frag]]:
    """一页里的文字块（每块若干行），按内容流顺序（与 get_text("text") 相同的取字参数）。"""
    import pymupdf

    raw = page.get_text("rawdict", flags=pymupdf.TEXTFLAGS_TEXT, sort=False)
    out = []
    for block in raw["blocks"]:
        if block.get("type", 0) != 0:
            continue
        frags = []
        for line in block["lines"]:
            chars = [(ch["c"], ch["bbox"][0], ch["bbox"][2]) for span in line["spans"] for ch in span["chars"]]
            if not chars:
                continue
            size = max(span["size"] for span in line["spans"])
            x0, y0, x1, y1 = line["bbox"]
            frags.append(Frag(x0, y0, x1, y1, size, chars))
        if frags:
            out.append(frags)
    return out


def _v_overlap(a: Frag, b: Frag) -> float:
    """竖直方向的重叠占较矮一段高度的比例。"""
    return max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0)) / min(a.height, b.height)


def _rows(frags: list[Frag]) -> list[list[Frag]]:
    """把一栏里的片段分成视觉行：按上沿排序后，与当前行任一片段重叠够多的并入该行。"""
    rows: list[list[Frag]] = []
    for f in sorted(frags, key=lambda f: (f.y0, f.x0)):
        if rows:
            row = rows[-1]
            bottom = max(g.y1 for g in row[-8:])  # 只看最近几段：行内片段按上沿递增加入
            recent = row[-MAX_ROW_FRAGMENTS:]
            if (f.y0 < bottom and any(_v_overlap(f, g) >= ROW_OVERLAP for g in recent)
                    and not (f.prose and any(g.prose and _v_overlap(f, g) < ROW_OVERLAP for g in recent))):
                row.append(f)
                continue
        rows.append([f])
    return rows


def _stream_rows(blocks: list[list[Frag]]) -> list[list[Frag]]:
    """单栏页：按内容流顺序逐段输出；属于公式行的片段（可能分在几个块里）在第一次出现处整行输出。"""
    frags = [f for b in blocks for f in b]
    row_of: dict[int, list[Frag]] = {}
    for row in _rows(frags):
        if len(row) > 1 and _is_formula_row(row):
            for f in row:
                row_of[id(f)] = row
    out: list[list[Frag]] = []
    done: set[int] = set()
    for f in frags:
        row = row_of.get(id(f))
        if row is None:
            out.append([f])
        elif id(row[0]) not in done:
            done.add(id(row[0]))
            out.append(row)
    return out


@dataclass
class Unit:
    """公式行里排序的单位：一段文字（可能是宿主行连同它的上下标）和它的外框。"""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str


def _stacks(units: list[Unit]) -> list[Unit]:
    """横向重叠、竖直错开的单位（分子/分母、上下限）归成一摞，一摞内从上到下，用空格隔开。"""
    groups: list[list[Unit]] = []
    for u in sorted(units, key=lambda u: u.x0):
        for g in groups:
            if any(_overlap(u.x0, u.x1, h.x0, h.x1) >= STACK_OVERLAP
                   and _overlap(u.y0, u.y1, h.y0, h.y1) < ROW_OVERLAP for h in g):
                g.append(u)
                break
        else:
            groups.append([u])
    out = []
    for g in groups:
        g.sort(key=lambda u: u.y0)
        out.append(Unit(min(u.x0 for u in g), min(u.y0 for u in g), max(u.x1 for u in g),
                        max(u.y1 for u in g), " ".join(u.text.strip() for u in g)))
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    """两个区间的重叠占较短一段的比例。"""
    return max(0.0, min(a1, b1) - max(a0, b0)) / max(min(a1 - a0, b1 - b0), 1e-6)


def _with_scripts(host: Frag, scripts: list[Frag]) -> Unit:
    """宿主行逐字排开，上下标按横坐标插进去；上下标占住的那个空格（PyMuPDF 补的）去掉。"""
    items = [((x0 + x1) / 2, c, x0, x1) for c, x0, x1 in host.chars]
    items = [it for it in items if not (it[1] == " " and any(
        _overlap(it[2], it[3], f.x0, f.x1) >= 0.5 for f in scripts))]
    items += [((f.x0 + f.x1) / 2, f.text.strip(), f.x0, f.x1) for f in scripts]
    items.sort(key=lambda it: it[0])
    frags = [host, *scripts]
    return Unit(min(f.x0 for f in frags), min(f.y0 for f in frags), max(f.x1 for f in frags),
                max(f.y1 for f in frags), "".join(it[1] for it in items))


def _is_formula_row(row: list[Frag]) -> bool:
    """这一视觉行是不是公式/带上下标的行：有片段上下错开或字号不同，或者带式号；表格同一行的各格不算。"""
    if any(EQ_NUMBER.match(f.text.strip()) for f in row):
        return True
    first = row[0]
    mid, tall = (first.y0 + first.y1) / 2, max(f.height for f in row)
    return any(abs((f.y0 + f.y1) / 2 - mid) > 0.12 * tall or abs(f.size - first.size) > 0.15 * first.size
               for f in row[1:])


def _row_lines(row: list[Frag]) -> list[str]:
    """一个视觉行输出成几行文字：公式行拼成一行，表格式的整齐行保持 PyMuPDF 原来的一段一行。"""
    if len(row) == 1 or not _is_formula_row(row):
        return [f.text for f in row]
    return [_row_text(row)]


def _row_text(row: list[Frag]) -> str:
    """一个公式行拼成一行文字：上下标插进所属的行，分式/上下限从上到下，各段按横坐标排，间隔大处补空格。"""
    if len(row) > MAX_ROW_FRAGMENTS:
        return " ".join(f.text for f in sorted(row, key=lambda f: f.x0))
    # 上下标：横向中点落在一个更宽的片段里、又与它竖直重叠的小片段，归给重叠最多的那个宿主
    owner: dict[int, int] = {}
    for i, f in enumerate(row):
        mid = (f.x0 + f.x1) / 2
        cands = [(_v_overlap(f, g), j) for j, g in enumerate(row)
                 if j != i and g.width > f.width and g.x0 <= mid <= g.x1 and _v_overlap(f, g) >= ROW_OVERLAP]
        if cands:
            owner[i] = max(cands)[1]
    for i in list(owner):  # 上标的上标：一直追到最外层的宿主
        seen = {i}
        while owner[i] in owner and owner[i] not in seen:
            seen.add(owner[i])
            owner[i] = owner[owner[i]]
    scripts: dict[int, list[Frag]] = {}
    for i, j in owner.items():
        scripts.setdefault(j, []).append(row[i])
    units = [_with_scripts(f, scripts[i]) if i in scripts else Unit(f.x0, f.y0, f.x1, f.y1, f.text)
             for i, f in enumerate(row) if i not in owner]
    units = sorted(_stacks(units), key=lambda u: (u.x0 + u.x1) / 2)
    size = sorted(f.size for f in row)[len(row) // 2]
    parts: list[str] = []
    for k, u in enumerate(units):
        if k and u.x0 - units[k - 1].x1 > 0.15 * size and not parts[-1].endswith(" ") \
                and not u.text.startswith(" "):
            parts.append(" ")
        parts.append(u.text)
    return "".join(parts)


def _gutter(x0: np.ndarray, x1: np.ndarray, mass: np.ndarray) -> float | None:
    """双栏页的栏间空白的横坐标（各行的左右边与字数）；不是双栏页返回 None。只看正文中间 30%–70% 的位置。"""
    total = float(mass.sum())
    if total < 40:
        return None
    left, right = float(x0.min()), float(x1.max())
    xs = left + (right - left) * np.linspace(0.3, 0.7, 31)
    crossing = ((x0[None, :] < xs[:, None]) & (xs[:, None] < x1[None, :])) @ mass
    best = int(np.argmin(crossing))  # 并列时取最左的那个
    x = float(xs[best])
    lmass, rmass = float(mass[x1 <= x].sum()), float(mass[x0 >= x].sum())
    if crossing[best] > MAX_SPANNING_SHARE * total or min(lmass, rmass) < MIN_COLUMN_SHARE * total:
        return None
    return x


def _frag_gutter(frags: list[Frag]) -> float | None:
    return _gutter(np.array([f.x0 for f in frags]), np.array([f.x1 for f in frags]),
                   np.array([len(f.chars) for f in frags], dtype=float))


def _needs_layout(page: Any) -> bool:
    """粗筛（只用 PyMuPDF 的 words，很快）：这一页是双栏，或者有上下错开、竖直重叠的行（公式碎片）。"""
    words = page.get_text("words", sort=False)
    if not words:
        return False
    lines: dict[tuple[int, int], list[float]] = {}
    for x0, y0, x1, y1, text, block, line, _ in words:
        box = lines.get((block, line))
        if box is None:
            lines[(block, line)] = [x0, y0, x1, y1, len(text)]
        else:
            box[0], box[1], box[2], box[3] = min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)
            box[4] += len(text) + 1
        if EQ_NUMBER.match(text) and len(words) > 1:
            return True
    arr = np.array(list(lines.values()), dtype=float)
    if _gutter(arr[:, 0], arr[:, 2], arr[:, 4]) is not None:
        return True
    arr = arr[np.argsort(arr[:, 1], kind="stable")]
    y0, y1 = arr[:, 1], arr[:, 3]
    h = np.maximum(y1 - y0, 1e-6)
    for step in (1, 2, 3):  # 按上沿排好后，和后面几行比
        a, b = slice(0, len(arr) - step), slice(step, None)
        overlap = np.maximum(0.0, np.minimum(y1[a], y1[b]) - np.maximum(y0[a], y0[b])) / np.minimum(h[a], h[b])
        shifted = (np.abs((y0[a] + y1[a]) - (y0[b] + y1[b])) / 2 > 0.12 * np.maximum(h[a], h[b])) | (
            np.abs(h[a] - h[b]) > 0.15 * np.maximum(h[a], h[b]))
        if np.any((overlap >= ROW_OVERLAP) & shifted):
            return True
    return False


def _isolated(rows: list[list[Frag]], gap: float) -> tuple[list[list[Frag]], list[list[Frag]], list[list[Frag]]]:
    """一栏的行拆成 (顶上孤立的行, 正文, 底下孤立的行)：与相邻行隔得远的页眉页脚不算进栏。"""
    top = 0
    while top < len(rows) - 1 and _gap_below(rows[top], rows[top + 1]) > gap:
        top += 1
    bottom = len(rows)
    while bottom - 1 > top and _gap_below(rows[bottom - 2], rows[bottom - 1]) > gap:
        bottom -= 1
    return rows[:top], rows[top:bottom], rows[bottom:]


def _gap_below(upper: list[Frag], lower: list[Frag]) -> float:
    return min(f.y0 for f in lower) - max(f.y1 for f in upper)


def _ordered_rows(blocks: list[list[Frag]]) -> list[list[Frag]]:
    """按阅读顺序排好的视觉行：单栏页保持 PyMuPDF 的内容流顺序；双栏页按通栏行分段，每段先左栏后右栏。"""
    frags = [f for b in blocks for f in b]
    if not frags:
        return []
    x = _frag_gutter(frags)
    if x is None:
        return _stream_rows(blocks)
    spanning = [f for f in frags if f.x0 < x < f.x1]
    out: list[list[Frag]] = []
    cuts = sorted({f.y0 for f in spanning})
    bands: list[list[Frag]] = [[] for _ in range(len(cuts) + 1)]
    for f in frags:
        if f.x0 < x < f.x1:
            continue
        bands[bisect_right(cuts, f.y0)].append(f)
    span_rows = {c: [f for f in spanning if f.y0 == c] for c in cuts}
    heights = sorted(f.height for f in frags)
    gap = 1.5 * heights[len(heights) // 2]
    for n, band in enumerate(bands):
        if n:
            out.extend(_rows(span_rows[cuts[n - 1]]))
        left = _rows([f for f in band if f.x1 <= x])
        right = _rows([f for f in band if f.x0 >= x])
        if not left or not right:
            out.extend(left or right)
            continue
        ltop, lbody, lbottom = _isolated(left, gap)
        rtop, rbody, rbottom = _isolated(right, gap)
        out.extend(sorted(ltop + rtop, key=lambda r: min(f.y0 for f in r)))
        out.extend(lbody + rbody)
        out.extend(sorted(lbottom + rbottom, key=lambda r: min(f.y0 for f in r)))
    return out


def page_text(page: Any) -> str:
    """一页的文字，按阅读顺序：双栏先左后右，公式碎片拼回一行、式号留在行尾（第 8 章）。"""
    if not _needs_layout(page):  # 单栏、没有公式碎片：与 PyMuPDF 的 get_text("text") 完全相同
        return page.get_text("text", sort=False)
    rows = _ordered_rows(_blocks(page))
    return "".join(line + "\n" for r in rows for line in _row_lines(r))


def pdf_pages(path: Path) -> list[str]:
    """用 PyMuPDF 按版面逐页取文字；加密或损坏时抛 LoadError（第 8 章）。"""
    import pymupdf

    try:
        doc = pymupdf.open(path)
    except Exception as exc:  # PyMuPDF 对损坏文件抛多种异常
        raise LoadError(f"PDF 文件损坏或格式不对，无法打开（{type(exc).__name__}）") from None
    with doc:
        if doc.needs_pass:
            raise LoadError("PDF 已加密，需要密码才能读取：请先导出一份不加密的副本")
        try:
            return [page_text(page) for page in doc]
        except Exception as exc:
            raise LoadError(f"PDF 内容损坏，读取页面失败（{type(exc).__name__}）") from None
