"""测试用的小文档：两套小语料（知识库主题、地点问答）、把语料写进目录、生成中文 PDF。"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pymupdf

# 知识库测试用：三篇讲 RAG、提示词、部署的短文，其中一篇在子目录里
TOPICS: dict[str, str] = {
    "rag.md": "# 检索增强生成\n\n检索增强生成先检索资料再回答问题。它能减少幻觉，并给出出处。\n\n"
              "混合检索把向量检索与 BM25 关键词检索的结果用倒数排名融合合并。",
    "prompt.md": "# 提示词\n\n提示词工程讲究清晰的指令、示例与输出格式。少样本提示能稳定输出格式。",
    "sub/deploy.txt": "部署时用 FastAPI 提供接口，用 Gradio 做界面。上线前要做压力测试和监控告警。",
}

# 应用测试用：每篇一个独特的事实（咖啡馆、植物园、考试安排），问答时一眼看出引用对不对
PLACES: dict[str, str] = {
    "coffee.md": "# 星河咖啡馆\n\n星河咖啡馆的招牌饮品是桂花拿铁，每杯售价 28 元。\n\n"
                 "星河咖啡馆每天早上七点开门，晚上十点打烊。\n",
    "garden.md": "# 青藤植物园\n\n青藤植物园里最古老的树是一棵银杏，树龄约 800 年。\n\n"
                 "植物园的温室里种着三百多种兰花。\n",
    "notes.txt": "机器学习课程的期末考试安排在六月二十日上午九点，地点是教学楼 302 室。\n",
}


def write_corpus(root: Path, docs: Mapping[str, str] | None = None) -> Path:
    """把 {相对路径: 文字} 写成 root 下的 UTF-8 文件（默认写 TOPICS），返回 root。"""
    for name, text in (TOPICS if docs is None else docs).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def make_pdf(path: Path, pages: list[str], header: str | None = "示例手册 · 内部资料",
             footer: str | None = "— {n} —") -> Path:
    """生成带页眉、页脚页码的中文 PDF。"""
    doc = pymupdf.open()
    for n, text in enumerate(pages, 1):
        page = doc.new_page()
        if header:
            page.insert_text((72, 40), header, fontname="china-s", fontsize=9)
        page.insert_text((72, 90), text, fontname="china-s", fontsize=11)
        if footer:
            page.insert_text((280, 810), footer.format(n=n), fontname="china-s", fontsize=9)
    doc.save(path)
    return path
