"""When staff are at work, so a resident can be told roughly when a person will answer.

Working days are those of `bot.core.workdays.WorkCalendar`, the calendar tickets' deadlines count
in: the official holidays and adjusted working days, and the deployment's [calendar] lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.core.workdays import WorkCalendar


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Staff hours on working days, in one time zone."""

    start: dt.time
    end: dt.time
    zone: ZoneInfo
    # The same calendar as tickets' deadlines: official holidays, adjusted working days, and
    # the deployment's [calendar] corrections.
    calendar: WorkCalendar = field(default_factory=WorkCalendar)

    @classmethod
    def parse(cls, hours: str, timezone: str, calendar: WorkCalendar | None = None) -> OfficeHours:
        """Build from "09:00-17:30", a zone name such as "Asia/Shanghai" and the calendar."""
        first, _, last = hours.partition("-")
        return cls(
            dt.time.fromisoformat(first),
            dt.time.fromisoformat(last),
            ZoneInfo(timezone),
            calendar or WorkCalendar(),
        )

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def is_open(self, moment: dt.datetime) -> bool:
        """Tell whether staff are at work at `moment` (an aware datetime)."""
        local = moment.astimezone(self.zone)
        return self.calendar.is_working_day(local.date()) and self.start <= local.time() < self.end

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        """Return when staff next start work after `moment` (now, if they are at work)."""
        local = moment.astimezone(self.zone)
        if self.is_open(local):
            return local
        day = local.date()
        if local.time() >= self.start:
            day += dt.timedelta(days=1)
        for _ in range(60):
            if self.calendar.is_working_day(day):
                return dt.datetime.combine(day, self.start, tzinfo=self.zone)
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, self.start, tzinfo=self.zone)
