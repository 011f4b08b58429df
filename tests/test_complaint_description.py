"""The complaint form checks a description with the desk's own rule, the one filing applies."""

from __future__ import annotations

import pytest

from bot.services import Services
from bot.tickets.desk import InvalidTicketInput, TicketDraft


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        (" \u200b \n ", "empty"),
        ("垃圾", "too_short"),
        ("很" * 2001, "too_long"),
        ("  小区门口的垃圾\r\n三天没人清运了  ", None),
    ],
)
async def test_the_form_and_filing_agree_on_a_description(
    services: Services, text: str, code: str | None
) -> None:
    desk = services.tickets
    draft = TicketDraft(type="complaint", category="市容环境", description=text, resident_id=None)
    if code is None:
        cleaned = desk.clean_description(text)
        assert cleaned == "小区门口的垃圾\n三天没人清运了"
        assert desk.validate_draft(draft).description == cleaned
        return
    with pytest.raises(InvalidTicketInput) as in_the_form:
        desk.clean_description(text)
    with pytest.raises(InvalidTicketInput) as at_filing:
        desk.validate_draft(draft)
    assert in_the_form.value.code == at_filing.value.code == code
