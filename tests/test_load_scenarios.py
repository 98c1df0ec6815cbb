"""压测场景（issue 16 的指标）：mixed 与 burst 在真实的子进程服务上跑通，结果齐全、没有错误。

只检查结构与错误数，不检查比值（与机器快慢有关）；比值由 python -m helpers.app.load --scenario all 测。
"""

from __future__ import annotations

import asyncio

import pytest

from helpers.app.scenarios import (
    ScenarioResult,
    burst,
    isolated_server,
    large_text,
    main,
    mixed,
    scale,
    seed_uploads,
    small_markdown,
    upload_health,
)
from tests.support.corpus import PLACES, write_corpus


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """一个离线、隔离的服务（小文档目录、临时向量库与上传区），本模块共用。"""
    work = tmp_path_factory.mktemp("load")
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"), PLACES)
    with isolated_server(work, corpus_dir=corpus, timeout=60) as base:
        yield base, work / "uploads"


def _lines_and_figures(result: ScenarioResult, keys: set[str]) -> None:
    assert result.errors == 0, result.error_samples
    assert keys <= set(result.figures)
    assert result.lines and all(isinstance(line, str) and line for line in result.lines)
    assert set(result.goals.values()) <= {True, False}


def test_mixed_at_tiny_size_reports_both_phases_and_no_errors(server):
    base, uploads = server
    result = asyncio.run(mixed(base, clients=4, requests=8, uploaders=1, docs=2, max_seconds=30))
    _lines_and_figures(result, {"chat_alone", "chat_with_uploads", "uploads", "p95_ratio"})
    assert result.figures["chat_alone"]["count"] == 8 and result.figures["chat_with_uploads"]["count"] >= 8
    assert result.figures["uploads"]["count"] == 2
    assert {"mixed-u0-00.md", "mixed-u0-01.md"} <= {p.name for p in uploads.iterdir()}
    assert "p95 比值" in "".join(result.lines)


def test_burst_at_tiny_size_reports_steady_and_after_write(server):
    base, uploads = server
    result = asyncio.run(burst(base, clients=4, rounds=2, max_seconds=30))
    _lines_and_figures(result, {"steady_ms", "after_write_median_ms", "after_write_max_ms", "ratio_median"})
    assert len(result.figures["steady_rounds_ms"]) == 2 and len(result.figures["after_write_rounds_ms"]) == 2
    assert result.figures["uploads"]["count"] == 2
    assert {"burst-00.md", "burst-01.md"} <= {p.name for p in uploads.iterdir()}


def test_upload_health_at_tiny_size_reports_upload_and_health_polls(server):
    base, uploads = server
    result = asyncio.run(upload_health(base, megabytes=0.05, max_seconds=30))
    _lines_and_figures(result, {"upload_status", "upload_seconds", "upload_chunks", "health"})
    assert result.figures["upload_status"] == 200 and result.figures["upload_chunks"] > 0
    assert result.figures["health"]["count"] >= 1 and (uploads / "large.txt").is_file()


@pytest.mark.slow
def test_scale_at_tiny_size_starts_on_seeded_uploads_and_restarts(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", PLACES)
    result = scale(files=20, uploads=2, max_seconds=120, corpus_dir=corpus)
    _lines_and_figures(result, {"start_seconds", "restart_seconds", "uploads", "first_search_after_write"})
    assert result.figures["uploads"]["count"] == 2 and result.figures["search_steady"]["count"] == 20
    assert result.figures["start_seconds"] > 0 and result.figures["restart_seconds"] > 0


def test_generated_documents_are_distinct_utf8_text(tmp_path):
    assert small_markdown("A") != small_markdown("B") and small_markdown("A").decode().startswith("# ")
    text = large_text(0.05).decode("utf-8")
    assert len(text.encode()) >= 0.05 * 1024 * 1024 and "，" in text and "。\n\n" in text
    assert sorted(p.name for p in seed_uploads(tmp_path / "up", 3).iterdir()) == [
        "seed-00000.md", "seed-00001.md", "seed-00002.md"]


@pytest.mark.parametrize("argv", [
    ["nope"],
    ["mixed", "--url", "http://127.0.0.1:1"],
    ["burst", "--clients", "8,32"],
    ["scale", "--files", "999999"],
])
def test_bad_scenario_arguments_are_refused_before_any_server_starts(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "--" in capsys.readouterr().err
