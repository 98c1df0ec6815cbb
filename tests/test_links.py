"""链接检查：README、docs 与笔记本里的内部链接必须可达；外部链接只列出、从不访问。"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_markdown_cell, new_notebook

from tools.site.__main__ import main
from tools.site.links import check_links
from tools.site.pages import github_slug


def test_internal_links_in_readme_docs_and_notebooks_resolve():
    links = check_links()
    broken = [f"{ln.where}：{ln.target}（{ln.problem}）" for ln in links if ln.problem]
    assert not broken, "失效的内部链接：\n" + "\n".join(broken)
    assert any(ln.target.endswith(".ipynb") for ln in links)  # README 的章节表确实被检查了


def test_github_slug_matches_github_headings():
    assert github_slug("快速开始") == "快速开始"
    assert github_slug("用 pip 安装") == "用-pip-安装"
    assert github_slug("1.1 什么是大语言模型？") == "11-什么是大语言模型"
    assert github_slug("English (EN)") == "english-en"


def test_broken_files_and_anchors_are_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# 标题\n\n## 第二节 小节\n", encoding="utf-8")
    nb = new_notebook(cells=[new_markdown_cell("## 小结\n\n- 要点")])
    nbformat.write(nb, tmp_path / "c.ipynb")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[好](docs/a.md#第二节-小节) [好2](c.ipynb#小结) [坏](docs/b.md) [坏锚](docs/a.md#没有)\n"
        "[外](https://example.com/x) `[代码里](nothing.md)` [本页](#目录)\n\n## 目录\n", encoding="utf-8")
    links = {ln.target: ln for ln in check_links([readme], root=tmp_path)}
    assert links["docs/a.md#第二节-小节"].problem == ""
    assert links["c.ipynb#小结"].problem == ""
    assert links["docs/b.md"].problem == "文件不存在"
    assert "锚点" in links["docs/a.md#没有"].problem
    assert links["https://example.com/x"].external and links["https://example.com/x"].problem == ""
    assert links["#目录"].problem == ""
    assert "nothing.md" not in links  # 代码里的不算链接


def test_links_command_lists_external_links_without_fetching(capsys):
    code = main(["links"])
    out = capsys.readouterr().out
    links = check_links()
    external = {ln.target for ln in links if ln.external}
    assert external and all(url in out for url in external)
    assert code == (1 if any(ln.problem for ln in links) else 0)
