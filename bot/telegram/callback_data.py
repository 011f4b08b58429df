"""The data behind every inline button the bot sends, built and read in one place.

Each kind of button is a small frozen dataclass: `encode()` gives the string Telegram carries
(at most 64 bytes, Telegram's limit) and `decode(data)` reads one back, or returns None for
anything that is not exactly what `encode` makes: a forged button, a truncated one, one of
another kind. `decode_any(data)` tries every kind. Handlers route updates by a kind's `prefix()`
or a family's `prefix_of(...)` (regexes for `CallbackQueryHandler`, so that malformed data
still reaches the handler that answers it politely) or, where only well-formed data may enter a
step, by a kind's `matches` predicate; then they decode.

The wire format is the one buttons already sitting in residents' chats carry, so it must not
change: docs/telegram.md and docs/tickets.md describe what each button does.

    m:<ask|person|menu|lang>                 main menu                  (handlers/start.py)
    lang:<language>                          language choice            (handlers/start.py)
    b:k:<kind>:<page>                        categories of a kind       (handlers/browse.py)
    b:c:<kind>:<category token>:<page>       items of a category        (handlers/browse.py)
    b:i:<item token>                         an item's card             (handlers/browse.py)
    q:<h|n|p|x>:<question>                   under answers, suggestions (handlers/questions.py)
    q:c:<question>:<item token>              a suggested item chosen    (handlers/questions.py)
    s:l:<escalation> | s:c:<escalation>      learn this phrasing/cancel (handlers/staff.py)
    s:L:<escalation>:<item token>            learn it as this item      (handlers/staff.py)
    cmp:<start|cancel|back|next|own|submit>  the complaint form's steps (handlers/complaints.py)
    cmp:t:<type> | cmp:c:<category> | cmp:cp:<page> | cmp:k:<contact> | cmp:v:<ticket number>
    cmp:q:<question>                         file a question as a ticket
    tkt:start | tkt:p:<page>                 my tickets                 (handlers/status.py)
    tkt:v:<id> | tkt:add:<id> | tkt:s:<id>:<1|0> | tkt:rt:<id>:<1|0>:<stars> | tkt:skip | tkt:x
    tkt:sr:<id>:<stars> | tkt:rm:<id>        a disclosure answer: rate the service, the remedies
    dpt:<ack|reply|back|ask|ext>:<number>    a department's ticket card (handlers/departments.py)
    dpt:out:<number>:<outcome>               how a disclosure application was answered
    stf:asg:<ticket id>:<department>         route a triage ticket      (handlers/departments.py)
    pv:<forget|keep>                         /forget confirmed or not   (handlers/privacy.py)

Values whose meaning lives elsewhere (a ticket type, a category, a department, an outcome) are
checked here only for their form; the handlers check that they exist.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, Self, TypeAlias

from telegram import InlineKeyboardButton

# Telegram's limit on callback data, in bytes of UTF-8.
MAX_BYTES = 64
# Item ids up to this long travel as they are; longer ones as a hash.
MAX_PLAIN_ITEM_ID = 40

_NUMBER = r"0|[1-9][0-9]{0,11}"  # database ids: canonical decimal, at most 12 digits
_PAGE = r"0|[1-9][0-9]{0,5}"
_ITEM = r"[^:\s]{1,64}"  # item tokens: an item id or "#" and a hash
_WORD = r"[a-z_]{1,32}"  # kinds, types, contact modes, outcomes, languages
_TICKET_NUMBER = r"TS-[0-9]{4}-[0-9]{6,9}"


def _digest(text: str, size: int) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:size]


def category_token(category: str) -> str:
    """Return a short, stable token for a category name (Chinese names would not fit)."""
    return _digest(category, 10)


def item_token(item_id: str) -> str:
    """Return the item id, or a short hash of it when it is too long for callback data."""
    return item_id if len(item_id) <= MAX_PLAIN_ITEM_ID else "#" + _digest(item_id, 16)


def fits(data: str) -> bool:
    """Tell whether a string fits in Telegram's callback data."""
    return len(data.encode("utf-8")) <= MAX_BYTES


class _Button(abc.ABC):
    """What every kind shares: the wire regex, decoding, routing."""

    __slots__ = ()
    # The whole of the data, with a named group per field.
    WIRE: ClassVar[re.Pattern[str]]
    # The fixed start shared by every value of the kind (for routing by prefix).
    PREFIX: ClassVar[str]

    def encode(self) -> str:
        """Return the callback data; ValueError if it would not fit in 64 bytes."""
        data = self._wire()
        if not fits(data):
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data[:80]!r}")
        return data

    @abc.abstractmethod
    def _wire(self) -> str:
        """The data of this value (each kind writes its own fields)."""

    @classmethod
    @abc.abstractmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        """The value of the wire regex's named groups (each kind reads its own fields)."""

    @classmethod
    def decode(cls, data: object) -> Self | None:
        """Read callback data of this kind; None for anything `encode` would not have made."""
        if not isinstance(data, str) or not fits(data):
            return None
        found = cls.WIRE.fullmatch(data)
        if found is None:
            return None
        return cls._build(found.groupdict())

    @classmethod
    def matches(cls, data: object) -> bool:
        """Tell whether `data` is a well-formed button of this kind (a handler pattern)."""
        return cls.decode(data) is not None

    @classmethod
    def prefix(cls) -> str:
        """Return the regex that routes every button of this kind, well-formed or not."""
        return "^" + re.escape(cls.PREFIX)


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


# -- the main menu and the language -----------------------------------------------------------

MenuAction = Literal["ask", "person", "menu", "lang"]


@dataclass(frozen=True, slots=True)
class MenuButton(_Button):
    """A main-menu button handled by the menu itself."""

    action: MenuAction
    PREFIX: ClassVar[str] = "m:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(r"m:(?P<action>ask|person|menu|lang)")

    def _wire(self) -> str:
        return f"m:{self.action}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["action"])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LanguageChoice(_Button):
    """Talk to me in this language."""

    language: str
    PREFIX: ClassVar[str] = "lang:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"lang:(?P<language>{_WORD})")

    def _wire(self) -> str:
        return f"lang:{self.language}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["language"])


# -- browsing the knowledge base --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrowseCategories(_Button):
    """A page of the categories of guides or disclosure items."""

    kind: str
    page: int = 0
    PREFIX: ClassVar[str] = "b:k:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"b:k:(?P<kind>{_WORD}):(?P<page>{_PAGE})")

    def _wire(self) -> str:
        return f"b:k:{self.kind}:{self.page}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["kind"], int(fields["page"]))


@dataclass(frozen=True, slots=True)
class BrowseCategory(_Button):
    """A page of one category's items; the category travels as `category_token`."""

    kind: str
    category: str
    page: int = 0
    PREFIX: ClassVar[str] = "b:c:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(
        rf"b:c:(?P<kind>{_WORD}):(?P<category>[0-9a-f]{{1,32}}):(?P<page>{_PAGE})"
    )

    def _wire(self) -> str:
        return f"b:c:{self.kind}:{self.category}:{self.page}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["kind"], fields["category"], int(fields["page"]))


@dataclass(frozen=True, slots=True)
class BrowseItem(_Button):
    """An item's answer card; the item travels as `item_token`."""

    item: str
    PREFIX: ClassVar[str] = "b:i:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"b:i:(?P<item>{_ITEM})")

    def _wire(self) -> str:
        return f"b:i:{self.item}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["item"])


# -- answers and suggestions --------------------------------------------------------------------

QuestionAction = Literal["helpful", "not_helpful", "person", "none_fits", "watch"]
_QUESTION_LETTERS: dict[str, str] = {
    "helpful": "h",
    "not_helpful": "n",
    "person": "p",
    "none_fits": "x",
    # Tell me when the knowledge base answers this question.
    "watch": "w",
}
_QUESTION_ACTIONS = {letter: action for action, letter in _QUESTION_LETTERS.items()}


@dataclass(frozen=True, slots=True)
class QuestionButton(_Button):
    """Under an answer card or a choice: helpful, not helpful, a person, none of these."""

    action: QuestionAction
    question_id: int
    PREFIX: ClassVar[str] = "q:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"q:(?P<action>[hnpxw]):(?P<question>{_NUMBER})")

    def _wire(self) -> str:
        return f"q:{_QUESTION_LETTERS[self.action]}:{self.question_id}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        action = _QUESTION_ACTIONS[fields["action"]]
        return cls(action, int(fields["question"]))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SuggestionChoice(_Button):
    """One of the items offered for a question the bot was not sure about."""

    question_id: int
    item: str
    PREFIX: ClassVar[str] = "q:c:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"q:c:(?P<question>{_NUMBER}):(?P<item>{_ITEM})")

    def _wire(self) -> str:
        return f"q:c:{self.question_id}:{self.item}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["question"]), fields["item"])


# -- the staff group: teaching the knowledge base ---------------------------------------------

LearnAction = Literal["offer", "cancel"]


@dataclass(frozen=True, slots=True)
class LearnButton(_Button):
    """Under an answered escalation: offer the items to learn it as (s:l), or cancel (s:c)."""

    action: LearnAction
    escalation_id: int
    PREFIX: ClassVar[str] = "s:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"s:(?P<action>[lc]):(?P<escalation>{_NUMBER})")

    def _wire(self) -> str:
        return f"s:{'l' if self.action == 'offer' else 'c'}:{self.escalation_id}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        action: LearnAction = "offer" if fields["action"] == "l" else "cancel"
        return cls(action, int(fields["escalation"]))


@dataclass(frozen=True, slots=True)
class LearnItem(_Button):
    """Teach the knowledge base an escalated question as a phrasing of this item."""

    escalation_id: int
    item: str
    PREFIX: ClassVar[str] = "s:L:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"s:L:(?P<escalation>{_NUMBER}):(?P<item>{_ITEM})")

    def _wire(self) -> str:
        return f"s:L:{self.escalation_id}:{self.item}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["escalation"]), fields["item"])


# -- the complaint form -----------------------------------------------------------------------------

FormStep = Literal["start", "cancel", "back", "next", "own", "submit"]


@dataclass(frozen=True, slots=True)
class ComplaintStep(_Button):
    """A step of the complaint form that carries nothing else."""

    step: FormStep
    PREFIX: ClassVar[str] = "cmp:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(r"cmp:(?P<step>start|cancel|back|next|own|submit)")

    def _wire(self) -> str:
        return f"cmp:{self.step}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["step"])  # type: ignore[arg-type]

    def pattern(self) -> Callable[[object], bool]:
        """Return the handler pattern of exactly this step."""
        data = self.encode()
        return lambda pressed: pressed == data


@dataclass(frozen=True, slots=True)
class ComplaintType(_Button):
    """The kind of ticket: complaint, report, suggestion, help request, disclosure application."""

    ticket_type: str
    PREFIX: ClassVar[str] = "cmp:t:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"cmp:t:(?P<type>{_WORD})")

    def _wire(self) -> str:
        return f"cmp:t:{self.ticket_type}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["type"])


@dataclass(frozen=True, slots=True)
class ComplaintCategory(_Button):
    """A complaint category, by its name (a category too long to fit is not offered)."""

    category: str
    PREFIX: ClassVar[str] = "cmp:c:"
    WIRE: ClassVar[re.Pattern[str]] = re.compile(r"cmp:c:(?P<category>[^\x00-\x1f]+)")

    def _wire(self) -> str:
        return f"cmp:c:{self.category}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["category"])

    def fits(self) -> bool:
        """Tell whether this category can be a button at all."""
        return fits(self._wire())


@dataclass(frozen=True, slots=True)
class ComplaintCategoryPage(_Button):
    """A page of the complaint categories."""

    page: int
    PREFIX: ClassVar[str] = "cmp:cp:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"cmp:cp:(?P<page>{_PAGE})")

    def _wire(self) -> str:
        return f"cmp:cp:{self.page}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["page"]))


@dataclass(frozen=True, slots=True)
class ComplaintContact(_Button):
    """How the resident's identity is shared: anon, share, private."""

    mode: str
    PREFIX: ClassVar[str] = "cmp:k:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"cmp:k:(?P<mode>{_WORD})")

    def _wire(self) -> str:
        return f"cmp:k:{self.mode}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["mode"])


@dataclass(frozen=True, slots=True)
class ComplaintVoice(_Button):
    """Add my voice to this open ticket instead of filing a new one."""

    number: str
    PREFIX: ClassVar[str] = "cmp:v:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"cmp:v:(?P<number>{_TICKET_NUMBER})")

    def _wire(self) -> str:
        return f"cmp:v:{self.number}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["number"])


@dataclass(frozen=True, slots=True)
class ComplaintFromQuestion(_Button):
    """Start the form from a message that describes a problem: its type, category and
    description filled in from the question's text (the question must be the resident's own)."""

    question_id: int
    PREFIX: ClassVar[str] = "cmp:q:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"cmp:q:(?P<question>{_NUMBER})")

    def _wire(self) -> str:
        return f"cmp:q:{self.question_id}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["question"]))


# -- my tickets ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketList(_Button):
    """The resident's tickets: the first page from the menu (tkt:start), or a given page."""

    page: int | None = None
    PREFIX: ClassVar[str] = "tkt:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"tkt:(?:start|p:(?P<page>{_PAGE}))")

    def _wire(self) -> str:
        return "tkt:start" if self.page is None else f"tkt:p:{self.page}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        page = fields["page"]
        return cls(None if page is None else int(page))


@dataclass(frozen=True, slots=True)
class TicketView(_Button):
    """One ticket with its timeline."""

    ticket_id: int
    PREFIX: ClassVar[str] = "tkt:v:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"tkt:v:(?P<ticket>{_NUMBER})")

    def _wire(self) -> str:
        return f"tkt:v:{self.ticket_id}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]))


@dataclass(frozen=True, slots=True)
class TicketAddInformation(_Button):
    """Add information to a ticket the department asked about."""

    ticket_id: int
    PREFIX: ClassVar[str] = "tkt:add:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"tkt:add:(?P<ticket>{_NUMBER})")

    def _wire(self) -> str:
        return f"tkt:add:{self.ticket_id}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]))


@dataclass(frozen=True, slots=True)
class TicketSolved(_Button):
    """After a reply: was the problem solved?"""

    ticket_id: int
    solved: bool
    PREFIX: ClassVar[str] = "tkt:s:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"tkt:s:(?P<ticket>{_NUMBER}):(?P<solved>[01])")

    def _wire(self) -> str:
        return f"tkt:s:{self.ticket_id}:{int(self.solved)}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]), fields["solved"] == "1")


@dataclass(frozen=True, slots=True)
class TicketRating(_Button):
    """The stars (1 to 5) given after "solved?"."""

    ticket_id: int
    solved: bool
    stars: int
    PREFIX: ClassVar[str] = "tkt:rt:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(
        rf"tkt:rt:(?P<ticket>{_NUMBER}):(?P<solved>[01]):(?P<stars>[1-5])"
    )

    def _wire(self) -> str:
        if not 1 <= self.stars <= 5:
            raise ValueError(f"a rating has 1 to 5 stars, not {self.stars}")
        return f"tkt:rt:{self.ticket_id}:{int(self.solved)}:{self.stars}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]), fields["solved"] == "1", int(fields["stars"]))


@dataclass(frozen=True, slots=True)
class TicketServiceRating(_Button):
    """The stars (1 to 5) for the service of a disclosure application: its answer is a decision
    contested by review or lawsuit, so "solved?" is never asked."""

    ticket_id: int
    stars: int
    PREFIX: ClassVar[str] = "tkt:sr:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"tkt:sr:(?P<ticket>{_NUMBER}):(?P<stars>[1-5])")

    def _wire(self) -> str:
        if not 1 <= self.stars <= 5:
            raise ValueError(f"a rating has 1 to 5 stars, not {self.stars}")
        return f"tkt:sr:{self.ticket_id}:{self.stars}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]), int(fields["stars"]))


@dataclass(frozen=True, slots=True)
class TicketRemedies(_Button):
    """What a disclosure applicant who disagrees with the answer can do (review, lawsuit)."""

    ticket_id: int
    PREFIX: ClassVar[str] = "tkt:rm:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(rf"tkt:rm:(?P<ticket>{_NUMBER})")

    def _wire(self) -> str:
        return f"tkt:rm:{self.ticket_id}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]))


FollowupAction = Literal["skip", "stop"]


@dataclass(frozen=True, slots=True)
class TicketFollowup(_Button):
    """Skip the comment after a rating (tkt:skip), or stop adding information (tkt:x)."""

    action: FollowupAction
    PREFIX: ClassVar[str] = "tkt:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(r"tkt:(?P<action>skip|x)")

    def _wire(self) -> str:
        return "tkt:skip" if self.action == "skip" else "tkt:x"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls("skip" if fields["action"] == "skip" else "stop")


# -- departments and staff routing ------------------------------------------------------------

DepartmentActionName = Literal["ack", "reply", "back", "ask", "ext"]


@dataclass(frozen=True, slots=True)
class DepartmentAction(_Button):
    """A button on a department's ticket card; tickets travel by their public number."""

    action: DepartmentActionName
    number: str
    PREFIX: ClassVar[str] = "dpt:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(
        rf"dpt:(?P<action>ack|reply|back|ask|ext):(?P<number>{_TICKET_NUMBER})"
    )

    def _wire(self) -> str:
        return f"dpt:{self.action}:{self.number}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["action"], fields["number"])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class DisclosureOutcome(_Button):
    """How a department answered a disclosure application, chosen before the reply text."""

    number: str
    outcome: str
    PREFIX: ClassVar[str] = "dpt:out:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(
        rf"dpt:out:(?P<number>{_TICKET_NUMBER}):(?P<outcome>{_WORD})"
    )

    def _wire(self) -> str:
        return f"dpt:out:{self.number}:{self.outcome}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["number"], fields["outcome"])


@dataclass(frozen=True, slots=True)
class StaffAssign(_Button):
    """Assign a triage ticket to this department (a button under the staff chat's alert)."""

    ticket_id: int
    department_id: str
    PREFIX: ClassVar[str] = "stf:asg:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(
        rf"stf:asg:(?P<ticket>{_NUMBER}):(?P<department>[^:\s]{{1,64}})"
    )

    def _wire(self) -> str:
        return f"stf:asg:{self.ticket_id}:{self.department_id}"

    def encode(self) -> str:
        """Return the callback data; a department id too long to fit leaves a dead button
        (answered as expired) rather than breaking the whole alert."""
        data = self._wire()
        return data if fits(data) else f"stf:asg:{self.ticket_id}:"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(int(fields["ticket"]), fields["department"])


# -- personal data ----------------------------------------------------------------------------

PrivacyAction = Literal["forget", "keep"]


@dataclass(frozen=True, slots=True)
class PrivacyButton(_Button):
    """/forget: erase my data (forget) or leave it (keep)."""

    action: PrivacyAction
    PREFIX: ClassVar[str] = "pv:"
    WIRE: ClassVar[re.Pattern[str]] = _regex(r"pv:(?P<action>forget|keep)")

    def _wire(self) -> str:
        return f"pv:{self.action}"

    @classmethod
    def _build(cls, fields: dict[str, str]) -> Self:
        return cls(fields["action"])  # type: ignore[arg-type]


CallbackData: TypeAlias = (
    MenuButton
    | LanguageChoice
    | BrowseCategories
    | BrowseCategory
    | BrowseItem
    | QuestionButton
    | SuggestionChoice
    | LearnButton
    | LearnItem
    | ComplaintStep
    | ComplaintType
    | ComplaintCategory
    | ComplaintCategoryPage
    | ComplaintContact
    | ComplaintVoice
    | ComplaintFromQuestion
    | TicketList
    | TicketView
    | TicketAddInformation
    | TicketSolved
    | TicketRating
    | TicketServiceRating
    | TicketRemedies
    | TicketFollowup
    | DepartmentAction
    | DisclosureOutcome
    | StaffAssign
    | PrivacyButton
)

BUTTON_KINDS: tuple[type[CallbackData], ...] = (
    MenuButton,
    LanguageChoice,
    BrowseCategories,
    BrowseCategory,
    BrowseItem,
    QuestionButton,
    SuggestionChoice,
    LearnButton,
    LearnItem,
    ComplaintStep,
    ComplaintType,
    ComplaintCategory,
    ComplaintCategoryPage,
    ComplaintContact,
    ComplaintVoice,
    ComplaintFromQuestion,
    TicketList,
    TicketView,
    TicketAddInformation,
    TicketSolved,
    TicketRating,
    TicketServiceRating,
    TicketRemedies,
    TicketFollowup,
    DepartmentAction,
    DisclosureOutcome,
    StaffAssign,
    PrivacyButton,
)


def prefix_of(*kinds: type[CallbackData]) -> str:
    """Return the regex routing every button that starts as these kinds' buttons all start.

    A handler that owns a family of buttons routes the whole family to itself, so that a
    malformed or forged member gets the family's own polite answer.
    """
    shared = kinds[0].PREFIX
    for kind in kinds[1:]:
        while not kind.PREFIX.startswith(shared):
            shared = shared[:-1]
    return "^" + re.escape(shared)


def decode_any(data: object) -> CallbackData | None:
    """Return the button `data` is, of whichever kind; None for anything else."""
    for kind in BUTTON_KINDS:
        decoded = kind.decode(data)
        if decoded is not None:
            return decoded
    return None


def button(label: str, data: CallbackData) -> InlineKeyboardButton:
    """Return an inline button carrying `data`."""
    return InlineKeyboardButton(label, callback_data=data.encode())
