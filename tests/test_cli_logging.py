"""No secret in any log, whichever command runs: logging is set up once, in bot/cli.py, for all.

Each command's own work is replaced by a stub that logs what httpx logs for a Bot API request
(the URL carries the token) and what a careless message or traceback might carry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot import cli
from bot.core.logs import RedactSecrets, setup_logging
from tests.fixtures_knowledge import REPO_ROOT

TOKEN = "123456789:AAHk-secret_Value-of-the-bot-0123456789"
URL = f"http://127.0.0.1:8081/bot{TOKEN}/getMe"
OTHER_TOKEN = "987654321:ZZother-Secret_value"
COMMANDS = {
    "command_run": ["run"],
    "command_worker": ["worker"],
    "command_web": ["web"],
    "command_report": ["report", "--month", "2026-01"],
    "command_audit": ["audit", "verify"],
    "command_user": ["user", "list"],
    "command_ask": ["ask", "x"],
    "command_kb_check": ["kb", "check"],
    "command_evaluate": ["evaluate"],
    "command_calibrate": ["calibrate"],
}


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """Leave the root logger and the quieted loggers as the test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "apscheduler")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def leak(*_: object) -> int:
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', URL)
    logging.getLogger("httpx").warning("HTTP Request failed: POST %s", URL)
    logging.getLogger().warning("token %s in a message", TOKEN)
    logging.getLogger("bot.workers").error(
        "another bot's URL https://api.telegram.org/bot%s/x", OTHER_TOKEN
    )
    try:
        raise RuntimeError(f"Client error for url {URL}")
    except RuntimeError:
        logging.getLogger("bot.runner").exception("failed")
    return 0


@pytest.mark.parametrize("handler", sorted(COMMANDS))
def test_no_command_logs_the_token(
    handler: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setattr(cli, handler, leak)

    assert cli.main(["--config", str(REPO_ROOT / "config.toml"), *COMMANDS[handler]]) == 0

    logged = capsys.readouterr().err
    assert "Client error for url" in logged  # the traceback is there
    for secret in (TOKEN, OTHER_TOKEN, "AAHk", "ZZother"):
        assert secret not in logged
    # httpx's one line per request is not logged at all; its warnings are, redacted.
    assert 'HTTP/1.1 200 OK"' not in logged
    assert (
        "HTTP Request failed: POST http://127.0.0.1:8081/bot123456789:[REDACTED]/getMe" in logged
    )


def test_other_handlers_of_the_root_logger_are_redacted_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-shaped-like-a-token")
    caplog.set_level(logging.INFO)
    setup_logging()

    logging.getLogger("somewhere").warning("secret not-shaped-like-a-token and bot%s", TOKEN)

    assert "not-shaped-like-a-token" not in caplog.text
    assert TOKEN not in caplog.text


def test_the_filter_leaves_records_without_secrets_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items from %s", (3, "a"), None)

    assert RedactSecrets([TOKEN]).filter(record)
    assert (record.msg, record.args) == ("%d items from %s", (3, "a"))


def test_logging_is_set_up_in_one_place() -> None:
    setups = [
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "bot").rglob("*.py")
        if "basicConfig(" in path.read_text(encoding="utf-8")
        or 'getLogger("httpx").setLevel' in path.read_text(encoding="utf-8")
    ]
    assert setups == []


async def test_requests_aiohttp_cannot_parse_are_one_info_line_not_an_error_with_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from aiohttp import web

    async def hello(_: web.Request) -> web.Response:
        raise RuntimeError("a handler's own failure")

    setup_logging()
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    answers = []
    try:
        for request in (
            b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            answers.append((await reader.readline()).split(b" ")[1])
            writer.close()
            await writer.wait_closed()
    finally:
        await runner.cleanup()
    assert answers == [b"400", b"400", b"500"]
    logged = capsys.readouterr().err
    refused = [line for line in logged.splitlines() if "malformed request refused" in line]
    assert len(refused) == 2
    assert all(" INFO aiohttp.server: " in line for line in refused)
    # A handler's own exception is still an error, with its traceback.
    assert logged.count(" ERROR aiohttp.server: ") == 1
    assert logged.count("Traceback (most recent call last)") == 1
    assert "a handler's own failure" in logged
