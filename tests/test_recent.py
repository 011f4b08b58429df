"""What each resident was shown last, kept in memory for their next message
(bot/telegram/recent.py): it expires after half an hour and the least recently used residents
give way beyond the capacity."""

from __future__ import annotations

import pytest

from bot.telegram import recent
from bot.telegram.recent import RECENT_SECONDS, RecentlyShown


def test_each_resident_has_their_own_card_question_and_choice() -> None:
    shown = RecentlyShown()
    shown.note_item(1, "id-card-replacement")
    shown.note_question(1, 10)
    shown.note_choice(2, 11, ["a", "b"])

    assert (shown.item(1), shown.question(1), shown.choice(1)) == ("id-card-replacement", 10, None)
    assert (shown.item(2), shown.question(2), shown.choice(2)) == (None, None, (11, ("a", "b")))
    assert shown.item(3) is None


def test_what_was_shown_expires_after_half_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    shown = RecentlyShown()
    shown.note_item(1, "passport-application")
    shown.note_choice(1, 5, ["x"])

    now[0] += RECENT_SECONDS
    assert shown.item(1) == "passport-application"
    now[0] += 1
    assert shown.item(1) is None
    assert shown.choice(1) is None


def test_the_least_recently_used_resident_gives_way() -> None:
    shown = RecentlyShown(capacity=2)
    shown.note_item(1, "a")
    shown.note_item(2, "b")
    shown.note_question(1, 7)  # 1 is used again: 2 is now the least recently used
    shown.note_item(3, "c")

    assert (shown.item(1), shown.item(2), shown.item(3)) == ("a", None, "c")
