"""A worker whose callback port is taken: an extra worker goes on without the endpoint, the
bot's own workers fail loudly, and neither leaves anything running."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.store import LoadedKnowledge
from bot.tickets.desk import TicketDesk
from bot.workers import TicketWorkers
from tests.fixtures_tickets import make_settings


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _desk(
    sessions: async_sessionmaker[AsyncSession], bundled: LoadedKnowledge, port: int
) -> TicketDesk:
    settings = make_settings(callbacks={"enabled": True, "host": "127.0.0.1", "port": port})
    return TicketDesk(settings, sessions, lambda: bundled.kb)


async def test_an_extra_worker_delivers_without_the_taken_callback_port(
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    taken_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers = TicketWorkers(
        _desk(sessions, bundled, taken_port), None, run_clock=False, callbacks_optional=True
    )

    with caplog.at_level(logging.WARNING, logger="bot.workers"):
        await workers.start()
    try:
        assert workers.worker is not None
        assert [t.get_name() for t in workers._tasks] == ["ticket-delivery"]
        assert caplog.text.count("department callbacks not served") == 1
        assert f"127.0.0.1:{taken_port} is in use" in caplog.text
    finally:
        await workers.stop()
    assert workers._tasks == []
    assert workers._http is None


async def test_the_bots_workers_fail_loudly_and_leave_nothing_running(
    sessions: async_sessionmaker[AsyncSession], bundled: LoadedKnowledge, taken_port: int
) -> None:
    workers = TicketWorkers(_desk(sessions, bundled, taken_port), None, run_clock=True)

    with pytest.raises(OSError, match=r"address already in use|Errno 98"):
        await workers.start()

    assert workers._tasks == []
    assert workers._http is None
    assert workers._runner is None
