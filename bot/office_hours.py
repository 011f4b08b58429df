"""When staff are at work, so a resident can be told roughly when a person will answer.

Working days follow the official Chinese calendar (holidays and adjusted working days) where
chinesecalendar knows the year, and Monday to Friday where it does not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import chinese_calendar


def is_working_day(day: dt.date) -> bool:
    """Tell whether staff work on `day`."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Staff hours on working days, in one time zone."""

    start: dt.time
    end: dt.time
    zone: ZoneInfo

    @classmethod
    def parse(cls, hours: str, timezone: str) -> OfficeHours:
        """Build from "09:00-17:30" and a zone name such as "Asia/Shanghai"."""
        first, _, last = hours.partition("-")
        return cls(dt.time.fromisoformat(first), dt.time.fromisoformat(last), ZoneInfo(timezone))

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def is_open(self, moment: dt.datetime) -> bool:
        """Tell whether staff are at work at `moment` (an aware datetime)."""
        local = moment.astimezone(self.zone)
        return is_working_day(local.date()) and self.start <= local.time() < self.end

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        """Return when staff next start work after `moment` (now, if they are at work)."""
        local = moment.astimezone(self.zone)
        if self.is_open(local):
            return local
        day = local.date()
        if local.time() >= self.start:
            day += dt.timedelta(days=1)
        for _ in range(60):
            if is_working_day(day):
                return dt.datetime.combine(day, self.start, tzinfo=self.zone)
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, self.start, tzinfo=self.zone)
