"""The log format is chosen by flag, then BOT_LOG_FORMAT, then [logging] format; JSON records
carry the update and the ticket being worked on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.core.config import ConfigError, load_settings
from bot.core.logs import chosen_format, log_context, set_update, setup_logging
from tests.fixtures_conversation import REPO_ROOT


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)


def test_the_flag_wins_then_the_environment_then_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BOT_LOG_FORMAT", raising=False)
    assert chosen_format(None) == "text"
    assert chosen_format(None, "json") == "json"
    monkeypatch.setenv("BOT_LOG_FORMAT", "TEXT")
    assert chosen_format(None, "json") == "text"
    assert chosen_format("json", "text") == "json"
    monkeypatch.setenv("BOT_LOG_FORMAT", "yaml")
    assert chosen_format(None, "json") == "json"


def test_the_config_file_names_the_format(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    source = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(source.replace('format = "text"', 'format = "json"', 1), encoding="utf-8")
    assert load_settings(path).logging.format == "json"
    path.write_text(source.replace('format = "text"', 'format = "xml"', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[logging\] format"):
        load_settings(path)


def test_json_records_name_the_update_and_the_ticket(root_restored: None) -> None:
    stream = io.StringIO()
    setup_logging(stream=stream, log_format="json", role="worker")
    log = logging.getLogger("bot.test")
    with log_context(update_id=41, ticket="TS-2026-000007"):
        log.info("delivered")
    log.warning("nothing in particular")
    try:
        raise ValueError("broken https://api.telegram.org/bot123456789:AAsecret-token-value/x")
    except ValueError:
        log.exception("failed")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["update_id"] == 41
    assert first["ticket"] == "TS-2026-000007"
    assert first["role"] == "worker"
    assert first["level"] == "INFO"
    assert first["logger"] == "bot.test"
    assert first["message"] == "delivered"
    assert first["time"].endswith("+00:00")
    assert "update_id" not in second
    assert "ticket" not in second
    assert "ValueError" in third["exception"]
    # Tokens are redacted in JSON as in text.
    assert "AAsecret" not in stream.getvalue()


async def test_an_update_named_in_its_task_stays_in_that_task(root_restored: None) -> None:
    import asyncio

    stream = io.StringIO()
    setup_logging(stream=stream, log_format="json", role="bot")
    log = logging.getLogger("bot.test")

    async def handle(update_id: int) -> None:
        set_update(update_id)
        await asyncio.sleep(0)
        log.info("handled %d", update_id)

    await asyncio.gather(asyncio.create_task(handle(1)), asyncio.create_task(handle(2)))
    log.info("outside")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_message = {r["message"]: r.get("update_id") for r in records}
    assert by_message == {"handled 1": 1, "handled 2": 2, "outside": None}
