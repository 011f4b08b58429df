"""The callback-data codec: every kind survives a round trip, keeps the wire format of the buttons
already in residents' chats, fits in Telegram's 64 bytes, and reads nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.telegram.callback_data import (
    BUTTON_KINDS,
    MAX_BYTES,
    BrowseCategories,
    BrowseCategory,
    BrowseItem,
    CallbackData,
    ComplaintCategory,
    ComplaintCategoryPage,
    ComplaintContact,
    ComplaintFromQuestion,
    ComplaintStep,
    ComplaintType,
    ComplaintVoice,
    DepartmentAction,
    DisclosureOutcome,
    LanguageChoice,
    LearnButton,
    LearnItem,
    MenuButton,
    PrivacyButton,
    QuestionButton,
    StaffAssign,
    SuggestionChoice,
    TicketAddInformation,
    TicketFollowup,
    TicketList,
    TicketRating,
    TicketRemedies,
    TicketServiceRating,
    TicketSolved,
    TicketView,
    category_token,
    decode_any,
    fits,
    item_token,
)

BOUNDED = settings(max_examples=60, deadline=None)

ids = st.integers(min_value=0, max_value=10**12 - 1)
pages = st.integers(min_value=0, max_value=999_999)
words = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=32)
kebab = st.from_regex(r"[a-z0-9]+(-[a-z0-9]+){0,12}", fullmatch=True)
item_ids = kebab.map(item_token)
numbers = st.from_regex(r"TS-[0-9]{4}-[0-9]{6,9}", fullmatch=True)
categories = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF), min_size=1, max_size=20
)

# One strategy per kind, over every value the bot may put on a button.
STRATEGIES: dict[type[CallbackData], st.SearchStrategy[CallbackData]] = {
    MenuButton: st.builds(MenuButton, st.sampled_from(["ask", "person", "menu", "lang"])),
    LanguageChoice: st.builds(LanguageChoice, words),
    BrowseCategories: st.builds(BrowseCategories, words, pages),
    BrowseCategory: st.builds(BrowseCategory, words, categories.map(category_token), pages),
    BrowseItem: st.builds(BrowseItem, item_ids),
    QuestionButton: st.builds(
        QuestionButton, st.sampled_from(["helpful", "not_helpful", "person", "none_fits"]), ids
    ),
    SuggestionChoice: st.builds(SuggestionChoice, ids, item_ids),
    LearnButton: st.builds(LearnButton, st.sampled_from(["offer", "cancel"]), ids),
    LearnItem: st.builds(LearnItem, ids, item_ids),
    ComplaintStep: st.builds(
        ComplaintStep, st.sampled_from(["start", "cancel", "back", "next", "own", "submit"])
    ),
    ComplaintType: st.builds(ComplaintType, words),
    ComplaintCategory: st.builds(ComplaintCategory, categories),
    ComplaintCategoryPage: st.builds(ComplaintCategoryPage, pages),
    ComplaintContact: st.builds(ComplaintContact, words),
    ComplaintVoice: st.builds(ComplaintVoice, numbers),
    ComplaintFromQuestion: st.builds(ComplaintFromQuestion, ids),
    TicketList: st.builds(TicketList, st.none() | pages),
    TicketView: st.builds(TicketView, ids),
    TicketAddInformation: st.builds(TicketAddInformation, ids),
    TicketSolved: st.builds(TicketSolved, ids, st.booleans()),
    TicketRating: st.builds(TicketRating, ids, st.booleans(), st.integers(1, 5)),
    TicketServiceRating: st.builds(TicketServiceRating, ids, st.integers(1, 5)),
    TicketRemedies: st.builds(TicketRemedies, ids),
    TicketFollowup: st.builds(TicketFollowup, st.sampled_from(["skip", "stop"])),
    DepartmentAction: st.builds(
        DepartmentAction, st.sampled_from(["ack", "reply", "back", "ask", "ext"]), numbers
    ),
    DisclosureOutcome: st.builds(DisclosureOutcome, numbers, words),
    StaffAssign: st.builds(StaffAssign, ids, kebab.filter(lambda k: len(k) <= 40)),
    PrivacyButton: st.builds(PrivacyButton, st.sampled_from(["forget", "keep"])),
}


def test_every_kind_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(BUTTON_KINDS)


@pytest.mark.parametrize("kind", BUTTON_KINDS, ids=lambda kind: kind.__name__)
@BOUNDED
@given(data=st.data())
def test_every_kind_survives_a_round_trip_within_64_bytes(
    kind: type[CallbackData], data: st.DataObject
) -> None:
    button = data.draw(STRATEGIES[kind])
    encoded = button.encode()
    assert len(encoded.encode()) <= MAX_BYTES
    assert kind.decode(encoded) == button
    # No other kind reads it: what a button is does not depend on who asks.
    assert decode_any(encoded) == button
    assert kind.matches(encoded)


# The wire format of buttons already in residents' chats, as the bot has always written it.
WIRE_FORMAT: list[tuple[CallbackData, str]] = [
    (MenuButton("ask"), "m:ask"),
    (MenuButton("person"), "m:person"),
    (MenuButton("menu"), "m:menu"),
    (MenuButton("lang"), "m:lang"),
    (LanguageChoice("zh"), "lang:zh"),
    (LanguageChoice("en"), "lang:en"),
    (BrowseCategories("guide", 0), "b:k:guide:0"),
    (BrowseCategories("disclosure", 3), "b:k:disclosure:3"),
    (BrowseCategory("guide", category_token("户籍与身份证"), 1), "b:c:guide:2a6fd619f6:1"),
    (BrowseItem("temporary-id-card"), "b:i:temporary-id-card"),
    (BrowseItem(item_token("x" * 41)), "b:i:#9dc0da3613af850c"),
    (QuestionButton("helpful", 1), "q:h:1"),
    (QuestionButton("not_helpful", 1), "q:n:1"),
    (QuestionButton("person", 12), "q:p:12"),
    (QuestionButton("none_fits", 12), "q:x:12"),
    (SuggestionChoice(12, "id-card-replacement"), "q:c:12:id-card-replacement"),
    (LearnButton("offer", 5), "s:l:5"),
    (LearnButton("cancel", 5), "s:c:5"),
    (LearnItem(5, "id-card-replacement"), "s:L:5:id-card-replacement"),
    (ComplaintStep("start"), "cmp:start"),
    (ComplaintStep("cancel"), "cmp:cancel"),
    (ComplaintStep("back"), "cmp:back"),
    (ComplaintStep("next"), "cmp:next"),
    (ComplaintStep("own"), "cmp:own"),
    (ComplaintStep("submit"), "cmp:submit"),
    (ComplaintType("disclosure"), "cmp:t:disclosure"),
    (ComplaintCategory("市容环境"), "cmp:c:市容环境"),
    (ComplaintCategoryPage(2), "cmp:cp:2"),
    (ComplaintContact("anon"), "cmp:k:anon"),
    (ComplaintVoice("TS-2026-000123"), "cmp:v:TS-2026-000123"),
    (ComplaintFromQuestion(12), "cmp:q:12"),
    (ComplaintFromQuestion(10**12 - 1), "cmp:q:999999999999"),
    (TicketList(), "tkt:start"),
    (TicketList(0), "tkt:p:0"),
    (TicketList(4), "tkt:p:4"),
    (TicketView(7), "tkt:v:7"),
    (TicketAddInformation(7), "tkt:add:7"),
    (TicketSolved(7, True), "tkt:s:7:1"),
    (TicketSolved(7, False), "tkt:s:7:0"),
    (TicketRating(7, False, 2), "tkt:rt:7:0:2"),
    (TicketServiceRating(7, 4), "tkt:sr:7:4"),
    (TicketRemedies(7), "tkt:rm:7"),
    (TicketFollowup("skip"), "tkt:skip"),
    (TicketFollowup("stop"), "tkt:x"),
    (DepartmentAction("ack", "TS-2026-000123"), "dpt:ack:TS-2026-000123"),
    (DepartmentAction("ext", "TS-2026-000123"), "dpt:ext:TS-2026-000123"),
    (
        DisclosureOutcome("TS-2026-000123", "partly_disclosed"),
        "dpt:out:TS-2026-000123:partly_disclosed",
    ),
    (StaffAssign(7, "urban-management"), "stf:asg:7:urban-management"),
    (PrivacyButton("forget"), "pv:forget"),
    (PrivacyButton("keep"), "pv:keep"),
]


@pytest.mark.parametrize(("button", "wire"), WIRE_FORMAT, ids=[w for _, w in WIRE_FORMAT])
def test_the_wire_format_is_the_one_in_residents_chats(button: CallbackData, wire: str) -> None:
    assert button.encode() == wire
    assert decode_any(wire) == button


def test_the_wire_format_covers_every_kind() -> None:
    assert {type(button) for button, _ in WIRE_FORMAT} == set(BUTTON_KINDS)


MALFORMED = [
    "",
    "zzz",
    "m:",
    "m:nothing",
    "m:ask:1",
    "lang:",
    "lang:ZH",
    "b:k:guide",
    "b:k:guide:-1",
    "b:k:guide:01",
    "b:k:guide:+1",
    "b:k:guide:1_0",
    "b:k:guide:١",
    "b:c:guide:xyz:0",
    "b:c:guide:ffffffffff",
    "b:i:",
    "b:i:a:b",
    "b:i:has space",
    "q:h:notanumber",
    "q:h:",
    "q:h:1:2",
    "q:z:1",
    "q:h:²",
    "q:h:1234567890123",
    "q:c:1",
    "q:c:1:",
    "s:l:x",
    "s:L:1",
    "s:l:1:extra",
    "s:q:1",
    "cmp:",
    "cmp:finish",
    "cmp:t:",
    "cmp:t:Report",
    "cmp:c:",
    "cmp:cp:",
    "cmp:cp:x",
    "cmp:k:",
    "cmp:v:",
    "cmp:v:TS-26-1",
    "cmp:v:../../etc",
    "cmp:q:",
    "cmp:q:x",
    "cmp:q:01",
    "cmp:q:-1",
    "cmp:q:1:2",
    "cmp:q:1234567890123",
    "tkt:",
    "tkt:p:",
    "tkt:p:x",
    "tkt:start:1",
    "tkt:v:",
    "tkt:v:-3",
    "tkt:s:7",
    "tkt:s:7:2",
    "tkt:rt:7:1",
    "tkt:rt:7:1:0",
    "tkt:rt:7:1:6",
    "tkt:rt:7:2:5",
    "tkt:skipped",
    "tkt:sr:7",
    "tkt:sr:7:0",
    "tkt:sr:7:6",
    "tkt:sr:7:1:5",
    "tkt:rm:",
    "tkt:rm:x",
    "dpt:ack",
    "dpt:ack:7",
    "dpt:zzz:TS-2026-000123",
    "dpt:out:TS-2026-000123",
    "dpt:out:TS-2026-000123:",
    "stf:asg:7",
    "stf:asg:7:",
    "stf:asg:x:urban-management",
    "cmp:c:" + "长" * 30,
    "q:h:1\n",
    " q:h:1",
]


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed_or_forged_data_reads_as_nothing(data: str) -> None:
    assert decode_any(data) is None
    assert not any(kind.matches(data) for kind in BUTTON_KINDS)


@pytest.mark.parametrize("data", [None, 7, b"q:h:1", ["q:h:1"]])
def test_data_that_is_not_a_string_reads_as_nothing(data: object) -> None:
    assert decode_any(data) is None


@BOUNDED
@given(st.text(max_size=80) | st.from_regex(r"(m|lang|b|q|s|cmp|tkt|dpt|stf)(:[^:]{0,20}){0,4}"))
def test_whatever_is_read_is_exactly_what_encode_writes(data: str) -> None:
    button = decode_any(data)
    if button is not None:
        assert button.encode() == data


def test_more_than_64_bytes_is_refused_both_ways() -> None:
    too_long = ComplaintCategory("长" * 20)  # 6 + 60 bytes
    assert not too_long.fits()
    with pytest.raises(ValueError, match="64 bytes"):
        too_long.encode()
    assert ComplaintCategory.decode("cmp:c:" + "长" * 20) is None
    assert ComplaintCategory("长" * 19).fits()
    assert fits("x" * 64)
    assert not fits("x" * 65)


def test_a_department_id_too_long_leaves_a_button_answered_as_expired() -> None:
    data = StaffAssign(7, "x" * 60).encode()
    assert data == "stf:asg:7:"
    assert decode_any(data) is None


def test_long_item_ids_travel_as_a_hash() -> None:
    assert item_token("id-card-replacement") == "id-card-replacement"
    long_id = "a" * 41
    token = item_token(long_id)
    assert token.startswith("#")
    assert len(token) == 17
    assert fits(LearnItem(10**12 - 1, token).encode())
    assert category_token("户籍与身份证") == category_token("户籍与身份证")
    assert len(category_token("户籍与身份证")) == 10
