"""第 7 章的 docker-compose.yml 真的能用：这里没有 Docker，所以检查能在本机检查的部分——
文件的结构（谁在哪个网络上、谁对外开端口、令牌从哪里来），chroma-gate 的 Nginx 配置过 nginx -t，
再把 compose 里 chroma 的那条命令真的运行起来、套上 chroma-gate 的配置，让课程的 KnowledgeBase 带令牌连进去。
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from helpers.config import PROJECT_ROOT, ConfigError, load_settings
from tests.support.corpus import write_corpus
from tests.support.factories import small_kb
from tests.support.servers import free_port, nginx_main_conf, nginx_or_skip, stop_process, wait_until_up

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
GATE = PROJECT_ROOT / "docker" / "nginx" / "chroma-gate.conf.template"
TOKEN = "test-chroma-token-0123456789"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_the_store_is_private_and_every_secret_is_required():
    compose = _compose()
    services, networks = compose["services"], compose["networks"]
    assert set(services) == {"app", "nginx", "chroma", "chroma-gate"}
    assert networks["store"]["internal"] is True  # Chroma 所在的网络不出外网
    for name in ("chroma", "chroma-gate"):
        assert services[name]["networks"] == ["store"] and "ports" not in services[name]
    app = services["app"]
    assert set(app["networks"]) == {"store", "web"}
    assert app["environment"]["CHROMA_HOST"] == "chroma-gate"  # 助手只经过那道门连 Chroma
    for service in ("app", "chroma-gate"):  # 没设令牌就启动不了（${VAR:?…}），不会开着一扇没锁的门
        assert services[service]["environment"]["CHROMA_TOKEN"].startswith("${CHROMA_TOKEN:?")
    assert app["environment"]["APP_TOKEN"].startswith("${APP_TOKEN:?")
    nginx = services["nginx"]
    assert nginx["network_mode"] == "service:app" and "ports" not in nginx  # 端口开在 app 上，kb.conf 原样可用
    mounts = {m.split(":")[0]: m.split(":")[1] for m in nginx["volumes"]}
    assert mounts["./docker/nginx/kb.conf"] == "/etc/nginx/conf.d/default.conf"
    gate_mount = services["chroma-gate"]["volumes"][0].split(":")
    assert gate_mount[0] == "./docker/nginx/chroma-gate.conf.template"
    assert gate_mount[1].startswith("/etc/nginx/templates/")  # 官方镜像启动时在这里做 envsubst
    for path in [m.split(":")[0] for m in nginx["volumes"] + services["chroma-gate"]["volumes"]]:
        assert (PROJECT_ROOT / path).exists(), path
    for service in ("app", "chroma"):
        assert services[service]["build"]["dockerfile"] == "docker/app.Dockerfile"
        assert (PROJECT_ROOT / services[service]["build"]["dockerfile"]).is_file()


def _gate_config(folder: Path, listen: int, upstream: int) -> Path:
    """chroma-gate 的模板：像官方镜像那样换掉 ${CHROMA_TOKEN}，再换掉本机跑不了的监听端口与上游地址。"""
    text = GATE.read_text(encoding="utf-8")
    for old, new in [("${CHROMA_TOKEN}", TOKEN), ("listen 8000;", f"listen 127.0.0.1:{listen};"),
                     ("http://chroma:8000", f"http://127.0.0.1:{upstream}")]:
        assert old in text, old
        text = text.replace(old, new)
    (folder / "gate.conf").write_text(text, encoding="utf-8")
    # 以 root 运行时 worker 是 nobody，写不进 pytest 的临时目录：请求体整个留在内存里
    return nginx_main_conf(folder, folder / "gate.conf", extra="  client_body_buffer_size 64m;\n")


def test_the_gate_config_passes_nginx_t(tmp_path):
    nginx = nginx_or_skip()
    conf = _gate_config(tmp_path, 8000, 8001)
    done = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _chroma_command(path: Path, port: int) -> list[str]:
    """compose 里 chroma 服务的那条命令，只换掉库目录、监听地址与端口。"""
    command = list(_compose()["services"]["chroma"]["command"])
    assert command[:2] == ["chroma", "run"]
    values = {"--path": str(path), "--host": "127.0.0.1", "--port": str(port)}
    for flag, value in values.items():
        command[command.index(flag) + 1] = value
    command[0] = str(Path(sys.executable).parent / "chroma")  # 镜像里它在 /app/.venv/bin，这里在 .venv/bin
    return command


def _wait_for_the_gate(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """等 Nginx 开始应答：不带令牌的请求得到 401（门是关着的）。"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 401:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"chroma-gate 的 Nginx 没能在 127.0.0.1:{port} 上应答")


@pytest.mark.slow  # 真起一个 chroma run 和一个 Nginx
def test_the_course_reaches_chroma_only_through_the_gate_with_its_token(tmp_path):
    nginx = nginx_or_skip()
    chroma_port, gate_port = free_port(), free_port()
    chroma = subprocess.Popen(_chroma_command(tmp_path / "db", chroma_port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    gate = None
    try:
        wait_until_up(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", 90, alive=lambda: chroma.poll() is None)
        conf = _gate_config(tmp_path, gate_port, chroma_port)
        gate = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_the_gate(gate_port, gate)
        base = dataclasses.replace(load_settings(), chroma_host="127.0.0.1", chroma_port=gate_port)
        for token, told in [(None, "没有设置 CHROMA_TOKEN"), ("wrong-token", "CHROMA_TOKEN 不对")]:
            with pytest.raises(ConfigError, match=f"Chroma 服务 127.0.0.1:{gate_port} 拒绝了请求（{told}）"):
                small_kb("gated", settings=dataclasses.replace(base, chroma_token=token))
        kb = small_kb("gated", settings=dataclasses.replace(base, chroma_token=TOKEN))
        assert kb.ingest(write_corpus(tmp_path / "docs")).count("新增") == 3
        assert kb.hybrid("倒数排名融合", k=1)[0][0].metadata["source"] == "rag.md"
        assert (tmp_path / "db" / "chroma.sqlite3").is_file()  # 数据在门后面的 chroma 那边
    finally:
        if gate is not None:
            stop_process(gate, timeout=10)
        stop_process(chroma, timeout=10)
