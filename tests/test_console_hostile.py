"""The console against a hostile client, over HTTP on 127.0.0.1 (both databases where it matters):
concurrent password guesses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bot.console.accounts import verify_password
from bot.core.models import LoginAttempt
from bot.core.services import Services
from tests.fixtures_console import (
    Console,
    ConsoleClient,
    serving,
)


class CountingVerifier:
    """verify_password, counted, and as slow as real argon2 (a tenth of a second) so that
    concurrent guesses overlap the way they do in production."""

    def __init__(self, real: Callable[[str | None, str], bool]) -> None:
        self.real = real
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, password_hash: str | None, password: str) -> bool:
        with self._lock:
            self.calls += 1
        time.sleep(0.1)
        return self.real(password_hash, password)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> CountingVerifier:
    counter = CountingVerifier(verify_password)
    monkeypatch.setattr("bot.console.sessions.verify_password", counter)
    return counter


async def guess_at_once(
    client: ConsoleClient, count: int, username: Callable[[int], str]
) -> list[int]:
    """Post `count` wrong passwords at the same moment; return the statuses."""
    await client.get("/login")

    async def guess(number: int) -> int:
        status, _, _ = await client.post(
            "/login", {"username": username(number), "password": f"wrong-guess-{number}"}
        )
        return status

    return list(await asyncio.gather(*(guess(number) for number in range(count))))


# -- 1. login throttling is one atomic check-and-count --------------------------------------------


async def test_concurrent_guesses_for_one_account_never_pass_the_limit(
    console: Console, client: ConsoleClient, verifications: CountingVerifier
) -> None:
    statuses = await guess_at_once(client, 40, lambda _: "manager")
    assert verifications.calls <= 5
    assert statuses.count(401) == verifications.calls
    assert statuses.count(429) == 40 - verifications.calls
    # and the account stays locked, even for the right password
    status, _, _ = await client.login("manager")
    assert status == 429
    assert verifications.calls <= 5


async def test_concurrent_guesses_from_one_address_never_pass_its_limit(
    console: Console, client: ConsoleClient, verifications: CountingVerifier
) -> None:
    statuses = await guess_at_once(client, 40, lambda number: f"someone-{number}")
    assert verifications.calls <= 20
    assert statuses.count(401) == verifications.calls
    assert statuses.count(429) == 40 - verifications.calls


async def test_two_consoles_on_one_database_share_the_limit(
    console: Console, services: Services, verifications: CountingVerifier
) -> None:
    """Two processes (two engines, no lock in common) guessing at once still make five checks."""
    second = await Services.start(services.settings, migrate=False, knowledge=services.knowledge)
    try:
        async with serving(second) as other:
            clients = [ConsoleClient(console), ConsoleClient(other)]
            try:
                results = await asyncio.gather(
                    *(guess_at_once(c, 20, lambda _: "manager") for c in clients)
                )
            finally:
                for c in clients:
                    await c.close()
    finally:
        await second.close()
    statuses = [status for result in results for status in result]
    assert verifications.calls <= 5
    assert statuses.count(401) == verifications.calls
    async with services.sessions() as session:
        recorded = await session.scalar(select(func.count()).select_from(LoginAttempt))
    assert recorded == 40


async def test_a_right_password_among_concurrent_logins_still_gets_in(
    console: Console, verifications: CountingVerifier
) -> None:
    clients = [ConsoleClient(console) for _ in range(3)]
    try:
        results = await asyncio.gather(*(c.login("manager") for c in clients))
    finally:
        for c in clients:
            await c.close()
    assert [status for status, _, _ in results] == [303, 303, 303]
