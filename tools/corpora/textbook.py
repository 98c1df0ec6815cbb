"""把 data/bench/textbook/src/chNN.json 排成公式密集的教材式 PDF 与页级问题集（第 8 章的检索代理评测集）。

用法（仓库根目录）：uv run python -m tools.corpora.textbook
输出 data/bench/textbook/textbook.pdf 与 queries.jsonl。排版故意带上真实 LaTeX 教材 PDF 的抽取瑕疵：
公式逐符号绘制（上下标基线偏移、分式上下堆叠，抽取时碎成单字符行）、式号右对齐、部分页双栏
（按行交错写入内容流，朴素抽取会把两栏串行）、页眉章名与页脚页码、正文硬换行。同一份 JSON 生成
的文字抽取逐字相同（固定元数据日期、不写随机文档 ID）。
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "data" / "bench" / "textbook"
SRC = BENCH / "src"
PDF_NAME = "textbook.pdf"
BOOK_TITLE = "机器学习：推导与习题（自编讲义）"
FIXED_DATE = "D:20260101000000+08'00'"

PAGE_W, PAGE_H = 595.0, 842.0
MARGIN_X, TOP, BOTTOM = 64.0, 72.0, 780.0
COL_GAP = 22.0
BODY_SIZE = 10.5

CJK = pymupdf.Font("china-s")  # 内置 Droid Sans Fallback：含汉字、希腊字母与常用数学符号
ITALIC = pymupdf.Font("tiit")  # 变量用 Times 斜体，与 LaTeX 的数学斜体一样换字体
ROMAN = pymupdf.Font("tiro")

# 字体里缺的字形换成能显示的近似字符
_SUBST = {"−": "-", "⊤": "T", "ﾠ": " ", "′": "'", "∗": "*", "…": "...", "⋯": "..."}
_WORDS = {
    "sum": "∑", "prod": "∏", "int": "∫", "partial": "∂", "alpha": "α", "beta": "β", "gamma": "γ",
    "delta": "δ", "epsilon": "ε", "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "pi": "π",
    "sigma": "σ", "phi": "φ", "omega": "ω", "xi": "ξ", "nabla": "∇", "infty": "∞", "cdot": "·",
    "times": "×", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "neq": "≠", "in": "∈", "to": "→",
    "approx": "≈", "Sigma": "Σ", "Delta": "Δ", "Omega": "Ω", "left": "", "right": "", "quad": "  ",
    "qquad": "    ", ",": " ", "lVert": "‖", "rVert": "‖", "mid": "|", "propto": "∝",
    "bigcup": "∪", "cup": "∪", "cap": "∩",
    "lfloor": "⌊", "rfloor": "⌋", "notin": "∉", "sim": "∼",
}
_FUNCS = {"max", "min", "arg", "exp", "log", "ln", "sign", "sgn", "tr", "det", "var", "cov", "sup",
          "inf", "lim", "s.t.", "Var", "Cov", "Ent", "Gain", "Gini", "err", "mod"}
_BIG = {"∑", "∏"}
_BINOPS = set("=+-<>≤≥≠≈∈→×·∝") | {"−"}


# ---------------------------------------------------------------- 公式盒子模型
@dataclass
class Item:
    """一个待写入的字形片段：位置、文字、字体、字号。"""

    x: float
    y: float
    text: str
    font: pymupdf.Font
    size: float


@dataclass
class Canvas:
    """收集一页的字形片段与横线，最后按需要的顺序写入页面。"""

    items: list[Item] = field(default_factory=list)
    rules: list[tuple[float, float, float, float]] = field(default_factory=list)

    def text(self, x: float, y: float, s: str, font: pymupdf.Font, size: float) -> None:
        self.items.append(Item(x, y, s, font, size))


class Box:
    """排版盒子：宽度、基线以上高度、基线以下深度，draw 在 (x, 基线 y) 处绘制。"""

    w = 0.0
    asc = 0.0
    desc = 0.0

    def draw(self, cv: Canvas, x: float, y: float) -> None:  # pragma: no cover - 接口
        raise NotImplementedError


class Glyph(Box):
    def __init__(self, s: str, font: pymupdf.Font, size: float, pad: float = 0.0):
        self.s, self.font, self.size, self.pad = s, font, size, pad
        self.w = font.text_length(s, size) + 2 * pad
        self.asc, self.desc = 0.75 * size, 0.22 * size

    def draw(self, cv: Canvas, x: float, y: float) -> None:
        if self.s.strip():
            cv.text(x + self.pad, y, self.s, self.font, self.size)


class Row(Box):
    def __init__(self, kids: list[Box]):
        self.kids = kids
        self.w = sum(k.w for k in kids)
        self.asc = max((k.asc for k in kids), default=0.0)
        self.desc = max((k.desc for k in kids), default=0.0)

    def draw(self, cv: Canvas, x: float, y: float) -> None:
        for k in self.kids:
            k.draw(cv, x, y)
            x += k.w


class Scripts(Box):
    def __init__(self, base: Box, sub: Box | None, sup: Box | None, limits: bool):
        self.base, self.sub, self.sup, self.limits = base, sub, sup, limits
        if limits:
            self.w = max(base.w, sub.w if sub else 0, sup.w if sup else 0)
            self.asc = base.asc + (sup.asc + sup.desc + 1 if sup else 0)
            self.desc = base.desc + (sub.asc + sub.desc + 1 if sub else 0)
        else:
            self.w = base.w + max(sub.w if sub else 0, sup.w if sup else 0) + 0.5
            self.up = base.asc * 0.5
            self.down = base.desc + 1.5
            self.asc = max(base.asc, self.up + (sup.asc if sup else 0))
            self.desc = max(base.desc, self.down + (sub.desc if sub else 0))

    def draw(self, cv: Canvas, x: float, y: float) -> None:
        b, sub, sup = self.base, self.sub, self.sup
        if self.limits:
            b.draw(cv, x + (self.w - b.w) / 2, y)
            if sup:
                sup.draw(cv, x + (self.w - sup.w) / 2, y - b.asc - sup.desc - 1)
            if sub:
                sub.draw(cv, x + (self.w - sub.w) / 2, y + b.desc + sub.asc + 1)
            return
        b.draw(cv, x, y)
        if sup:
            sup.draw(cv, x + b.w + 0.5, y - self.up)
        if sub:
            sub.draw(cv, x + b.w + 0.5, y + self.down)


class Frac(Box):
    def __init__(self, num: Box, den: Box, size: float, rule: bool = True):
        self.num, self.den, self.rule = num, den, rule
        self.axis = 0.3 * size
        self.w = max(num.w, den.w) + 4
        self.asc = self.axis + 2 + num.desc + num.asc
        self.desc = den.asc + den.desc + 2 - self.axis

    def draw(self, cv: Canvas, x: float, y: float) -> None:
        ay = y - self.axis
        self.num.draw(cv, x + (self.w - self.num.w) / 2, ay - 2 - self.num.desc)
        self.den.draw(cv, x + (self.w - self.den.w) / 2, ay + 2 + self.den.asc)
        if self.rule:
            cv.rules.append((x + 1, ay, x + self.w - 1, ay))


class Sqrt(Box):
    def __init__(self, body: Box, size: float):
        self.body = body
        self.sign = Glyph("√", CJK, size)
        self.w = self.sign.w + body.w + 1
        self.asc, self.desc = max(body.asc + 2, self.sign.asc), max(body.desc, self.sign.desc)

    def draw(self, cv: Canvas, x: float, y: float) -> None:
        self.sign.draw(cv, x, y)
        self.body.draw(cv, x + self.sign.w + 0.5, y)
        top = y - self.asc + 0.5
        cv.rules.append((x + self.sign.w, top, x + self.w, top))


def _group(s: str, i: int) -> tuple[str, int]:
    """从 s[i] 处读一个 {...} 组（返回内部文字与其后的位置）或单个字符。"""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] != "{":
        if s[i] == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            return m.group(0), i + m.end()
        return s[i], i + 1
    depth, j = 0, i
    while j < len(s):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1:j], j + 1
        j += 1
    return s[i + 1:], len(s)


def _sub(ch: str) -> str:
    """字体缺字的替换；补充平面的数学字母（如 𝒟）按 NFKC 归一成普通字母。"""
    if ord(ch[0]) > 0xFFFF:
        return unicodedata.normalize("NFKC", ch)
    return _SUBST.get(ch, ch)


def _atom(ch: str, size: float) -> Box:
    ch = _sub(ch)
    if ch.isascii() and ch.isalpha():
        return Glyph(ch, ITALIC, size)
    if ch.isascii() and ch not in "=+-<>":
        return Glyph(ch, ROMAN, size)
    pad = 0.22 * size if ch in _BINOPS else 0.0
    if ch in _BIG:
        return Glyph(ch, CJK, size * 1.4)
    return Glyph(ch, CJK if not ch.isascii() else ROMAN, size, pad)


def parse_math(s: str, size: float) -> Box:
    """把公式小标记（Unicode 符号、_{} ^{}、\\frac、\\sqrt、\\sum 等）排成盒子。"""
    kids: list[Box] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == " ":
            i += 1
            continue
        if c in "_^" and kids:
            arg, i = _group(s, i + 1)
            base = kids.pop()
            sub = sup = None
            if isinstance(base, Scripts) and not base.limits and (base.sub is None or base.sup is None):
                sub, sup, base = base.sub, base.sup, base.base
            small = parse_math(arg, size * 0.7)
            if c == "_":
                sub = small
            else:
                sup = small
            big = isinstance(base, Glyph) and (base.s in _BIG or base.s in ("lim", "max", "min"))
            kids.append(Scripts(base, sub, sup, limits=big))
            continue
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            name, i = m.group(1), i + m.end()
            if name == "binom":
                num, i = _group(s, i)
                den, i = _group(s, i)
                kids.append(Row([_atom("(", size),
                                 Frac(parse_math(num, size * 0.9), parse_math(den, size * 0.9), size,
                                      rule=False), _atom(")", size)]))
            elif name == "frac":
                num, i = _group(s, i)
                den, i = _group(s, i)
                kids.append(Frac(parse_math(num, size * 0.9), parse_math(den, size * 0.9), size))
            elif name == "sqrt":
                body, i = _group(s, i)
                kids.append(Sqrt(parse_math(body, size), size))
            elif name in ("text", "mathrm", "operatorname", "mathbf", "boldsymbol", "hat", "bar",
                          "tilde", "mathcal", "mathbb"):
                body, i = _group(s, i)
                if name in ("text", "mathrm", "operatorname"):
                    kids.append(_words(body, size))
                else:
                    kids.append(parse_math(body, size))
            elif name in _FUNCS:
                kids.append(Glyph(name, ROMAN, size, 0.1 * size))
            elif name in _WORDS:
                kids.append(_atom(_WORDS[name], size) if _WORDS[name] else Glyph("", ROMAN, size))
            elif name in "{}()[]|":
                kids.append(_atom(name, size))
            else:
                kids.append(Glyph(name, ROMAN, size))
            continue
        if c in "{}":
            body, i = _group(s, i)
            kids.append(parse_math(body, size))
            continue
        m = re.match(r"[A-Za-z]+\.?", s[i:])
        if m and m.group(0) in _FUNCS:
            kids.append(Glyph(m.group(0), ROMAN, size, 0.12 * size))
            i += m.end()
            continue
        if "\u4e00" <= c <= "\u9fff" or c in "，。；：、（）":
            m = re.match(r"[\u4e00-\u9fff，。；：、（）]+", s[i:])
            kids.append(Glyph(m.group(0), CJK, size, 0.3 * size))
            i += m.end()
            continue
        kids.append(_atom(c, size))
        i += 1
    return Row(kids)


def _words(s: str, size: float) -> Box:
    """公式里的说明文字（\\text{...}）：整段一种字体。"""
    font = CJK if any(not ch.isascii() for ch in s) else ROMAN
    return Glyph(s, font, size, 0.2 * size)


# ---------------------------------------------------------------- 正文排版
_BASE = re.compile(r"[\U0001d400-\U0001d7ffA-Za-z0-9α-ωΑ-Ω∂‖()∑∏∫∇'\u2100-\u214f\u00c0-\u024f\u0300-\u036f]")


def _math_run(text: str, i: int) -> int:
    """从 i 起读一段可能的内联公式（字母数字、\\命令、_ ^ 与成对花括号），返回结束位置。"""
    j, n = i, len(text)
    while j < n:
        c = text[j]
        if c == "{":
            depth = 0
            while j < n:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
        elif c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", text[j:])
            j += m.end()
        elif c in "_^" or _BASE.match(c):
            j += 1
        else:
            break
    return j


def _prose_tokens(text: str, size: float) -> list[Box]:
    """正文拆成可断行单位：汉字/标点逐字，内联公式（如 w^{T}x_{i}、\\frac{1}{m}）整体一个盒子。"""
    out: list[Box] = []
    pos = i = 0
    while i < len(text):
        if text[i] == "\\" or _BASE.match(text[i]):
            j = _math_run(text, i)
            seg = text[i:j]
            if any(c in seg for c in "_^\\"):
                out.extend(_plain(text[pos:i], size))
                out.append(parse_math(seg, size))
                pos = j
            i = max(j, i + 1)
        else:
            i += 1
    out.extend(_plain(text[pos:], size))
    return out


def _plain(text: str, size: float) -> list[Box]:
    out: list[Box] = []
    for m in re.finditer(r"[A-Za-z0-9.]+|\s+|.", text):
        t = m.group(0)
        if t.isspace():
            out.append(Glyph(" ", ROMAN, size))
        else:
            out.append(Glyph("".join(_sub(c) for c in t),
                             ROMAN if t.isascii() else CJK, size))
    return out


def _wrap(boxes: list[Box], width: float, indent: float) -> list[list[Box]]:
    lines: list[list[Box]] = [[]]
    used = indent
    for b in boxes:
        if used + b.w > width and lines[-1]:
            lines.append([])
            used = 0.0
            if isinstance(b, Glyph) and b.s == " ":
                continue
        lines[-1].append(b)
        used += b.w
    return lines


@dataclass
class Placed:
    """版面上的一个块：高度与在 (x, y顶部, 栏宽) 处绘制的函数。"""

    height: float
    draw: object  # callable(cv, x, top, width)


def _layout_block(block: dict, width: float, scale: float, chapter_title: str | None) -> list[Placed]:
    size = BODY_SIZE * scale
    lead = size * 1.62
    out: list[Placed] = []
    if "h" in block:
        hs = size * 1.3
        lines = _wrap(_prose_tokens(block["h"], hs), width, 0)
        for ln in lines:
            out.append(Placed(hs * 2.0, _line_drawer(ln, hs * 1.4)))
    elif "p" in block:
        lines = _wrap(_prose_tokens(block["p"], size), width, 2 * size)
        for k, ln in enumerate(lines):
            out.append(Placed(lead, _line_drawer(ln, size * 1.15, indent=2 * size if k == 0 else 0)))
    elif "eq" in block:
        no = f"({block['no']})" if block.get("no") else ""
        nobox = Glyph(no, ROMAN, size)
        fs = size * 1.05
        box = parse_math(block["eq"], fs)
        room = width - nobox.w - 2 * size
        while box.w > room and fs > size * 0.55:
            fs *= 0.92
            box = parse_math(block["eq"], fs)
        h = box.asc + box.desc + lead * 0.9

        def draw_eq(cv: Canvas, x: float, top: float, w: float, box=box, nobox=nobox) -> None:
            y = top + lead * 0.45 + box.asc
            box.draw(cv, x + max((w - nobox.w - box.w) / 2, 0), y)
            nobox.draw(cv, x + w - nobox.w, y)

        out.append(Placed(h, draw_eq))
    return out


def _line_drawer(line: list[Box], base: float, indent: float = 0.0):
    row = Row(line)

    def draw(cv: Canvas, x: float, top: float, w: float) -> None:
        row.draw(cv, x + indent, top + base)

    return draw


def _flow(blocks: list[Placed], cols: int, top: float) -> list[tuple[Placed, float, float, float]] | None:
    """把块依次排进栏里（双栏时左右大致等高）；放不下返回 None。"""
    width = (PAGE_W - 2 * MARGIN_X - (cols - 1) * COL_GAP) / cols
    target = sum(b.height for b in blocks) / cols + BODY_SIZE
    out = []
    col, y = 0, top
    for b in blocks:
        if y + b.height > BOTTOM or (col < cols - 1 and y - top + b.height > target):
            col, y = col + 1, TOP + 4
            if col >= cols:
                return None
        out.append((b, MARGIN_X + col * (width + COL_GAP), y, width))
        y += b.height
    return out


def two_column(chapter: int, index: int) -> bool:
    """哪些页双栏：第 2、6 章整章，其余章每章第 4、8、12…页（index 从 0 数）。"""
    return chapter in INTERLEAVED or index % 4 == 3


INTERLEAVED = (2, 6)  # 这两章双栏且按行交错写入内容流；其余双栏页按栏顺序写入


def render_page(doc: pymupdf.Document, page_data: dict, header: str, folio: int,
                chapter_banner: str | None, cols: int, interleave: bool = False) -> float:
    """把一页内容排进新的 PDF 页；内容过多时整体缩小字号直到放得下（一页 JSON = 一页 PDF）。"""
    width = (PAGE_W - 2 * MARGIN_X - (cols - 1) * COL_GAP) / cols
    scale = 1.0
    while True:
        top = TOP + 4
        pre: list[Placed] = []
        if chapter_banner:
            bs = BODY_SIZE * 1.9 * scale
            row = Row(_plain(chapter_banner, bs))
            pre.append(Placed(bs * 2.6, _line_drawer(row.kids, bs * 1.6)))
        placed = []
        for blk in page_data["blocks"]:
            placed.extend(_layout_block(blk, width, scale, None))
        if pre:
            top += pre[0].height
        flow = _flow(placed, cols, top)
        if flow is not None or scale < 0.5:
            break
        scale *= 0.94
    if flow is None:
        raise SystemExit(f"第 {folio} 页内容太多，缩到一半字号仍放不下：请拆成两页")
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    cv = Canvas()
    for p in pre:
        p.draw(cv, MARGIN_X, TOP + 4, PAGE_W - 2 * MARGIN_X)
    for blk, x, y, w in flow:
        blk.draw(cv, x, y, w)
    items = cv.items
    if cols > 1 and interleave:  # 按行交错写入：朴素抽取会把左右两栏同一高度的行串在一起
        items = sorted(items, key=lambda it: (round(it.y / 3), it.x))
    _write(page, items, cv.rules, header, folio)
    return scale


def _write(page: pymupdf.Page, items: list[Item], rules: list, header: str, folio: int) -> None:
    tw = pymupdf.TextWriter(page.rect)
    hs = 8.5
    hx = MARGIN_X if folio % 2 == 0 else PAGE_W - MARGIN_X - CJK.text_length(header, hs)
    tw.append((hx, 50), header, font=CJK, fontsize=hs)
    for it in items:
        tw.append((it.x, it.y), it.text, font=it.font, fontsize=it.size)
    num = str(folio)
    tw.append(((PAGE_W - ROMAN.text_length(num, 9)) / 2, 812), num, font=ROMAN, fontsize=9)
    tw.write_text(page)
    shape = page.new_shape()
    shape.draw_line((MARGIN_X, 56), (PAGE_W - MARGIN_X, 56))
    for x0, y0, x1, y1 in rules:
        shape.draw_line((x0, y0), (x1, y1))
    shape.finish(width=0.5, color=(0, 0, 0))
    shape.commit()


def _title_page(doc: pymupdf.Document, chapters: list[dict]) -> None:
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    tw = pymupdf.TextWriter(page.rect)
    tw.append((MARGIN_X, 260), BOOK_TITLE, font=CJK, fontsize=22)
    y = 330.0
    for ch in chapters:
        tw.append((MARGIN_X + 20, y), f"第 {ch['chapter']} 章  {ch['title']}", font=CJK, fontsize=12)
        y += 24
    tw.write_text(page)


def load_chapters(src: Path) -> list[dict]:
    """读 src 下全部 chNN.json，按章号排序。"""
    chapters = []
    for f in sorted(src.glob("ch[0-9][0-9].json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        chapters.append(data)
    return sorted(chapters, key=lambda c: c["chapter"])


def build(src: Path, out_dir: Path) -> tuple[Path, Path]:
    """渲染 PDF 并写页级问题集；返回 (pdf 路径, queries 路径)。"""
    chapters = load_chapters(src)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    _title_page(doc, chapters)
    queries = []
    for ch in chapters:
        header = f"第 {ch['chapter']} 章  {ch['title']}"
        for k, pg in enumerate(ch["pages"]):
            pno = doc.page_count
            scale = render_page(doc, pg, header, pno, header if k == 0 else None,
                                2 if two_column(ch["chapter"], k) else 1,
                                interleave=ch["chapter"] in INTERLEAVED)
            if scale < 0.8:
                print(f"提示：第 {ch['chapter']} 章第 {k + 1} 页（PDF 第 {pno} 页）内容偏多，字号缩到 {scale:.0%}")
            for q in pg.get("questions", []):
                queries.append({"question": q["q"], "gold": [{"source": PDF_NAME, "page": pno}],
                                "type": q.get("type", "concept"),
                                "split": "dev" if pno % 2 == 0 else "test"})
    doc.set_metadata({"title": BOOK_TITLE, "author": "LLM Universe 课程", "creator": "tools.corpora.textbook",
                      "producer": "PyMuPDF", "creationDate": FIXED_DATE, "modDate": FIXED_DATE})
    pdf = out_dir / PDF_NAME
    doc.subset_fonts()  # 只嵌入用到的字形：整套中文字体每份约 3 MB
    doc.save(pdf, garbage=4, deflate=True, no_new_id=True)
    doc.close()
    qpath = out_dir / "queries.jsonl"
    with qpath.open("w", encoding="utf-8") as fh:
        for n, q in enumerate(queries, 1):
            fh.write(json.dumps({"id": f"tb-{n:04d}", **q}, ensure_ascii=False) + "\n")
    return pdf, qpath


def main() -> None:
    pdf, qpath = build(SRC, BENCH)
    n = sum(1 for _ in qpath.open(encoding="utf-8"))
    print(f"写出 {pdf.relative_to(ROOT)}（{pymupdf.open(pdf).page_count} 页）与 {qpath.relative_to(ROOT)}（{n} 题）")


if __name__ == "__main__":
    main()
