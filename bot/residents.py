"""Residents: who talks to the bot, their private chat, and the language they chose.

Every update from a resident needs their language, so profiles are cached in memory; the
database is written only when something changes or `last_seen_at` is old enough to matter.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import write_gate
from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bot.models import Resident, utcnow

_SEEN_EVERY = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ResidentProfile:
    """What the bot needs to know about a resident on every message."""

    id: int
    telegram_user_id: int
    chat_id: int
    language: str
    blocked_bot: bool = False


def language_from_telegram(language_code: str | None) -> str:
    """Guess a first language from Telegram's client language: English clients get English."""
    if language_code and language_code.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


@dataclass(slots=True)
class _Cached:
    profile: ResidentProfile
    seen_written: dt.datetime
    fetched: float


class ResidentDirectory:
    """Finds or creates residents by Telegram user id and remembers their language."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, cache_seconds: float = 300
    ) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self._cache: dict[int, _Cached] = {}
        self._gate = write_gate(sessions)

    def _remember(self, profile: ResidentProfile, seen: dt.datetime) -> ResidentProfile:
        self._cache[profile.telegram_user_id] = _Cached(profile, seen, time.monotonic())
        return profile

    @staticmethod
    def _profile(row: Resident) -> ResidentProfile:
        return ResidentProfile(
            id=row.id,
            telegram_user_id=row.telegram_user_id,
            chat_id=row.chat_id,
            language=row.language if row.language in LANGUAGES else DEFAULT_LANGUAGE,
            blocked_bot=row.blocked_bot,
        )

    async def touch(
        self,
        telegram_user_id: int,
        chat_id: int,
        *,
        display_name: str = "",
        language_hint: str | None = None,
    ) -> ResidentProfile:
        """Return the resident, creating them on first contact and noting that they were seen."""
        now = utcnow()
        cached = self._cache.get(telegram_user_id)
        if (
            cached is not None
            and time.monotonic() - cached.fetched < self.cache_seconds
            and cached.profile.chat_id == chat_id
            and not cached.profile.blocked_bot
            and now - cached.seen_written < _SEEN_EVERY
        ):
            return cached.profile
        async with self._gate, self.sessions() as session:
            row = await self._load(session, telegram_user_id)
            if row is None:
                row = Resident(
                    telegram_user_id=telegram_user_id,
                    chat_id=chat_id,
                    language=language_from_telegram(language_hint),
                    display_name=display_name[:200],
                    created_at=now,
                    last_seen_at=now,
                )
                session.add(row)
                try:
                    await session.commit()
                except IntegrityError:
                    # Two first messages at once: the other one created the resident.
                    await session.rollback()
                    row = await self._load(session, telegram_user_id)
                    assert row is not None
            else:
                row.chat_id = chat_id
                row.last_seen_at = now
                row.blocked_bot = False
                if display_name:
                    row.display_name = display_name[:200]
                await session.commit()
            return self._remember(self._profile(row), now)

    @staticmethod
    async def _load(session: AsyncSession, telegram_user_id: int) -> Resident | None:
        result = await session.execute(
            select(Resident).where(Resident.telegram_user_id == telegram_user_id)
        )
        return result.scalar_one_or_none()

    async def set_language(self, telegram_user_id: int, language: str) -> None:
        """Store the resident's language (a code from bot.i18n.LANGUAGES)."""
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        async with self._gate, self.sessions() as session:
            await session.execute(
                update(Resident)
                .where(Resident.telegram_user_id == telegram_user_id)
                .values(language=language)
            )
            await session.commit()
        cached = self._cache.get(telegram_user_id)
        if cached is not None:
            cached.profile = replace(cached.profile, language=language)

    async def mark_blocked(self, telegram_user_id: int, blocked: bool) -> None:
        """Note that the resident blocked (or unblocked) the bot, so nobody keeps writing."""
        async with self._gate, self.sessions() as session:
            await session.execute(
                update(Resident)
                .where(Resident.telegram_user_id == telegram_user_id)
                .values(blocked_bot=blocked)
            )
            await session.commit()
        self._cache.pop(telegram_user_id, None)

    async def by_id(self, resident_id: int) -> ResidentProfile | None:
        """Return a resident by database id (for answers that arrive later)."""
        async with self.sessions() as session:
            row = await session.get(Resident, resident_id)
            return None if row is None else self._profile(row)

    def forget_cache(self) -> None:
        """Drop the cache (after another process may have changed residents)."""
        self._cache.clear()
