"""加载文档：PDF（逐页）、Markdown、纯文本（UTF-8/GBK 自动识别）与 .jsonl 语料（第 4 章）。"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document

from helpers.errors import LoadError
from helpers.knowledge.clean import clean_pdf_pages, clean_text, normalize_whitespace
from helpers.knowledge.formats import STRUCTURED_SUFFIXES, TEXT_BASED_SUFFIXES, load_structured

SUPPORTED = (".pdf", ".md", ".markdown", ".txt", ".jsonl") + STRUCTURED_SUFFIXES  # 办公、网页、字幕见第 8 章
DEFAULT_MAX_FILE_MB = 20.0
GB_MAX_CHAOS = 0.1  # 真正的 GBK 中文乱码分约为 0；Big5、Shift-JIS 当成 GB18030 解出来在 0.16 以上
GB_MAX_RARE = 0.5  # GBK 繁体文本约 0.2；Big5、Shift-JIS 的短文本误当 GB18030 时在 0.75 以上


@dataclass(frozen=True)
class SourceFile:
    """待入库的一个文件：绝对路径 + 相对语料根目录的 source（第 4 章）。"""

    path: Path
    source: str


def relative_source(path: Path, root: Path) -> str:
    """文件相对语料根目录的路径，统一用 / 分隔（第 4 章）。"""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    return rel.as_posix()


def discover(paths: str | Path | list[str | Path], root: str | Path | None = None
             ) -> tuple[Path, list[SourceFile]]:
    """把文件/目录参数展开成 (语料根目录, 文件列表)；跳过隐藏文件（第 4 章）。"""
    items = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    for p in items:
        if not p.exists():
            raise LoadError(f"找不到 {p}：请检查路径是否正确")
    if root is None:
        if len(items) == 1 and items[0].is_dir():
            root = items[0]
        else:
            parents = [p if p.is_dir() else p.parent for p in items]
            root = Path(os.path.commonpath([str(p.resolve()) for p in parents]))
    root = Path(root)
    files: list[Path] = []
    for p in items:
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
        else:
            files.append(p)
    out = {relative_source(f, root): f for f in files}
    return root, [SourceFile(path, src) for src, path in sorted(out.items())]


def check_file(path: Path, max_file_mb: float = DEFAULT_MAX_FILE_MB) -> None:
    """入库前的检查：扩展名、大小、空文件；不合格就抛 LoadError（第 4 章）。"""
    ext = path.suffix.lower()
    if ext in (".doc", ".ppt", ".xls", ".wps", ".et", ".dps"):  # 旧版 Office/WPS 二进制格式（第 8 章）
        raise LoadError(f"不支持旧版 {ext} 格式：请用 Office/WPS 打开后另存为 .docx/.pptx/.xlsx 再入库")
    if ext not in SUPPORTED:
        raise LoadError(f"不支持的文件类型 {ext or '（无扩展名）'}：只支持 {' '.join(SUPPORTED)}")
    size = path.stat().st_size
    if size == 0:
        raise LoadError("文件为空（0 字节），没有可入库的内容")
    if size > max_file_mb * 1024 * 1024:
        raise LoadError(
            f"文件有 {size / 1024 / 1024:.1f} MB，超过上限 {max_file_mb:g} MB"
            "（可调大 max_file_mb，或先把文件拆小）"
        )


def _rare_share(text: str) -> float:
    """非 ASCII 字符里不在 GB2312（常用简体字）中的比例：Big5、Shift-JIS 误当 GB18030 时几乎全是生僻字。"""
    wide = [ch for ch in text[:20000] if ord(ch) > 127]
    return sum(not ch.encode("gb2312", errors="ignore") for ch in wide) / len(wide) if wide else 0.0


def decode_text(data: bytes) -> tuple[str, str]:
    """把字节解码成文本，返回 (文本, 编码)；依次尝试 BOM、UTF-8、GB18030 与自动识别（第 4 章）。"""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise LoadError("文件开头标着 UTF-16，内容却不完整或已损坏：请重新另存为 UTF-8 后再入库") from None
    if b"\x00" in data[:8192]:
        raise LoadError("不是文本文件（含有二进制内容）：请确认扩展名与内容相符")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # GB18030 几乎能"解开"任何双字节文字（Big5、Shift-JIS 也不报错，只是变成乱码），所以先让 charset-normalizer
    # 给它打"乱码分"：分低就按 GB18030（兼容 GBK/GB2312，短文本也稳），否则换它认出的编码
    gb = from_bytes(data, cp_isolation=["gb18030"]).best()
    if gb is not None and gb.chaos <= GB_MAX_CHAOS and _rare_share(str(gb)) <= GB_MAX_RARE:
        return data.decode("gb18030"), "gb18030"
    best = from_bytes(data).best()
    if best is None:
        raise LoadError("无法识别文件编码（不是 UTF-8/GBK，也认不出是 Big5、Shift-JIS 等）："
                        "请用编辑器把它另存为 UTF-8 后再入库")
    return str(best), best.encoding


def _pdf_pages(path: Path) -> list[str]:
    """用 PyMuPDF 按版面逐页取文字（双栏、公式碎片见第 8 章 knowledge.pdf）；加密或损坏时抛 LoadError。"""
    from helpers.knowledge.pdf import pdf_pages

    return pdf_pages(path)


def _metadata_value(value: object) -> str | int | float | bool | None:
    """Chroma 的元数据只收标量：列表/字典转成 JSON 字符串，None 丢弃。"""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False)


def _jsonl_records(text: str, source: str) -> Iterator[Document]:
    """.jsonl 语料：每行 {"id","text","metadata"?}，元数据带上记录的 id 与 metadata。"""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            rid, body = rec["id"], rec["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise LoadError(f"第 {lineno} 行不是 {{\"id\", \"text\", \"metadata\"?}} 格式的 JSON") from None
        meta: dict[str, object] = {"source": source}
        for key, value in (rec.get("metadata") or {}).items():
            value = _metadata_value(value)
            if value is not None:
                meta[str(key)] = value
        meta["id"] = _metadata_value(rid)
        meta["file"] = source
        yield Document(page_content=str(body), metadata=meta)


def load_file(path: str | Path, root: str | Path | None = None, *, clean: bool = True,
              max_file_mb: float = DEFAULT_MAX_FILE_MB) -> list[Document]:
    """加载一个文件：PDF 每页一个 Document（page 从 0），办公/网页/字幕按节或行，其余每个文件/记录一个（第 4 章）。"""
    path = Path(path)
    source = relative_source(path, Path(root) if root is not None else path.parent)
    check_file(path, max_file_mb)
    ext = path.suffix.lower()
    if ext == ".pdf":
        pages = _pdf_pages(path)
        if clean:
            pages = clean_pdf_pages(pages)
        docs = [
            Document(page_content=text, metadata={"source": source, "page": i, "file": source})
            for i, text in enumerate(pages)
        ]
        if not any(d.page_content.strip() for d in docs):
            raise LoadError("PDF 里没有可提取的文字（可能是扫描件）：请先做 OCR 再入库")
        return docs
    if ext in STRUCTURED_SUFFIXES:  # 办公、网页与字幕：每个小节/幻灯片/表格行/字幕段一个 Document（第 8 章）
        text = decode_text(path.read_bytes())[0] if ext in TEXT_BASED_SUFFIXES else None
        docs = load_structured(path, source, text)
        if clean:  # 段落本来就分好了：只统一空白，不接断行
            docs = [Document(page_content=normalize_whitespace(d.page_content), metadata=d.metadata) for d in docs]
        return [d for d in docs if d.page_content.strip()]
    text, _ = decode_text(path.read_bytes())
    if ext == ".jsonl":
        docs = list(_jsonl_records(text, source))
        if clean:
            docs = [Document(page_content=clean_text(d.page_content), metadata=d.metadata) for d in docs]
    else:
        docs = [Document(page_content=clean_text(text) if clean else text,
                         metadata={"source": source, "file": source})]
    if not any(d.page_content.strip() for d in docs):
        raise LoadError("文件里没有文字内容")
    return docs


def load_directory(root: str | Path, *, clean: bool = True, max_file_mb: float = DEFAULT_MAX_FILE_MB,
                   errors: list[tuple[str, str]] | None = None) -> list[Document]:
    """遍历目录加载全部文档（带进度条）；失败的文件记进 errors 而不中断（第 4 章）。"""
    from tqdm.auto import tqdm

    root_path, files = discover(root)
    docs: list[Document] = []
    for sf in tqdm(files, desc="加载文档", unit="个"):
        try:
            docs.extend(load_file(sf.path, root_path, clean=clean, max_file_mb=max_file_mb))
        except LoadError as exc:
            if errors is None:
                raise
            errors.append((sf.source, str(exc)))
    return docs
