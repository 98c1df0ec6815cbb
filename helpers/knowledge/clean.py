"""清洗文本：去掉 PDF 页眉页脚与页码、接上中文句子里的断行、合并多余空白（第 4 章）。

为什么手写：PyMuPDF 只负责取字，LangChain 没有针对中文排版断行与页眉页脚的清洗器。
"""

from __future__ import annotations

import re
from collections import Counter

from helpers.text import CJK_CLASS

_CJK_CHAR = re.compile(rf"[{CJK_CLASS}]")
# 页码的常见写法：第 3 页、第 3 页 / 共 10 页、— 3 —、- 3 -、3 / 10、Page 3、纯数字
_PAGE_NUMBER = re.compile(
    r"^\s*(?:第\s*\d+\s*页(?:\s*[/／,，]?\s*共\s*\d+\s*页)?"
    r"|[—–\-－~·•]+\s*\d+\s*[—–\-－~·•]+"
    r"|\d+\s*[/／]\s*\d+"
    r"|(?:page|p\.)\s*\d+(?:\s*(?:of|/)\s*\d+)?"
    r"|\d{1,4})\s*$",
    re.IGNORECASE,
)
_SENT_END = "。！？!?；;…”’」』）)】"
_MD_BLOCK = re.compile(r"^\s*(?:#{1,6}\s|[-*+]\s|\d+[.、)]\s*|>|\||```|[（(]?\d+[）)])")
_SPACED_CJK = re.compile(rf"(?:[{CJK_CLASS}，。、] ){{2,}}[{CJK_CLASS}，。、]")
EDGE_LINES = 3
MAX_HEADER_CHARS = 60  # 只在每页开头/结尾这几行里找页眉页脚


def is_page_number(line: str) -> bool:
    """这一行是不是页码（第 3 页、— 3 —、3/10、纯数字……）（第 4 章）。"""
    return bool(_PAGE_NUMBER.match(line))


def _line_keys(line: str) -> set[str]:
    """比较页眉页脚用的键：忽略数字与空白；再加上前 8 个字的前缀（按章节变化的页眉共享前缀）。"""
    key = re.sub(r"\d+", "#", re.sub(r"\s+", "", line))
    if len(key) > MAX_HEADER_CHARS:  # 太长的行是正文，不当页眉页脚
        return set()
    return {key, "前缀:" + key[:8]} if len(key) > 8 else {key}


def _edge_positions(lines: list[str]) -> list[tuple[int, str]]:
    """每页开头/结尾 EDGE_LINES 行的 (行号, 位置标签)：页眉页脚总在同一位置出现。"""
    idx = [i for i, ln in enumerate(lines) if ln.strip()]
    top = [(i, f"上{n}") for n, i in enumerate(idx[:EDGE_LINES])]
    bottom = [(i, f"下{n}") for n, i in enumerate(reversed(idx[-EDGE_LINES:]))]
    return top + bottom


def repeated_edge_lines(pages: list[str], min_ratio: float = 0.6) -> set[str]:
    """找出在多数页的同一位置（开头/结尾几行）反复出现的行：页眉页脚（第 4 章）。"""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for text in pages:
        lines = text.splitlines()
        counts.update({f"{pos}|{key}" for i, pos in _edge_positions(lines) for key in _line_keys(lines[i])})
    need = max(3, int(min_ratio * len(pages) + 0.5))
    return {key for key, n in counts.items() if n >= need}


def strip_headers_footers(pages: list[str]) -> list[str]:
    """删除各页开头/结尾的页眉、页脚与页码（第 4 章）。"""
    repeated = repeated_edge_lines(pages)
    out = []
    for text in pages:
        lines = text.splitlines()
        drop = {
            i for i, pos in _edge_positions(lines)
            if is_page_number(lines[i]) or {f"{pos}|{k}" for k in _line_keys(lines[i])} & repeated
        }
        out.append("\n".join(ln for i, ln in enumerate(lines) if i not in drop))
    return out


def _width(line: str) -> int:
    """显示宽度：汉字等宽字符记 2，其余记 1。"""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in line)


def join_broken_lines(text: str) -> str:
    """把排版造成的断行接回去：上一行排满且没在句末标点处结束时，与下一行相连（第 4 章）。"""
    if "\n" not in text:  # 只有一行（.jsonl 记录常见）：无行可接
        return text
    lines = text.split("\n")
    widths = sorted(_width(ln.strip()) for ln in lines if ln.strip())
    if not widths:
        return text
    full = widths[int(0.9 * (len(widths) - 1))]  # 排满一行的宽度：取第 90 百分位
    out: list[str] = []
    parts: list[str] = []  # 正在接的这一行按片段存、宽度累加：反复拼接长字符串会变成平方复杂度
    width = 0
    for i, line in enumerate(lines):
        cur = line.strip()
        if i and cur and parts[-1]:
            tail = parts[-1][-1]
            ends_open = tail not in _SENT_END
            cjk_pair = bool(_CJK_CHAR.match(tail) and _CJK_CHAR.match(cur[0]))
            if width >= 0.85 * full and not _MD_BLOCK.match(cur) and (ends_open or cjk_pair):
                sep = "" if (_CJK_CHAR.match(tail) or _CJK_CHAR.match(cur[0]) or not tail.isalnum()) else " "
                parts += [sep, cur]
                width += len(sep) + _width(cur)
                continue
        if i:
            out.append("".join(parts))
        parts, width = [cur], _width(cur)
    out.append("".join(parts))
    return "\n".join(out)


# 公式碎片：不含汉字的短行；数学记号（运算符、希腊字母、上下标记号）让它确实像公式而不是表格里的数
_MATH_SYMBOL = re.compile(r"[=+\-−×·/∑∏∫∂√≤≥≠≈∈∉⊂⊆∀∃→←⇒∞∝‖|^_α-ωΑ-Ω′']")
FRAGMENT_CHARS = 12  # 这么短的无汉字行算一个公式碎片
MATH_LINE_CHARS = 60  # 公式行（无汉字）最长这么多字符
_WORDY = re.compile(r"[A-Za-z]{4,}")  # 英文单词：正文或代码，不是公式


def _math_line(line: str) -> bool:
    """公式的一部分或式号：不含汉字，很短，或者带数学记号、几乎没有英文单词。"""
    if not line or len(line) > MATH_LINE_CHARS or _CJK_CHAR.search(line):
        return False
    return len(line) <= FRAGMENT_CHARS or (bool(_MATH_SYMBOL.search(line)) and len(_WORDY.findall(line)) <= 1)


def join_formula_fragments(text: str) -> str:
    """只有文字、没有坐标时：把碎成一行一个符号的公式拼回一行，式号 (9.35) 接在公式后面（第 8 章）。"""
    if not _MATH_SYMBOL.search(text):
        return text
    lines = text.split("\n")
    math = [_math_line(ln.strip()) for ln in lines]
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j + 1 < len(lines) and math[i] and math[j + 1]:
            j += 1
        run = [ln.strip() for ln in lines[i:j + 1]]
        looks_math = any(_MATH_SYMBOL.search(ln) for ln in run)
        has_fragment = any(len(ln) <= FRAGMENT_CHARS for ln in run)
        if j > i and looks_math and has_fragment:  # 含式号单独一行的情形：公式一行 + "(9.35)"
            out.append(" ".join(run))
        else:
            out.extend(lines[i:j + 1])
        i = j + 1
    return "\n".join(out)


def normalize_whitespace(text: str) -> str:
    """合并连续空格、去掉汉字之间多余的空格、最多保留一个空行（第 4 章）。"""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u3000", " ").replace("\xa0", " ")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    # PDF 取字有时在每个汉字之间插空格（"大 模 型"）：连续 3 个以上才去掉，保留"第1章 标题"这种
    text = _SPACED_CJK.sub(lambda m: m.group(0).replace(" ", ""), text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def clean_text(text: str) -> str:
    """清洗一段 Markdown/纯文本：统一空白并接上断行（第 4 章）。"""
    return join_broken_lines(normalize_whitespace(text))


def clean_pdf_pages(pages: list[str]) -> list[str]:
    """清洗 PDF 各页：先去页眉页脚页码，再接断行、合并空白（第 4 章）。"""
    return [join_broken_lines(normalize_whitespace(p)) for p in strip_headers_footers(pages)]
