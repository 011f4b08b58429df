"""Web console fixtures: accounts of every role, sample work, the console served on 127.0.0.1,
an HTTP client that logs in like a browser, and headless Chromium (Debian's package).
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from argon2 import PasswordHasher, profiles
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.escalations import EscalationDesk
from bot.answering.question_log import QuestionLog
from bot.console.accounts import create_user, use_password_hasher
from bot.console.app import init_app
from bot.services import Services
from bot.tickets.desk import TicketDesk, TicketDraft

PASSWORD = "correct-horse-battery-staple"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
URBAN = "urban-management"
ECOLOGY = "ecology-environment"
# Who logs in as what; "officer" and "other_officer" hold different departments.
ACCOUNTS: dict[str, tuple[str, str | None, str]] = {
    "staff": ("staff", None, "王芳"),
    "officer": ("officer", URBAN, "城管李科长"),
    "other_officer": ("officer", ECOLOGY, "环保赵科长"),
    "manager": ("manager", None, "刘主任"),
    "admin": ("admin", None, "系统管理员"),
    "editor": ("editor", None, "政务公开办审核员"),
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def create_accounts(
    sessions: async_sessionmaker[AsyncSession], departments: set[str]
) -> None:
    """Create one account per entry of ACCOUNTS, all with PASSWORD."""
    async with sessions() as session:
        for username, (role, department, name) in ACCOUNTS.items():
            await create_user(
                session,
                username=username.replace("_", "-"),
                password=PASSWORD,
                role=role,
                departments=departments,
                department_id=department,
                display_name=name,
            )
        await session.commit()


def login_name(account: str) -> str:
    """Return the user name of an ACCOUNTS key."""
    return account.replace("_", "-")


def complaint(resident_id: int | None, **fields: Any) -> TicketDraft:
    """A complaint about rubbish, which routing gives to urban management."""
    values: dict[str, Any] = {
        "type": "complaint",
        "category": "市容环境",
        "description": "幸福小区东门外的垃圾堆了一个星期没人清理，气味很大。",
        "resident_id": resident_id,
        "contact_name": "韩梅梅",
        "contact_phone": "021-55501234",
        "share_identity": True,
    }
    return TicketDraft(**(values | fields))


@dataclass
class SampleWork:
    """What `add_sample_work` stored, by what each test needs."""

    resident_id: int
    urban: str = ""
    ecology: str = ""
    triage: str = ""
    escalation: int = 0
    numbers: list[str] = field(default_factory=list)


async def add_resident(services: Services, telegram_user_id: int, name: str = "韩梅梅") -> int:
    """Store a resident as the bot would, and return their id."""
    from bot.core.models import Resident

    async with services.sessions() as session, session.begin():
        resident = Resident(
            telegram_user_id=telegram_user_id,
            chat_id=telegram_user_id,
            display_name=name,
        )
        session.add(resident)
        await session.flush()
        return resident.id


async def add_escalation(services: Services, resident_id: int, text: str) -> int:
    """Store a question the bot could not answer and hand it to staff; return the escalation id."""
    result = services.knowledge.matcher.match(text)
    question_id = await QuestionLog(services.sessions).record(
        resident_id=resident_id,
        chat_id=resident_id,
        message_id=None,
        language=result.language,
        result=result,
        escalated=True,
    )
    view = await EscalationDesk(services.settings, services.sessions).open(question_id, "escalate")
    assert view is not None
    return view.id


async def add_sample_work(services: Services, desk: TicketDesk) -> SampleWork:
    """File a ticket for urban management, one for ecology, one for triage, and an escalation."""
    resident = await add_resident(services, 880001)
    work = SampleWork(resident_id=resident)
    work.urban = (await desk.file(complaint(resident))).number
    work.ecology = (
        await desk.file(
            complaint(
                resident,
                category="生态环境",
                description="工厂夜里偷排污水，河道发黑有臭味。",
                share_identity=False,
            )
        )
    ).number
    work.triage = (
        await desk.file(
            complaint(resident, category="其他", description="不知道该找哪个部门的一件事。")
        )
    ).number
    work.numbers = [work.urban, work.ecology, work.triage]
    work.escalation = await add_escalation(services, resident, "犬只免疫证明怎么开")
    return work


@dataclass
class Console:
    """The console served on 127.0.0.1 for one test."""

    url: str
    services: Services
    app: web.Application

    @property
    def desk(self) -> TicketDesk:
        return self.services.tickets


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Hash console passwords with argon2's cheapest parameters, so tests log in quickly."""
    previous = use_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    yield
    use_password_hasher(previous)


@asynccontextmanager
async def serving(services: Services) -> AsyncIterator[Console]:
    """Serve the console for these services on a free port of 127.0.0.1."""
    app = init_app(services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Console(url=f"http://{host}:{port}", services=services, app=app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def console(services: Services) -> AsyncIterator[Console]:
    """The console on an empty database (SQLite and PostgreSQL) with an account of each role."""
    await create_accounts(services.sessions, set(services.knowledge.kb.departments))
    async with serving(services) as running:
        yield running


@pytest.fixture
async def work(console: Console) -> SampleWork:
    """Tickets for two departments and triage, and an escalated question."""
    return await add_sample_work(console.services, console.desk)


class ConsoleClient:
    """A browser-like HTTP client: keeps cookies, reads CSRF tokens from the pages it gets."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.http = aiohttp.ClientSession(
            base_url=console.url,
            # The session cookie is Secure; browsers send it to 127.0.0.1, aiohttp is told to.
            cookie_jar=aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=console.url),
        )
        self.token = ""

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **params: str) -> tuple[int, str]:
        """GET a page without following redirects; remember its CSRF token."""
        async with self.http.get(path, params=params, allow_redirects=False) as response:
            text = await response.text(errors="replace")
            found = _CSRF.search(text)
            if found:
                self.token = found.group(1)
            return response.status, text

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> tuple[int, str, str]:
        """POST a form (with the last CSRF token seen); return status, body and Location."""
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token)
        async with self.http.post(path, data=form, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Location", "")

    async def login(self, account: str, password: str = PASSWORD) -> tuple[int, str, str]:
        """Log in as an ACCOUNTS key (or any user name) and pick up a page's CSRF token."""
        await self.get("/login")
        name = login_name(account) if account in ACCOUNTS else account
        result = await self.post("/login", {"username": name, "password": password})
        if result[0] == 303:
            await self.get("/password")
        return result


@pytest.fixture
async def client(console: Console) -> AsyncIterator[ConsoleClient]:
    """An HTTP client of the console, not logged in."""
    browser_like = ConsoleClient(console)
    try:
        yield browser_like
    finally:
        await browser_like.close()


LoginAs = Callable[[str], Awaitable[ConsoleClient]]


@pytest.fixture
async def login_as(console: Console) -> AsyncIterator[LoginAs]:
    """Log in as an ACCOUNTS key; the clients are closed after the test."""
    clients: list[ConsoleClient] = []

    async def login(account: str) -> ConsoleClient:
        client = await logged_in(console, account)
        clients.append(client)
        return client

    try:
        yield login
    finally:
        for client in clients:
            await client.close()


async def logged_in(console: Console, account: str) -> ConsoleClient:
    """Return a client logged in as an ACCOUNTS key."""
    client = ConsoleClient(console)
    status, _, _ = await client.login(account)
    if status != 303:
        await client.close()
        raise AssertionError(f"{account} could not log in")
    return client


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium (`make test` installs it when missing)."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (make test does this)")
    return CHROMIUM


@pytest.fixture
async def chromium(chromium_path: Path) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser).

    One per test: a browser started in another event loop could not share this test's loop.
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


# -- the access matrix ------------------------------------------------------------------------------

OK = "ok"
EVERYONE = ("staff", "officer", "other_officer", "manager", "admin", "editor")
KNOWLEDGE_EDITORS = ("officer", "other_officer", "editor", "manager")


def _only(*allowed: str, otherwise: int = 403, hidden: tuple[str, ...] = ()) -> dict[str, Any]:
    """Expected outcomes: OK for `allowed`, 404 for `hidden` (allowed role, not their ticket)."""
    return {
        account: OK if account in allowed else 404 if account in hidden else otherwise
        for account in EVERYONE
    }


# (method, path, form, expected outcome per account). Paths name the sample work in braces.
# Forms are empty or invalid where the route changes something, so the matrix leaves the data
# as it found it (only the officer's 签收 goes through).
ACCESS_MATRIX: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
    ("GET", "/", {}, _only(*EVERYONE)),
    ("GET", "/password", {}, _only(*EVERYONE)),
    ("GET", "/inbox", {}, _only("staff", "manager")),
    ("GET", "/inbox/{escalation}", {}, _only("staff", "manager")),
    ("GET", "/triage", {}, _only("staff", "manager")),
    ("GET", "/department", {}, _only("officer", "other_officer")),
    (
        "GET",
        "/tickets/{urban}",
        {},
        _only("officer", "manager", hidden=("staff", "other_officer")),
    ),
    (
        "GET",
        "/tickets/{ecology}",
        {},
        _only("other_officer", "manager", hidden=("staff", "officer")),
    ),
    (
        "GET",
        "/tickets/{triage}",
        {},
        _only("staff", "manager", hidden=("officer", "other_officer")),
    ),
    (
        "GET",
        "/tickets/{urban}/proof.json",
        {},
        _only("officer", "manager", hidden=("staff", "other_officer")),
    ),
    (
        "GET",
        "/tickets/TS-2099-999999",
        {},
        _only(hidden=("staff", "officer", "other_officer", "manager")),
    ),
    ("GET", "/log", {}, _only("manager")),
    ("GET", "/log.csv", {}, _only("manager")),
    ("GET", "/log.xlsx", {}, _only("manager")),
    ("GET", "/figures", {}, _only("manager")),
    ("GET", "/figures.csv", {}, _only("manager")),
    ("GET", "/figures.xlsx", {}, _only("manager")),
    ("GET", "/unanswered", {}, _only("manager", "editor")),
    ("GET", "/disclosure", {}, _only("manager")),
    ("GET", "/disclosure.csv", {}, _only("manager")),
    ("GET", "/disclosure.xlsx", {}, _only("manager")),
    ("GET", "/knowledge", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge?q=%E7%BB%93%E5%A9%9A&stale=1", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge/changes", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge/freshness", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge/synonyms", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge/new/guide", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge/items/marriage-registration", {}, _only(*KNOWLEDGE_EDITORS)),
    # Neither officer's department answers for marriage registration.
    ("GET", "/knowledge/items/marriage-registration/edit", {}, _only("editor", "manager")),
    ("GET", "/knowledge/departments", {}, _only(*KNOWLEDGE_EDITORS)),
    ("GET", "/knowledge/departments/urban-management", {}, _only(*KNOWLEDGE_EDITORS)),
    # Officers edit their own department only; only reviewers add departments.
    (
        "GET",
        "/knowledge/departments/urban-management/edit",
        {},
        _only("officer", "editor", "manager"),
    ),
    ("GET", "/knowledge/departments/new", {}, _only("editor", "manager")),
    ("GET", "/admin/users", {}, _only("admin")),
    ("GET", "/admin/users/{user}", {}, _only("admin")),
    ("GET", "/admin/audit", {}, _only("admin")),
    ("POST", "/password", {"current": "wrong"}, _only(*EVERYONE)),
    ("POST", "/inbox/{escalation}/answer", {"answer": ""}, _only("staff")),
    ("POST", "/inbox/{escalation}/learn", {"item_id": "no-such-item"}, _only("staff")),
    (
        "POST",
        "/tickets/{urban}/acknowledge",
        {},
        _only("officer", hidden=("other_officer",)),
    ),
    ("POST", "/tickets/{urban}/reply", {"text": ""}, _only("officer", hidden=("other_officer",))),
    (
        "POST",
        "/tickets/{urban}/hand-back",
        {"reason": ""},
        _only("officer", hidden=("other_officer",)),
    ),
    (
        "POST",
        "/tickets/{urban}/ask",
        {"question": ""},
        _only("officer", hidden=("other_officer",)),
    ),
    (
        "POST",
        "/tickets/{urban}/extend",
        {"days": "0", "reason": ""},
        _only("officer", hidden=("other_officer",)),
    ),
    (
        "POST",
        "/tickets/{ecology}/reply",
        {"text": ""},
        _only("other_officer", hidden=("officer",)),
    ),
    ("POST", "/tickets/{triage}/reassign", {"department": ""}, _only("staff")),
    ("POST", "/tickets/{triage}/reject", {"reason": ""}, _only("staff")),
    ("POST", "/tickets/{urban}/reassign", {"department": ""}, _only(hidden=("staff",))),
    (
        "POST",
        "/knowledge/items/marriage-registration/edit",
        {"action": "preview", "title": ""},
        _only("editor", "manager"),
    ),
    ("POST", "/knowledge/changes/1/decide", {"decision": "nothing"}, _only("editor", "manager")),
    (
        "POST",
        "/knowledge/departments/urban-management/edit",
        {"action": "preview", "name": ""},
        _only("officer", "editor", "manager"),
    ),
    ("POST", "/knowledge/departments/new", {"action": "preview"}, _only("editor", "manager")),
    # Refused while the department answers for items: nothing changes.
    ("POST", "/knowledge/departments/urban-management/retire", {}, _only("editor", "manager")),
    # A group of one word is refused before anything is written.
    ("POST", "/knowledge/synonyms", {"groups": "孤单"}, _only("editor", "manager")),
    ("POST", "/admin/users", {"username": ""}, _only("admin")),
    ("POST", "/admin/users/{user}", {"action": "nothing"}, _only("admin")),
]


async def user_id_of(services: Services, username: str) -> int:
    """Return the id of an account."""
    from bot.console.accounts import find_user

    async with services.sessions() as session:
        user = await find_user(session, username)
    assert user is not None
    return user.id


async def matrix_paths(console: Console, work: SampleWork) -> dict[str, str]:
    """Return the values of the matrix's placeholders for this sample work."""
    return {
        "urban": work.urban,
        "ecology": work.ecology,
        "triage": work.triage,
        "escalation": str(work.escalation),
        "user": str(await user_id_of(console.services, "staff")),
    }


def free_port() -> int:
    """A port nobody listens on now, for a server a test starts on a fixed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
