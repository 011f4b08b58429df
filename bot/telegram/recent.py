"""What each resident was shown last, for the next message: the card ("多少钱" is about it), the
question answered ("不对" offers a person for it) and the choice offered ("第二个" picks from it).

Kept in the process's memory, not in the persisted user_data: it changes with nearly every answer,
and writing it would cost a database write per question (bot/telegram/persistence.py writes
user_data whenever it changes). After a restart or a takeover it is simply empty: a follow-up
then asks which service is meant, as it does when nothing was shown. Entries last half an hour;
the least recently used residents give way beyond `capacity`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

# How long what a resident was shown stays the subject of their next messages.
RECENT_SECONDS = 30 * 60


@dataclass(slots=True)
class _Shown:
    item: tuple[str, float] | None = None
    question: tuple[int, float] | None = None
    choice: tuple[int, tuple[str, ...], float] | None = None


@dataclass(slots=True)
class RecentlyShown:
    """Per resident (by their id): the card, the question and the choice shown last."""

    capacity: int = 20_000
    _residents: OrderedDict[int, _Shown] = field(default_factory=OrderedDict)

    def _entry(self, resident_id: int) -> _Shown:
        entry = self._residents.get(resident_id)
        if entry is None:
            entry = self._residents[resident_id] = _Shown()
            while len(self._residents) > self.capacity:
                self._residents.popitem(last=False)
        else:
            self._residents.move_to_end(resident_id)
        return entry

    @staticmethod
    def _fresh(at: float) -> bool:
        return 0 <= time.monotonic() - at <= RECENT_SECONDS

    def note_item(self, resident_id: int, item_id: str) -> None:
        self._entry(resident_id).item = (item_id, time.monotonic())

    def note_question(self, resident_id: int, question_id: int) -> None:
        self._entry(resident_id).question = (question_id, time.monotonic())

    def note_choice(self, resident_id: int, question_id: int, items: list[str]) -> None:
        self._entry(resident_id).choice = (question_id, tuple(items), time.monotonic())

    def item(self, resident_id: int) -> str | None:
        """The item whose card the resident saw in the last half hour."""
        entry = self._residents.get(resident_id)
        if entry is None or entry.item is None or not self._fresh(entry.item[1]):
            return None
        return entry.item[0]

    def question(self, resident_id: int) -> int | None:
        """The question answered with a card or a choice in the last half hour."""
        entry = self._residents.get(resident_id)
        if entry is None or entry.question is None or not self._fresh(entry.question[1]):
            return None
        return entry.question[0]

    def choice(self, resident_id: int) -> tuple[int, tuple[str, ...]] | None:
        """The question and items (in order) of the choice offered in the last half hour."""
        entry = self._residents.get(resident_id)
        if entry is None or entry.choice is None or not self._fresh(entry.choice[2]):
            return None
        return entry.choice[0], entry.choice[1]
