"""`python -m bot web` and `python -m bot worker` as processes of their own: each serves /healthz,
/readyz and /metrics on its own port (BOT_METRICS_PORT here), and logs one JSON object a line
when asked to, naming its role.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures_console import free_port
from tests.fixtures_conversation import REPO_ROOT
from tests.fixtures_knowledge import words_only_config
from tests.test_ops_health import sample

# Bounded waits for a process to come up (the console builds the matcher's index).
START_TRIES = 240
TRY_EVERY_SECONDS = 0.25


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The bundled config with the bundled knowledge base and words-only matching."""
    return words_only_config(tmp_path)


def environment(tmp_path: Path, metrics_port: int, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TELEGRAM_BOT_TOKEN", "DATABASE_URL", "BOT_LOG_FORMAT", "BOT_CONFIG")
    }
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        BOT_METRICS_PORT=str(metrics_port),
        **extra,
    )
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def launch(
    processes: list[subprocess.Popen[str]], arguments: list[str], env: dict[str, str]
) -> subprocess.Popen[str]:
    """Start `python -m bot ARGUMENTS` from the repository; the fixture ends it if a test fails."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *arguments],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    return process


async def wait_until_alive(base: str, process: subprocess.Popen[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(START_TRIES):
            assert process.poll() is None, "the process ended before it served /healthz"
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(TRY_EVERY_SECONDS)
    pytest.fail(f"{base}/healthz never answered")


async def wait_until_ready(base: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http:
        for _ in range(START_TRIES):
            async with http.get(f"{base}/readyz") as response:
                body: dict[str, object] = await response.json()
                if response.status == 200:
                    return body
                assert response.status == 503
            await asyncio.sleep(TRY_EVERY_SECONDS)
    pytest.fail(f"{base}/readyz never said ready")


async def scrape(base: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def stop(process: subprocess.Popen[str]) -> str:
    """End the process as systemd does (SIGTERM) and return what it logged."""
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    return stderr


def json_records(stderr: str) -> list[dict[str, object]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


async def test_a_worker_process_serves_health_and_metrics_and_logs_json(
    tmp_path: Path, config_file: Path, processes: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    arguments = ["--config", str(config_file), "--log-format", "json", "worker"]
    process = launch(processes, arguments, environment(tmp_path, port))
    base = f"http://127.0.0.1:{port}"
    await wait_until_alive(base, process)
    body = await wait_until_ready(base)
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "ok"
    assert str(checks["knowledge_base"]).endswith(" items")
    assert set(checks) == {"database", "knowledge_base"}
    exposition = await scrape(base)
    assert sample(exposition, "bot_process_role", role="worker") == 1
    assert sample(exposition, "bot_outbox_messages", channel="webhook", status="failed") == 0
    assert sample(exposition, "bot_database_figures_up") == 1
    records = json_records(stop(process))
    assert process.returncode == 0
    for record in records:
        assert set(record) >= {"time", "level", "logger", "role", "message"}
        assert record["role"] == "worker"
    messages = [str(r["message"]) for r in records]
    assert any(m.startswith("health and metrics on http://127.0.0.1:") for m in messages)


async def test_a_console_process_serves_health_and_metrics_and_logs_json(
    tmp_path: Path, config_file: Path, processes: list[subprocess.Popen[str]]
) -> None:
    port, web_port = free_port(), free_port()
    arguments = ["--config", str(config_file), "web", "--port", str(web_port)]
    process = launch(processes, arguments, environment(tmp_path, port, BOT_LOG_FORMAT="json"))
    base = f"http://127.0.0.1:{port}"
    await wait_until_alive(base, process)
    body = await wait_until_ready(base)
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert set(checks) == {"database", "knowledge_base"}
    exposition = await scrape(base)
    assert sample(exposition, "bot_process_role", role="web") == 1
    assert sample(exposition, "bot_escalations_open") == 0
    # The console's own port answers the load balancer too.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{web_port}/readyz") as response,
    ):
        assert response.status == 200
    records = json_records(stop(process))
    assert {r["role"] for r in records} == {"web"}
