"""Deadlines of tickets, counted in working days of the official Chinese calendar.

The calendar is the `chinesecalendar` package (the State Council's yearly holiday notices,
adjusted working days 调休 included), corrected by [calendar] in config.toml. The package only
knows the years up to its last release; for a later year the deployment lists that year's
holidays and working weekends in config.toml and names the year in `configured_years`. Until
it does, Monday to Friday count as working days except the fixed-date statutory holidays, and a
warning is logged once per year, so an operator sees it before a resident is given a wrong date.

A deadline of N working days is the end (23:59:59 local time) of the N-th working day after
the day the clock starts; the day of receipt itself is not counted, as the law counts it. Zero
days means the end of the same day, or of the next working day when that day is not one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from bot.core.config import CalendarSettings, DeadlineDays, TicketSettings, TicketType

log = logging.getLogger(__name__)

DaySource = Literal["official", "configured", "fallback"]

_OFFICIAL_YEARS = {day.year for day in chinese_calendar.constants.holidays}
OFFICIAL_FIRST_YEAR = min(_OFFICIAL_YEARS)
OFFICIAL_LAST_YEAR = max(_OFFICIAL_YEARS)

# Statutory holidays on fixed solar dates (全国年节及纪念日放假办法, as revised in 2024): New
# Year's Day, Labour Day and National Day. The fallback keeps them; the lunar holidays (Spring
# Festival, Qingming, Dragon Boat, Mid-Autumn) and each year's adjusted days need the notice.
FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})
# No working-day count in a ticket's life gets near this; it stops a runaway loop on bad input.
_MAX_DAYS = 400
_END_OF_DAY = dt.time(23, 59, 59)


def time_zone(name: str) -> dt.tzinfo:
    """Return a time zone by name; China's (no summer time since 1991) works without tzdata."""
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        if name in ("Asia/Shanghai", "Asia/Chongqing", "PRC"):
            return dt.timezone(dt.timedelta(hours=8), "CST")
        raise


class WorkCalendar:
    """Tells working days from rest days: the official calendar plus the deployment's lists."""

    def __init__(
        self,
        extra_holidays: Iterable[dt.date] = (),
        extra_workdays: Iterable[dt.date] = (),
        configured_years: Iterable[int] = (),
    ) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        both = self.extra_holidays & self.extra_workdays
        if both:
            listed = ", ".join(sorted(str(d) for d in both))
            raise ValueError(f"[calendar] lists these days as holiday and as workday: {listed}")
        self.configured_years = frozenset(configured_years)
        self._warned_years: set[int] = set()

    @classmethod
    def from_settings(cls, settings: CalendarSettings) -> WorkCalendar:
        """Build the calendar from the [calendar] section."""
        return cls(settings.extra_holidays, settings.extra_workdays, settings.configured_years)

    def source_of(self, day: dt.date) -> DaySource:
        """Say what decides whether `day` is a working day."""
        if day in self.extra_holidays or day in self.extra_workdays:
            return "configured"
        if OFFICIAL_FIRST_YEAR <= day.year <= OFFICIAL_LAST_YEAR:
            return "official"
        if day.year in self.configured_years:
            return "configured"
        return "fallback"

    def is_working_day(self, day: dt.date) -> bool:
        """Tell whether government offices work on `day`."""
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        source = self.source_of(day)
        if source == "official":
            return bool(chinese_calendar.is_workday(day))
        if source == "fallback":
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                log.warning(
                    "the holiday calendar does not know %d (chinesecalendar covers %d-%d): "
                    "counting Monday to Friday except New Year's Day, Labour Day and National "
                    "Day as working days. List that year's holidays and adjusted working days "
                    "under [calendar] in config.toml and add %d to configured_years.",
                    day.year,
                    OFFICIAL_FIRST_YEAR,
                    OFFICIAL_LAST_YEAR,
                    day.year,
                )
            if (day.month, day.day) in FIXED_HOLIDAYS:
                return False
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """Return the `days`-th working day after `start` (0: `start` or the next working day)."""
        if days < 0:
            raise ValueError("days must not be negative")
        day = start
        if days == 0:
            for _ in range(_MAX_DAYS):
                if self.is_working_day(day):
                    return day
                day += dt.timedelta(days=1)
            raise ValueError(f"no working day within {_MAX_DAYS} days of {start}")
        counted = 0
        for _ in range(_MAX_DAYS + days * 3):
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted == days:
                    return day
        raise ValueError(f"cannot count {days} working days from {start}")

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Count the working days after `start` up to and including `end` (negative if before)."""
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def sources_between(self, start: dt.date, end: dt.date) -> set[DaySource]:
        """Return what decided the days from `start` to `end` (to record with a deadline)."""
        sources: set[DaySource] = set()
        day = start
        while day <= end:
            sources.add(self.source_of(day))
            day += dt.timedelta(days=1)
        return sources


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The two deadlines of a ticket, and how they were counted."""

    ack: dt.datetime
    reply: dt.datetime
    ack_days: int
    reply_days: int
    # "official", "configured" or "fallback" for the days counted; fallback means unverified.
    calendar: tuple[DaySource, ...]

    def as_event_data(self, zone: dt.tzinfo) -> dict[str, object]:
        """Return the deadlines as the data of a clock event (local dates, ISO times)."""
        return {
            "ack_deadline": self.ack.isoformat(),
            "reply_deadline": self.reply.isoformat(),
            "ack_date": self.ack.astimezone(zone).date().isoformat(),
            "reply_date": self.reply.astimezone(zone).date().isoformat(),
            "ack_working_days": self.ack_days,
            "reply_working_days": self.reply_days,
            "calendar": list(self.calendar),
        }


class DeadlinePolicy:
    """Turns a ticket's type and category and a start time into its deadlines."""

    def __init__(self, settings: TicketSettings, calendar: WorkCalendar) -> None:
        self.settings = settings
        self.calendar = calendar
        self.zone = time_zone(settings.timezone)

    def days_for(self, ticket_type: TicketType, category: str) -> DeadlineDays:
        """Return the working days for a type and category; the most specific rule wins."""
        base = self.settings.deadlines[ticket_type]
        ack, reply = base.ack, base.reply
        overrides = sorted(
            (o for o in self.settings.deadline_overrides if o.category == category),
            # Rules for every type first, so that a rule for this very type overrides them.
            key=lambda o: o.type is not None,
        )
        for override in overrides:
            if override.type not in (None, ticket_type):
                continue
            ack = override.ack if override.ack is not None else ack
            reply = override.reply if override.reply is not None else reply
        return DeadlineDays(ack=ack, reply=reply)

    def local_date(self, moment: dt.datetime) -> dt.date:
        """Return the local calendar date of an aware moment."""
        return moment.astimezone(self.zone).date()

    def end_of_working_day(self, start: dt.datetime, days: int) -> dt.datetime:
        """Return the end of the `days`-th working day after the local day of `start`, in UTC."""
        day = self.calendar.add_working_days(self.local_date(start), days)
        return dt.datetime.combine(day, _END_OF_DAY, tzinfo=self.zone).astimezone(dt.UTC)

    def deadlines(self, ticket_type: TicketType, category: str, start: dt.datetime) -> Deadlines:
        """Return the acknowledgement and reply deadlines of a ticket whose clock starts now."""
        days = self.days_for(ticket_type, category)
        return self._deadlines(days.ack, days.reply, start)

    def _deadlines(self, ack_days: int, reply_days: int, start: dt.datetime) -> Deadlines:
        ack = self.end_of_working_day(start, ack_days)
        reply = self.end_of_working_day(start, reply_days)
        sources = self.calendar.sources_between(self.local_date(start), self.local_date(reply))
        return Deadlines(
            ack=ack,
            reply=reply,
            ack_days=ack_days,
            reply_days=reply_days,
            calendar=tuple(sorted(sources)),
        )

    def extended(
        self, deadline: dt.datetime, days: int
    ) -> tuple[dt.datetime, tuple[DaySource, ...]]:
        """Return a deadline moved `days` working days later, and what decided those days."""
        start = self.local_date(deadline)
        new_day = self.calendar.add_working_days(start, days)
        moved = dt.datetime.combine(new_day, _END_OF_DAY, tzinfo=self.zone).astimezone(dt.UTC)
        return moved, tuple(sorted(self.calendar.sources_between(start, new_day)))
