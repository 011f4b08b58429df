"""Several processes on one database: who leads, and periodic jobs that run once per tick.

**Leadership.** `python -m bot run` may run on several machines against one PostgreSQL. One of
them leads: it serves Telegram (polls or accepts the webhook). The others stand by, ready to
take over. The leader holds a lease, a row in `leases` whose `expires_at` it pushes forward every
`ttl / 4` seconds; a standby tries to take the lease as often, and succeeds once the row has
expired. Times are the database's clock (`clock_timestamp()`), so hosts whose clocks disagree
still agree on who leads. A leader that dies (kill -9, machine gone, network cut) stops renewing;
the standby takes over at most `ttl + ttl / 4` seconds later.

A leader that cannot renew (its network to the database is cut) gives up as soon as its lease may
have expired, counted on its own monotonic clock from the moment it sent its last successful
renewal, and before any standby can have taken it: listeners hear `leading=False` and stop
serving Telegram at once. Each term has a number (`term`) that grows with every change of holder.

On SQLite there is one process: it leads from the start and never stops.

**Ticks.** `claim_tick(sessions, job, tick)` inserts `(job, tick)` into `clock_ticks` with ON
CONFLICT DO NOTHING and tells whether this process won it: every process may run the job's
loop, and each tick runs in exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.core import metrics
from bot.core.db import conflict_insert, write_gate
from bot.core.models import ClockTick, utcnow

log = logging.getLogger(__name__)

# This process, as the leases and ticks name it: host, process id and a random part (a process
# id may come back after a restart).
HOLDER = f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

TELEGRAM_LEASE = "telegram"

# Called with (lease name, leading, term) whenever this process starts or stops leading, right
# when it happens (before any Telegram work starts or after it was stopped). Metrics and alerts
# hook in here; a listener must return quickly and must not raise.
LeadershipListener = Callable[[str, bool, int], None]
_LISTENERS: list[LeadershipListener] = []


def on_leadership_change(listener: LeadershipListener) -> None:
    """Call `listener(name, leading, term)` on every change of leadership in this process."""
    _LISTENERS.append(listener)


def _tell(name: str, holder: str, leading: bool, term: int) -> None:
    # The one log line of a change of leadership; operators grep for "leadership:".
    if leading:
        log.warning("leadership: %s leads %r (term %d)", holder, name, term)
    else:
        log.warning("leadership: %s no longer leads %r (term %d)", holder, name, term)
    metrics.leadership_changed(leading)
    for listener in list(_LISTENERS):
        try:
            listener(name, leading, term)
        except Exception:
            log.exception("a leadership listener failed")


_ACQUIRE = text(
    """
    INSERT INTO leases (name, holder, term, acquired_at, expires_at)
    VALUES (:name, :holder, 1, timezone('utc', clock_timestamp()),
            timezone('utc', clock_timestamp()) + make_interval(secs => :ttl))
    ON CONFLICT (name) DO UPDATE SET
        holder = EXCLUDED.holder,
        term = CASE WHEN leases.holder = EXCLUDED.holder AND :renewing
                    THEN leases.term ELSE leases.term + 1 END,
        acquired_at = CASE WHEN leases.holder = EXCLUDED.holder AND :renewing
                           THEN leases.acquired_at ELSE EXCLUDED.acquired_at END,
        expires_at = EXCLUDED.expires_at
    WHERE (leases.holder = EXCLUDED.holder AND :renewing)
       OR leases.expires_at < timezone('utc', clock_timestamp())
    RETURNING term
    """
)

_RELEASE = text(
    """
    UPDATE leases SET expires_at = timezone('utc', clock_timestamp()) - interval '1 second'
    WHERE name = :name AND holder = :holder AND term = :term
    """
)


class Leadership:
    """One process's part in electing the leader of a lease (see the module's text)."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str = TELEGRAM_LEASE,
        *,
        ttl: float = 10.0,
        holder: str = HOLDER,
    ) -> None:
        self.name = name
        self.ttl = float(ttl)
        self.holder = holder
        self.single = engine.dialect.name != "postgresql"
        self.renew_every = self.ttl / 4
        self.leading = False
        self.term = 0
        self._url = engine.url
        self._engine: AsyncEngine | None = None
        self._deadline = 0.0
        self._listeners: list[Callable[[bool, int], None]] = []
        self._changed = asyncio.Event()

    def on_change(self, listener: Callable[[bool, int], None]) -> None:
        """Call `listener(leading, term)` synchronously when this process's part changes."""
        self._listeners.append(listener)

    async def wait_changed(self) -> None:
        """Wait until the leadership changes (or has changed since the last wait)."""
        await self._changed.wait()
        self._changed.clear()

    def nudge(self) -> None:
        """Wake whoever waits in `wait_changed` (to look at the leadership again)."""
        self._changed.set()

    def _set(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        _tell(self.name, self.holder, leading, self.term)
        for listener in list(self._listeners):
            listener(leading, self.term)
        self._changed.set()

    def _lease_engine(self) -> AsyncEngine:
        # A connection of its own, with short timeouts: the lease must be renewed even while
        # the pool of the process is busy, and a cut network must fail fast, not hang.
        if self._engine is None:
            timeout = max(1.0, self.renew_every)
            self._engine = create_async_engine(
                self._url,
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=False,
                connect_args={
                    "timeout": timeout,
                    "command_timeout": timeout,
                    "server_settings": {
                        "application_name": "bot-lease",
                        # The server drops the session if the process vanishes mid-statement.
                        "idle_in_transaction_session_timeout": str(int(self.ttl * 1000)),
                        "tcp_keepalives_idle": "5",
                        "tcp_keepalives_interval": "2",
                        "tcp_keepalives_count": "3",
                    },
                },
            )
        return self._engine

    async def _drop_connection(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(engine.dispose(), timeout=1)

    async def try_acquire(self) -> bool:
        """Take or renew the lease once; return whether this process leads now.

        On SQLite this process always leads. A failure to reach the database while leading ends
        the leadership only once the lease may have expired (see `run`).
        """
        if self.single:
            if not self.leading:
                self.term = 1
                self._set(True)
            return True
        loop = asyncio.get_running_loop()
        sent = loop.time()
        params = {
            "name": self.name,
            "holder": self.holder,
            "ttl": self.ttl,
            "renewing": self.leading,
        }
        async with self._lease_engine().begin() as connection:
            term = (await connection.execute(_ACQUIRE, params)).scalar_one_or_none()
        if term is None:
            self._set(False)
            return False
        # The lease lasts ttl from when the database ran the statement, which is after `sent`:
        # counting from `sent` ends this leadership before any standby may begin its own.
        self._deadline = sent + self.ttl
        self.term = int(term)
        self._set(True)
        return True

    def expired(self) -> bool:
        """Tell whether this process's lease may have expired by now (always False on SQLite)."""
        if self.single:
            return False
        return asyncio.get_running_loop().time() >= self._deadline

    async def release(self) -> None:
        """Stop leading and let a standby take over at once (on a clean stop)."""
        was_leading, term = self.leading, self.term
        self._set(False)
        if self.single or not was_leading:
            await self._drop_connection()
            return
        try:
            async with self._lease_engine().begin() as connection:
                await asyncio.wait_for(
                    connection.execute(
                        _RELEASE, {"name": self.name, "holder": self.holder, "term": term}
                    ),
                    timeout=max(1.0, self.renew_every),
                )
        except Exception as error:
            log.warning(
                "the lease %r was not released (%s); it expires by itself", self.name, error
            )
        finally:
            await self._drop_connection()

    async def run(self, stop: asyncio.Event) -> None:
        """Take, hold and renew the lease until `stop` is set; then release it."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if self.single:
                    await self.try_acquire()
                    await stop.wait()
                    break
                # A renewal may take until the lease may have expired, no longer.
                budget = self._deadline - loop.time() if self.leading else self.renew_every * 2
                try:
                    await asyncio.wait_for(self.try_acquire(), timeout=max(0.05, budget))
                    wait = self.renew_every
                except Exception as error:
                    await self._drop_connection()
                    if self.leading and self.expired():
                        log.error("the lease %r could not be renewed: %r", self.name, error)
                        self._set(False)
                    elif not self.leading:
                        log.info("the lease %r could not be tried: %r", self.name, error)
                    # Try again soon; while leading, before the lease may expire.
                    wait = min(1.0, self.renew_every)
                if self.leading:
                    wait = min(wait, max(0.0, self._deadline - loop.time()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                if self.leading and self.expired():
                    # The renewal loop itself was held up past the deadline.
                    log.error("the lease %r expired before it could be renewed", self.name)
                    self._set(False)
        finally:
            await self.release()


async def database_seconds(sessions: async_sessionmaker[AsyncSession]) -> float:
    """Return the database's clock as seconds since the epoch (this host's clock on SQLite)."""
    engine = sessions.kw.get("bind")
    if engine is None or engine.dialect.name != "postgresql":
        return time.time()
    async with sessions() as session:
        value = await session.scalar(text("SELECT extract(epoch from clock_timestamp())"))
    return float(value)


# Ticks older than this are deleted now and then (a tick is only ever claimed near its time).
TICKS_KEPT = dt.timedelta(days=2)


async def claim_tick(
    sessions: async_sessionmaker[AsyncSession], job: str, tick: int, holder: str = HOLDER
) -> bool:
    """Claim tick number `tick` of `job` for this process; return False if another has it."""
    engine = sessions.kw["bind"]
    insert = conflict_insert(engine.dialect.name)
    statement = (
        insert(ClockTick)
        .values(job=job, tick=tick, holder=holder[:200], claimed_at=utcnow())
        .on_conflict_do_nothing(index_elements=[ClockTick.job, ClockTick.tick])
    )
    async with write_gate(sessions), sessions() as session:
        result = await session.execute(statement)
        won = bool(getattr(result, "rowcount", 0) == 1)
        if won and tick % 100 == 0:
            await session.execute(
                delete(ClockTick).where(
                    ClockTick.job == job, ClockTick.claimed_at < utcnow() - TICKS_KEPT
                )
            )
        await session.commit()
    return won
