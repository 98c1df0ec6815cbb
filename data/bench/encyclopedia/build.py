"""从 parts/*.txt 生成 corpus.jsonl 与 queries.jsonl 并做检查：python data/bench/encyclopedia/build.py。

parts 的格式：每段以 "## 标题" 开头，下一行是正文，之后每行 "Q: 问题 ||| 答案片段"（答案须原样出现在正文里）；
别的段落也能回答这一问时，行尾再加 "||| 另一段的标题"（也写进 gold，答案须也出现在那一段里）。
编号按出现顺序；段落编号为偶数 → dev，奇数 → test（同一段落的问题同属一个划分）。
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse(path: Path) -> list[dict]:
    items: list[dict] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            items.append({"title": line[3:].strip(), "text": "", "qs": []})
        elif line.startswith("Q:"):
            q, a, *also = (part.strip() for part in line[2:].split("|||"))
            items[-1]["qs"].append((q, a, also))
        else:
            items[-1]["text"] += line
    return items


def main() -> int:
    items = [it for p in sorted((HERE / "parts").glob("*.txt")) for it in parse(p)]
    problems: list[str] = []
    corpus, queries = [], []
    by_title = {it["title"]: (f"e{n:04d}", it["text"]) for n, it in enumerate(items, 1)}
    for n, it in enumerate(items, 1):
        did = f"e{n:04d}"
        text = it["text"]
        if not 180 <= len(text) <= 450:
            problems.append(f"{did} {it['title']}: 长度 {len(text)}")
        if len(it["qs"]) < 2:
            problems.append(f"{did} {it['title']}: 只有 {len(it['qs'])} 个问题")
        corpus.append({"id": did, "text": text, "metadata": {"title": it["title"]}})
        for q, a, also in it["qs"]:
            if a not in text:
                problems.append(f"{did} {it['title']}: 答案不在正文里：{a}")
            gold = [{"id": did}]
            for t in also:
                if t not in by_title or a not in by_title[t][1]:
                    problems.append(f"{did}: 另一段 {t} 不存在或不含答案 {a}")
                else:
                    gold.append({"id": by_title[t][0]})
            if q.rstrip("？?") in text:
                problems.append(f"{did}: 问题照抄了原句：{q}")
            queries.append(
                {
                    "id": f"eq{len(queries) + 1:04d}",
                    "question": q,
                    "answer": a,
                    "gold": gold,
                    "split": "dev" if n % 2 == 0 else "test",
                }
            )
    titles = [c["metadata"]["title"] for c in corpus]
    problems += [f"标题重复：{t}" for t in sorted(set(titles)) if titles.count(t) > 1]
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with open(HERE / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(corpus)} 段，{len(queries)} 问；问题 {len(problems)} 处")
    for p in problems:
        print(" ", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
