"""Delivery to a real department endpoint on 127.0.0.1 (up, slow, down, failing), on both
databases: signatures, idempotency keys, backoff, the last try, and workers that die mid-delivery.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.store import LoadedKnowledge
from bot.core.config import Settings, load_settings
from bot.core.models import OutboxMessage
from bot.tickets.delivery import Delivery, DeliveryFailed, DeliveryWorker, WebhookChannel
from bot.tickets.desk import Actor, TicketDesk
from tests.fixtures_tickets import (
    REPO_ROOT,
    DepartmentEndpoint,
    MovableClock,
    add_resident,
    draft,
    make_settings,
)

ECOLOGY = Actor.department("ecology-environment", "eco-1")


def pollution(resident: int, **fields: object):  # type: ignore[no-untyped-def]
    return draft(
        resident, category="生态环境", description="河边工厂夜里排污，河道发黑有臭味。", **fields
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def webhook_settings(department_endpoint: DepartmentEndpoint, webhook_secret: str) -> Settings:
    return make_settings(
        webhook_url=department_endpoint.url,
        delivery={"max_attempts": 3, "webhook_timeout_seconds": 0.5, "lease_seconds": 30},
    )


@pytest.fixture
def webhook_desk(
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    webhook_settings: Settings,
    clock: MovableClock,
) -> TicketDesk:
    return TicketDesk(webhook_settings, sessions, lambda: bundled.kb, clock=clock)


def worker_for(
    desk: TicketDesk, http: aiohttp.ClientSession, settings: Settings | None = None
) -> DeliveryWorker:
    return DeliveryWorker(desk, {"webhook": WebhookChannel(settings or desk.settings, http)})


async def webhook_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        result = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.channel == "webhook")
            .order_by(OutboxMessage.id)
        )
        return list(result.scalars())


async def test_a_ticket_reaches_the_department_signed_with_its_idempotency_key(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
) -> None:
    resident = await add_resident(sessions, 3001)
    filed = await webhook_desk.file(pollution(resident))
    assert await worker_for(webhook_desk, http).run_until_idle() == 1

    [call] = department_endpoint.calls
    assigned = next(e for e in await webhook_desk.timeline(filed.number) if e.kind == "assigned")
    assert call.key == f"{filed.number}:{assigned.id}"
    assert call.event == "assigned"
    assert call.body["ticket"]["number"] == filed.number
    assert call.body["ticket"]["description"] == "河边工厂夜里排污，河道发黑有臭味。"
    assert call.body["ticket"]["resident"] is None
    assert department_endpoint.rejected == []
    [row] = await webhook_rows(sessions)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_a_forged_signature_is_what_the_department_refuses(
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    webhook_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    clock: MovableClock,
) -> None:
    monkeypatch.setenv("TEST_ECOLOGY_SECRET", "not-the-shared-secret")
    desk = TicketDesk(webhook_settings, sessions, lambda: bundled.kb, clock=clock)
    resident = await add_resident(sessions, 3002)
    await desk.file(pollution(resident))
    await worker_for(desk, http).run_until_idle()
    assert department_endpoint.calls == []
    assert department_endpoint.rejected == ["the signature does not match"]
    [row] = await webhook_rows(sessions)
    assert row.status == "pending"
    assert row.last_error is not None
    assert "401" in row.last_error


async def test_a_slow_endpoint_times_out_and_the_row_is_tried_again_later(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    clock: MovableClock,
) -> None:
    department_endpoint.mode = "slow"
    resident = await add_resident(sessions, 3003)
    await webhook_desk.file(pollution(resident))
    worker = worker_for(webhook_desk, http)
    assert await worker.run_until_idle() == 1
    [row] = await webhook_rows(sessions)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "timed out")
    # Not due again yet: the backoff holds it back.
    assert await worker.run_until_idle() == 0
    department_endpoint.mode = "up"
    clock.advance(seconds=5)
    assert await worker.run_until_idle() == 1
    [row] = await webhook_rows(sessions)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(department_endpoint.unique) == 1


async def test_a_department_that_is_down_is_retried_after_its_retry_after(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    clock: MovableClock,
) -> None:
    department_endpoint.mode = "down"
    resident = await add_resident(sessions, 3004)
    await webhook_desk.file(pollution(resident))
    await worker_for(webhook_desk, http).run_until_idle()
    [row] = await webhook_rows(sessions)
    assert row.last_error is not None
    assert row.last_error.startswith("HTTP 503")
    assert row.next_attempt_at - clock() == dt.timedelta(seconds=1)


async def test_after_the_last_try_the_row_fails_and_staff_are_alerted(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    clock: MovableClock,
) -> None:
    department_endpoint.mode = "error"
    resident = await add_resident(sessions, 3005)
    filed = await webhook_desk.file(pollution(resident))
    worker = worker_for(webhook_desk, http)
    for _ in range(3):
        await worker.run_until_idle()
        clock.advance(hours=1)
    [row] = await webhook_rows(sessions)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "HTTP 500: <html>stack trace</html>"
    failed = (await webhook_desk.timeline(filed.number))[-1]
    assert (failed.kind, failed.visible_to_resident) == ("delivery_failed", False)
    assert failed.data["channel"] == "webhook"
    assert failed.data["attempts"] == 3
    async with sessions() as session:
        alert = await session.scalar(select(OutboxMessage).where(OutboxMessage.channel == "staff"))
    assert alert is not None
    assert alert.payload["event"]["kind"] == "delivery_failed"
    # The failed row stays (nothing is deleted) and is not tried again.
    clock.advance(days=1)
    assert await worker.run_until_idle() == 0


async def test_a_409_means_the_department_already_has_it(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
) -> None:
    department_endpoint.statuses = [409]
    resident = await add_resident(sessions, 3006)
    await webhook_desk.file(pollution(resident))
    await worker_for(webhook_desk, http).run_until_idle()
    [row] = await webhook_rows(sessions)
    assert row.status == "sent"


async def test_a_missing_secret_is_a_failure_to_retry_not_an_unsigned_post(
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    clock: MovableClock,
) -> None:
    monkeypatch.delenv("TEST_ECOLOGY_SECRET", raising=False)
    desk = TicketDesk(
        make_settings(webhook_url=department_endpoint.url),
        sessions,
        lambda: bundled.kb,
        clock=clock,
    )
    resident = await add_resident(sessions, 3007)
    await desk.file(pollution(resident))
    await worker_for(desk, http).run_until_idle()
    assert department_endpoint.calls == []
    [row] = await webhook_rows(sessions)
    assert row.status == "pending"
    assert row.last_error == "environment variable TEST_ECOLOGY_SECRET is not set"


async def test_events_of_one_ticket_arrive_in_order_even_when_the_first_needed_retries(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    clock: MovableClock,
) -> None:
    resident = await add_resident(sessions, 3008)
    filed = await webhook_desk.file(pollution(resident))
    await webhook_desk.add_information(filed.number, resident, "补充：排污时间多在凌晨两点左右。")
    department_endpoint.statuses = [500]
    worker = worker_for(webhook_desk, http)
    await worker.run_until_idle()
    # The information waits behind the assignment that failed.
    assert [c.event for c in department_endpoint.calls] == ["assigned"]
    clock.advance(seconds=10)
    await worker.run_until_idle()
    assert [c.event for c in department_endpoint.calls] == [
        "assigned",
        "assigned",
        "information_added",
    ]


async def test_two_workers_never_deliver_the_same_row(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
) -> None:
    resident = await add_resident(sessions, 3009)
    for _ in range(12):
        await webhook_desk.file(pollution(resident))
    workers = [worker_for(webhook_desk, http) for _ in range(3)]
    done = await asyncio.gather(*(w.run_until_idle() for w in workers))
    assert sum(done) == 12
    assert len(department_endpoint.calls) == 12 == len(department_endpoint.unique)


async def test_a_worker_stopped_mid_delivery_loses_nothing_and_the_department_dedups(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
) -> None:
    resident = await add_resident(sessions, 3010)
    for _ in range(3):
        await webhook_desk.file(pollution(resident))
    department_endpoint.mode = "slow"
    department_endpoint.delay = 30
    # Stopped while waiting for the department, not timed out: on a busy machine the three posts
    # can take longer to arrive than this file's short webhook timeout.
    patient = webhook_desk.settings.model_copy(
        update={
            "delivery": webhook_desk.settings.delivery.model_copy(
                update={"webhook_timeout_seconds": 60}
            )
        }
    )
    worker = worker_for(webhook_desk, http, patient)
    task = asyncio.create_task(worker.run_forever())
    department_endpoint.expected = 3
    await asyncio.wait_for(department_endpoint.arrived.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The department got the posts but never answered; the rows went back to pending, free for
    # the next worker at once, and stopping counted as no failed attempt.
    rows = await webhook_rows(sessions)
    assert {r.status for r in rows} == {"pending"}
    assert {(r.attempts, r.locked_until) for r in rows} == {(0, None)}
    department_endpoint.mode = "up"
    restarted = worker_for(webhook_desk, http)
    assert await restarted.run_until_idle() == 3
    assert {r.status for r in await webhook_rows(sessions)} == {"sent"}
    assert len(department_endpoint.calls) == 6
    assert len(department_endpoint.unique) == 3


async def test_a_worker_that_died_holding_a_lease_is_replaced_when_the_lease_runs_out(
    webhook_desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    department_endpoint: DepartmentEndpoint,
    clock: MovableClock,
) -> None:
    resident = await add_resident(sessions, 3011)
    await webhook_desk.file(pollution(resident))
    dead = worker_for(webhook_desk, http)
    [claimed] = await dead.claim()  # ... and then the process was killed
    replacement = worker_for(webhook_desk, http)
    assert await replacement.run_until_idle() == 0
    clock.advance(seconds=31)
    assert await replacement.run_until_idle() == 1
    # The dead worker's late result cannot overwrite the replacement's.
    assert await dead.deliver(claimed) == "lost"
    [row] = await webhook_rows(sessions)
    assert (row.status, row.attempts) == ("sent", 1)
    assert len(department_endpoint.unique) == 1


async def run_worker(*arguments: str, environment: dict[str, str]) -> asyncio.subprocess.Process:
    """Start `python -m bot worker ...` as a process of its own."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "worker",
        *arguments,
        cwd=REPO_ROOT,
        env=os.environ | environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
async def test_a_worker_process_killed_mid_delivery_loses_nothing_and_delivers_each_event_once(
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    department_endpoint: DepartmentEndpoint,
    webhook_secret: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[knowledge]
dir = "{REPO_ROOT / "knowledge"}"
[tickets]
sweep_interval_seconds = 3600
[delivery]
lease_seconds = 2
poll_interval_seconds = 0.2
backoff_base_seconds = 0.2
webhook_timeout_seconds = 60
[departments.ecology-environment]
channels = ["webhook"]
webhook_url = "{department_endpoint.url}"
secret_env = "TEST_ECOLOGY_SECRET"
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    desk = TicketDesk(settings, sessions, lambda: bundled.kb)
    resident = await add_resident(sessions, 3100)
    for _ in range(4):
        await desk.file(pollution(resident))
    environment = {
        "BOT_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(REPO_ROOT),
        "TELEGRAM_BOT_TOKEN": "",
    }
    department_endpoint.mode = "slow"
    department_endpoint.delay = 60
    department_endpoint.expected = 4
    worker = await run_worker(environment=environment)
    try:
        await asyncio.wait_for(department_endpoint.arrived.wait(), timeout=30)
    finally:
        worker.kill()
        await worker.wait()
    # Killed while the department was still answering: nothing was marked sent.
    assert {r.status for r in await webhook_rows(sessions)} == {"pending"}
    department_endpoint.mode = "up"
    await asyncio.sleep(2.5)  # the dead worker's lease runs out
    again = await run_worker("--once", environment=environment)
    _, errors = await asyncio.wait_for(again.communicate(), timeout=60)
    assert again.returncode == 0, errors.decode()
    rows = await webhook_rows(sessions)
    assert {r.status for r in rows} == {"sent"}
    assert len(department_endpoint.calls) == 8
    assert sorted(department_endpoint.unique) == sorted({c.key for c in department_endpoint.calls})
    assert len(department_endpoint.unique) == 4


class RefusingWithNul:
    """A channel whose endpoint answered with U+0000 in its error page."""

    async def deliver(self, item: Delivery) -> None:
        raise DeliveryFailed("HTTP 500: stack\u0000trace", permanent=True)


async def test_an_error_holding_a_nul_character_is_recorded_without_it(
    webhook_desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # PostgreSQL cannot store U+0000 in text: the failure could not be written, so the row was
    # neither marked failed nor reported, and came back when its lease ran out.
    resident = await add_resident(sessions, 3006)
    filed = await webhook_desk.file(pollution(resident))
    worker = DeliveryWorker(webhook_desk, {"webhook": RefusingWithNul()})
    await worker.run_until_idle()
    [row] = await webhook_rows(sessions)
    assert (row.status, row.last_error) == ("failed", "HTTP 500: stacktrace")
    failed = (await webhook_desk.timeline(filed.number))[-1]
    assert (failed.kind, failed.data["error"]) == ("delivery_failed", "HTTP 500: stacktrace")
