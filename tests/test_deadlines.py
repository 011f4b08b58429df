"""Deadlines in working days of the official calendar: Spring Festival, National Day, 调休, 2027+."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from bot.core.config import CalendarSettings, DeadlineOverride, TicketSettings
from bot.core.workdays import OFFICIAL_LAST_YEAR, DeadlinePolicy, WorkCalendar, time_zone

CHINA = time_zone("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=CHINA)


def policy(**tickets: object) -> DeadlinePolicy:
    return DeadlinePolicy(TicketSettings(**tickets), WorkCalendar())  # type: ignore[arg-type]


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CHINA).date()


def test_the_spring_festival_week_is_not_counted_but_its_working_saturdays_are() -> None:
    calendar = WorkCalendar()
    # 2026: 15-23 February off; Saturday 14 and Saturday 28 February are working days (调休).
    assert calendar.is_working_day(dt.date(2026, 2, 14))
    assert not calendar.is_working_day(dt.date(2026, 2, 16))
    assert calendar.is_working_day(dt.date(2026, 2, 28))
    deadlines = policy().deadlines("complaint", "市容环境", local(2026, 2, 13))
    assert local_day(deadlines.ack) == dt.date(2026, 2, 14)
    assert local_day(deadlines.reply) == dt.date(2026, 3, 12)
    assert deadlines.calendar == ("official",)


def test_national_day_golden_week_and_its_adjusted_sunday() -> None:
    calendar = WorkCalendar()
    # Sunday 20 September and Saturday 10 October 2026 are working days; 1-7 October are not.
    assert calendar.add_working_days(dt.date(2026, 9, 19), 1) == dt.date(2026, 9, 20)
    assert calendar.add_working_days(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    assert calendar.add_working_days(dt.date(2026, 9, 30), 5) == dt.date(2026, 10, 13)
    application = policy().deadlines("disclosure", "依申请公开", local(2026, 9, 30))
    assert local_day(application.reply) == dt.date(2026, 11, 3)
    assert application.reply_days == 20


def test_a_deadline_is_the_end_of_the_local_working_day() -> None:
    deadlines = policy().deadlines("help", "社会救助", local(2026, 11, 26, 23))
    reply_local = deadlines.reply.astimezone(CHINA)
    assert (reply_local.date(), reply_local.time()) == (dt.date(2026, 12, 3), dt.time(23, 59, 59))
    assert deadlines.reply.tzinfo == dt.UTC


def test_zero_days_means_today_or_the_next_working_day() -> None:
    calendar = WorkCalendar()
    assert calendar.add_working_days(dt.date(2026, 11, 26), 0) == dt.date(2026, 11, 26)
    assert calendar.add_working_days(dt.date(2026, 10, 1), 0) == dt.date(2026, 10, 8)


def test_working_days_between_counts_both_ways() -> None:
    calendar = WorkCalendar()
    assert calendar.working_days_between(dt.date(2026, 9, 30), dt.date(2026, 10, 13)) == 5
    assert calendar.working_days_between(dt.date(2026, 10, 13), dt.date(2026, 9, 30)) == -5


def test_a_year_the_package_does_not_know_falls_back_to_weekdays_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    later = OFFICIAL_LAST_YEAR + 1
    calendar = WorkCalendar()
    with caplog.at_level(logging.WARNING, logger="bot.core.workdays"):
        first_monday = next(
            dt.date(later, 1, d) for d in range(1, 8) if dt.date(later, 1, d).weekday() == 0
        )
        assert calendar.is_working_day(first_monday)
        assert not calendar.is_working_day(first_monday + dt.timedelta(days=5))
        calendar.is_working_day(first_monday + dt.timedelta(days=1))
    warnings = [r for r in caplog.records if str(later) in r.getMessage()]
    assert len(warnings) == 1
    assert "configured_years" in warnings[0].getMessage()
    assert calendar.source_of(first_monday) == "fallback"


def test_configured_holidays_and_workdays_of_a_later_year_are_used_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = CalendarSettings(
        extra_holidays=(dt.date(2027, 1, 1),),
        extra_workdays=(dt.date(2027, 1, 2),),  # a Saturday, as a 调休 would be
        configured_years=(2027,),
    )
    calendar = WorkCalendar.from_settings(settings)
    with caplog.at_level(logging.WARNING, logger="bot.core.workdays"):
        assert not calendar.is_working_day(dt.date(2027, 1, 1))
        assert calendar.is_working_day(dt.date(2027, 1, 2))
        assert calendar.add_working_days(dt.date(2026, 12, 31), 1) == dt.date(2027, 1, 2)
    assert not caplog.records
    assert calendar.source_of(dt.date(2027, 3, 1)) == "configured"


def test_the_config_can_correct_the_package() -> None:
    calendar = WorkCalendar(extra_holidays=[dt.date(2026, 11, 27)])
    assert calendar.add_working_days(dt.date(2026, 11, 26), 1) == dt.date(2026, 11, 30)


def test_a_day_cannot_be_both_holiday_and_workday() -> None:
    with pytest.raises(ValueError, match="2027-01-01"):
        WorkCalendar([dt.date(2027, 1, 1)], [dt.date(2027, 1, 1)])


def test_deadlines_come_from_type_then_category_then_type_and_category() -> None:
    rules = policy(
        deadlines={"complaint": {"ack": 2, "reply": 10}},
        deadline_overrides=[
            DeadlineOverride(category="食品药品安全", reply=5),
            DeadlineOverride(category="食品药品安全", type="complaint", ack=0),
        ],
    )
    assert rules.days_for("complaint", "市容环境").model_dump() == {"ack": 2, "reply": 10}
    assert rules.days_for("complaint", "食品药品安全").model_dump() == {"ack": 0, "reply": 5}
    assert rules.days_for("report", "食品药品安全").model_dump() == {"ack": 1, "reply": 5}
    assert rules.days_for("suggestion", "市容环境").model_dump() == {"ack": 2, "reply": 20}


def test_the_law_caps_a_disclosure_application_at_twenty_working_days() -> None:
    with pytest.raises(ValueError, match="at most 20"):
        TicketSettings(deadlines={"disclosure": {"ack": 1, "reply": 25}})  # type: ignore[dict-item]


def test_an_extension_moves_the_deadline_by_working_days_across_holidays() -> None:
    rules = policy()
    deadline = dt.datetime(2026, 9, 30, 23, 59, 59, tzinfo=CHINA).astimezone(dt.UTC)
    moved, sources = rules.extended(deadline, 3)
    assert local_day(moved) == dt.date(2026, 10, 10)
    assert sources == ("official",)


def test_the_fallback_still_knows_the_fixed_date_holidays() -> None:
    calendar = WorkCalendar()
    later = OFFICIAL_LAST_YEAR + 1
    fixed = [dt.date(later, 1, 1), dt.date(later, 5, 1), dt.date(later, 10, 2)]
    assert not any(calendar.is_working_day(day) for day in fixed)
    # A configured year is exactly what the config says, nothing assumed.
    configured = WorkCalendar(configured_years=[later])
    weekday = next(day for day in fixed if day.weekday() < 5)
    assert configured.is_working_day(weekday)
