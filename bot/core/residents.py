"""Residents: who talks to the bot, their private chat, and the language they chose.

Every update from a resident needs their language, so profiles are cached in memory; the
database is written only when something changes or `last_seen_at` is old enough to matter.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.db import GroupCommit, conflict_insert, storable, write_gate
from bot.core.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bot.core.models import Resident, utcnow

_SEEN_EVERY = dt.timedelta(minutes=10)
# Most residents written in one statement.
_BATCH = 200


@dataclass(frozen=True, slots=True)
class ResidentProfile:
    """What the bot needs to know about a resident on every message."""

    id: int
    telegram_user_id: int
    chat_id: int
    language: str
    blocked_bot: bool = False
    # The privacy notice was shown (bot/core/models.py Resident.privacy_notice_at).
    privacy_noticed: bool = True


def language_from_telegram(language_code: str | None) -> str:
    """Guess a first language from Telegram's client language: English clients get English."""
    if language_code and language_code.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


def _upsert(dialect: str) -> Any:
    """INSERT a resident, or note that a known one was seen (their language stays theirs)."""
    insert = conflict_insert(dialect)
    statement = insert(Resident)
    return statement.on_conflict_do_update(
        index_elements=[Resident.telegram_user_id],
        set_={
            "chat_id": statement.excluded.chat_id,
            "last_seen_at": statement.excluded.last_seen_at,
            "blocked_bot": False,
            "display_name": func.coalesce(
                func.nullif(statement.excluded.display_name, ""), Resident.display_name
            ),
        },
    )


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
        self._upsert = _upsert(sessions.kw["bind"].dialect.name)
        self._pending: GroupCommit[dict[str, Any], ResidentProfile] = GroupCommit(
            self._write, batch=_BATCH, name="residents"
        )

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
            privacy_noticed=row.privacy_notice_at is not None,
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
        row = {
            "telegram_user_id": telegram_user_id,
            "chat_id": chat_id,
            "language": language_from_telegram(language_hint),
            "display_name": storable(display_name)[:200],
            "created_at": now,
            "last_seen_at": now,
            "blocked_bot": False,
        }
        return await self._pending.submit(row)

    async def _write(self, batch: list[dict[str, Any]]) -> list[ResidentProfile]:
        # Group commit, as for questions: residents who write at once (a burst of newcomers
        # after an announcement) are created or noted as seen in one statement and one commit.
        # One row per resident: the last of their messages says where they are now, the last
        # name given is their name.
        merged: dict[int, dict[str, Any]] = {}
        for row in batch:
            earlier = merged.get(row["telegram_user_id"])
            if earlier is not None and not row["display_name"]:
                row = {**row, "display_name": earlier["display_name"]}
            merged[row["telegram_user_id"]] = row
        # In one order everywhere: two processes upserting the same residents then take their
        # row locks in the same order and cannot deadlock (PostgreSQL).
        rows = [merged[user_id] for user_id in sorted(merged)]
        async with self._gate, self.sessions() as session:
            await session.execute(self._upsert, rows)
            found = await session.scalars(
                select(Resident).where(
                    Resident.telegram_user_id.in_([r["telegram_user_id"] for r in rows])
                )
            )
            profiles = {r.telegram_user_id: self._profile(r) for r in found}
            await session.commit()
        return [
            self._remember(profiles[row["telegram_user_id"]], row["last_seen_at"]) for row in batch
        ]

    async def set_language(self, telegram_user_id: int, language: str) -> None:
        """Store the resident's language (a code from bot.core.i18n.LANGUAGES)."""
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

    async def mark_noticed(self, telegram_user_id: int, at: dt.datetime | None = None) -> None:
        """Note that the resident was shown the privacy notice (first contact, once)."""
        moment = at or utcnow()
        async with self._gate, self.sessions() as session:
            await session.execute(
                update(Resident)
                .where(
                    Resident.telegram_user_id == telegram_user_id,
                    Resident.privacy_notice_at.is_(None),
                )
                .values(privacy_notice_at=moment)
            )
            await session.commit()
        cached = self._cache.get(telegram_user_id)
        if cached is not None:
            cached.profile = replace(cached.profile, privacy_noticed=True)

    def forget(self, telegram_user_id: int) -> None:
        """Drop one resident from the cache (after their data was erased)."""
        self._cache.pop(telegram_user_id, None)

    async def by_id(self, resident_id: int) -> ResidentProfile | None:
        """Return a resident by database id (for answers that arrive later)."""
        async with self.sessions() as session:
            row = await session.get(Resident, resident_id)
            return None if row is None else self._profile(row)

    def forget_cache(self) -> None:
        """Drop the cache (after another process may have changed residents)."""
        self._cache.clear()
