"""The console against a hostile client, over HTTP on 127.0.0.1 (both databases where it matters):
concurrent password guesses, NUL characters and broken encodings, two admins disabling each other.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from yarl import URL

from bot.console.accounts import create_user, verify_password
from bot.core.models import LoginAttempt, User
from bot.services import Services
from bot.tickets.routing import complaint_categories, complaint_category_name
from tests.fixtures_console import (
    PASSWORD,
    Console,
    ConsoleClient,
    LoginAs,
    SampleWork,
    logged_in,
    serving,
    user_id_of,
)

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# Long enough for any answer on a loaded machine, short enough that a hung response fails.
ANSWER_WITHIN = 20


class CountingVerifier:
    """verify_password, counted, and as slow as real argon2 (a tenth of a second) so that
    concurrent guesses overlap the way they do in production."""

    def __init__(self, real: Callable[[str | None, str], bool]) -> None:
        self.real = real
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, password_hash: str | None, password: str) -> bool:
        with self._lock:
            self.calls += 1
        time.sleep(0.1)
        return self.real(password_hash, password)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> CountingVerifier:
    counter = CountingVerifier(verify_password)
    monkeypatch.setattr("bot.console.sessions.verify_password", counter)
    return counter


async def guess_at_once(
    client: ConsoleClient, count: int, username: Callable[[int], str]
) -> list[int]:
    """Post `count` wrong passwords at the same moment; return the statuses."""
    await client.get("/login")

    async def guess(number: int) -> int:
        status, _, _ = await client.post(
            "/login", {"username": username(number), "password": f"wrong-guess-{number}"}
        )
        return status

    return list(await asyncio.gather(*(guess(number) for number in range(count))))


# -- 1. login throttling is one atomic check-and-count --------------------------------------------


async def test_concurrent_guesses_for_one_account_never_pass_the_limit(
    console: Console, client: ConsoleClient, verifications: CountingVerifier
) -> None:
    statuses = await guess_at_once(client, 40, lambda _: "manager")
    assert verifications.calls <= 5
    assert statuses.count(401) == verifications.calls
    assert statuses.count(429) == 40 - verifications.calls
    # and the account stays locked, even for the right password
    status, _, _ = await client.login("manager")
    assert status == 429
    assert verifications.calls <= 5


async def test_concurrent_guesses_from_one_address_never_pass_its_limit(
    console: Console, client: ConsoleClient, verifications: CountingVerifier
) -> None:
    statuses = await guess_at_once(client, 40, lambda number: f"someone-{number}")
    assert verifications.calls <= 20
    assert statuses.count(401) == verifications.calls
    assert statuses.count(429) == 40 - verifications.calls


async def test_two_consoles_on_one_database_share_the_limit(
    console: Console, services: Services, verifications: CountingVerifier
) -> None:
    """Two processes (two engines, no lock in common) guessing at once still make five checks."""
    second = await Services.start(services.settings, migrate=False, knowledge=services.knowledge)
    try:
        async with serving(second) as other:
            clients = [ConsoleClient(console), ConsoleClient(other)]
            try:
                results = await asyncio.gather(
                    *(guess_at_once(c, 20, lambda _: "manager") for c in clients)
                )
            finally:
                for c in clients:
                    await c.close()
    finally:
        await second.close()
    statuses = [status for result in results for status in result]
    assert verifications.calls <= 5
    assert statuses.count(401) == verifications.calls
    async with services.sessions() as session:
        recorded = await session.scalar(select(func.count()).select_from(LoginAttempt))
    assert recorded == 40


async def test_a_right_password_among_concurrent_logins_still_gets_in(
    console: Console, verifications: CountingVerifier
) -> None:
    clients = [ConsoleClient(console) for _ in range(3)]
    try:
        results = await asyncio.gather(*(c.login("manager") for c in clients))
    finally:
        for c in clients:
            await c.close()
    assert [status for status, _, _ in results] == [303, 303, 303]


# -- 2. NUL characters anywhere in a request -------------------------------------------------------


async def fetch(client: ConsoleClient, raw: str) -> tuple[int, str, str]:
    """GET a path given already percent-encoded; return status, content type and body."""
    url = URL(client.console.url + raw, encoded=True)
    async with asyncio.timeout(ANSWER_WITHIN):
        async with client.http.get(url, allow_redirects=False) as response:
            body = await response.text(errors="replace")
            return response.status, response.content_type, body


@pytest.mark.parametrize(
    ("account", "raw"),
    [
        ("manager", "/tickets/%00"),
        ("manager", "/tickets/TS-2026-%00000001"),
        ("manager", "/log?q=%00"),
        ("manager", "/log?q=%E5%99%AA%00"),
        ("manager", "/log?%00=1"),
        ("manager", "/log?department=%00"),
        ("manager", "/log.csv?q=%00"),
        ("manager", "/log.xlsx?q=%00"),
        ("manager", "/figures?department=%00"),
        ("officer", "/department?q=%00"),
        ("admin", "/admin/audit?action=%00"),
        ("admin", "/admin/audit?account=%00"),
        ("admin", "/tickets/%00"),
        ("staff", "/inbox?next=%00"),
    ],
)
async def test_a_nul_in_a_url_is_a_clean_client_error(
    console: Console, work: SampleWork, login_as: LoginAs, account: str, raw: str
) -> None:
    client = await login_as(account)
    status, content_type, body = await fetch(client, raw)
    assert status in (400, 404), body
    assert content_type == "text/html"
    assert "处理请求时出现问题" not in body


async def test_a_nul_in_a_form_field_never_reaches_the_database(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    await officer.get(f"/tickets/{work.urban}")
    status, body, _ = await officer.post(
        f"/tickets/{work.urban}/reply", {"text": "已处理\x00完毕，垃圾已清运。"}
    )
    assert status in (303, 400), body
    admin = await login_as("admin")
    await admin.get("/admin/users")
    status, body, _ = await admin.post(
        "/admin/users", {"username": "zhang\x00san", "role": "staff", "display_name": "张\x00三"}
    )
    assert status in (200, 400), body
    assert "处理请求时出现问题" not in body
    async with console.services.sessions() as session:
        names = list(await session.scalars(select(User.username)))
    assert not any("\x00" in name for name in names)


async def test_a_nul_in_the_login_form_is_a_plain_failed_login(client: ConsoleClient) -> None:
    await client.get("/login")
    status, body, _ = await client.post("/login", {"username": "mana\x00ger", "password": "x\x00"})
    assert status in (400, 401), body


# -- 3. forms that are not UTF-8, or cut short ---------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"username=\xff\xfemanager&password=x"),
        ("application/x-www-form-urlencoded", b"username=\xe4\xbd"),
        ("application/x-www-form-urlencoded; charset=no-such-charset", b"username=manager"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="u"'),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="u"\r\n\r\n\xff\r\n--b--\r\n',
        ),
        ("multipart/form-data", b"no boundary at all"),
    ],
)
@sqlite_only
async def test_a_login_form_that_cannot_be_read_is_a_polite_400(
    client: ConsoleClient, content_type: str, body: bytes
) -> None:
    await client.get("/login")
    async with asyncio.timeout(ANSWER_WITHIN):
        async with client.http.post(
            "/login", data=body, headers={"Content-Type": content_type}, allow_redirects=False
        ) as response:
            text = await response.text()
            assert response.status == 400, text
            assert response.content_type == "text/html"
            assert "无法识别" in text
            assert response.headers["X-Frame-Options"] == "DENY"


@sqlite_only
async def test_a_logged_in_form_that_cannot_be_read_is_a_polite_400(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    await officer.get(f"/tickets/{work.urban}")
    async with officer.http.post(
        f"/tickets/{work.urban}/reply",
        data=b"csrf_token=" + officer.token.encode() + b"&text=\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    ) as response:
        assert response.status == 400
        assert "无法识别" in await response.text()


@sqlite_only
async def test_an_export_failing_half_way_ends_the_download_instead_of_hanging(
    console: Console, work: SampleWork, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.exports import csv_chunks
    from bot.tickets.complaint_log import list_tickets

    calls = 0

    async def fails_on_the_second_batch(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("the database went away")
        return await list_tickets(*args, **kwargs)

    def chunk_per_row(header: Any, rows: Any) -> Any:
        return csv_chunks(header, rows, rows_per_chunk=1)

    monkeypatch.setattr("bot.console.views.reports.EXPORT_BATCH", 1)
    monkeypatch.setattr("bot.console.views.reports.list_tickets", fails_on_the_second_batch)
    monkeypatch.setattr("bot.console.views.reports.csv_chunks", chunk_per_row)
    manager = await login_as("manager")

    async def download() -> bytes:
        async with asyncio.timeout(ANSWER_WITHIN):
            async with manager.http.get("/log.csv") as response:
                assert response.status == 200
                return await response.read()

    with pytest.raises(aiohttp.ClientPayloadError):
        await download()


# -- 4. the last active admin stays, even when two admins act at once ----------------------------


async def second_admin(console: Console) -> None:
    async with console.services.sessions() as session:
        await create_user(
            session,
            username="admin2",
            password=PASSWORD,
            role="admin",
            departments=set(),
            display_name="第二管理员",
        )
        await session.commit()


async def active_admins(console: Console) -> list[str]:
    async with console.services.sessions() as session:
        return list(
            await session.scalars(
                select(User.username).where(User.role == "admin", User.disabled.is_(False))
            )
        )


ACTIONS: dict[str, dict[str, str]] = {
    "disable": {"action": "disable"},
    "demote": {"action": "role", "role": "manager"},
}


@pytest.mark.parametrize("second_first", [False, True], ids=["first-then-second", "reversed"])
@pytest.mark.parametrize(
    ("first_action", "second_action"),
    [("disable", "disable"), ("disable", "demote"), ("demote", "demote")],
)
async def test_two_admins_removing_each_other_at_once_leave_one_active(
    console: Console,
    second_first: bool,
    first_action: str,
    second_action: str,
) -> None:
    await second_admin(console)
    first = await logged_in(console, "admin")
    second = await logged_in(console, "admin2")
    try:
        first_id = await user_id_of(console.services, "admin")
        second_id = await user_id_of(console.services, "admin2")
        await first.get(f"/admin/users/{second_id}")
        await second.get(f"/admin/users/{first_id}")
        moves: list[Awaitable[tuple[int, str, str]]] = [
            first.post(f"/admin/users/{second_id}", ACTIONS[first_action]),
            second.post(f"/admin/users/{first_id}", ACTIONS[second_action]),
        ]
        if second_first:
            moves.reverse()
        results = await asyncio.gather(*moves)
    finally:
        await first.close()
        await second.close()
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [303, 400], [body[-400:] for _, body, _ in results]
    assert len(await active_admins(console)) == 1
    refused = next(body for status, body, _ in results if status == 400)
    assert "在用的系统管理员" in refused


async def test_the_last_admin_cannot_be_disabled_or_demoted_by_the_command_line(
    console: Console,
) -> None:
    from bot.console.accounts import AccountError, change_role, find_user, set_disabled

    async with console.services.sessions() as session:
        admin = await find_user(session, "admin")
        assert admin is not None
        with pytest.raises(AccountError, match="active admin"):
            await set_disabled(session, admin, True)
        with pytest.raises(AccountError, match="active admin"):
            await change_role(
                session, admin, role="manager", department_id=None, departments=set()
            )
        await session.rollback()
    assert await active_admins(console) == ["admin"]


async def test_another_admin_may_still_be_disabled_while_one_stays(
    console: Console, login_as: LoginAs
) -> None:
    await second_admin(console)
    admin = await login_as("admin")
    target = await user_id_of(console.services, "admin2")
    await admin.get(f"/admin/users/{target}")
    status, _, _ = await admin.post(f"/admin/users/{target}", {"action": "disable"})
    assert status == 303
    assert await active_admins(console) == ["admin"]


@pytest.fixture
async def audit_sample(console: Console, work: SampleWork, login_as: LoginAs) -> None:
    """A manager viewed personal data, an officer was refused a page, someone guessed wrong."""
    manager = await login_as("manager")
    await manager.get(f"/tickets/{work.urban}")
    officer = await login_as("officer")
    await officer.get("/log")
    stranger = ConsoleClient(console)
    await stranger.login("manager", "not-the-password")
    await stranger.close()


# -- the audit log reads as sentences, and filters by account name --------------------------------


def table_of(page: str) -> str:
    """Return the rows of a page's table (the filter form above it names every action too)."""
    return page[page.index("<tbody>") : page.index("</tbody>")]


@sqlite_only
async def test_the_audit_log_shows_labelled_actions_and_readable_details(
    audit_sample: None, login_as: LoginAs
) -> None:
    admin = await login_as("admin")
    status, body = await admin.get("/admin/audit")
    assert status == 200
    rows = table_of(body)
    assert "查看个人信息" in rows
    assert "登录失败" in rows
    assert "拒绝访问页面" in rows
    assert "ticket.view_personal_data" not in rows
    assert "login.failed" not in rows
    assert "{&#34;" not in rows
    assert "&#34;:" not in rows
    assert "联系人姓名" in rows
    assert "联系电话" in rows
    assert "部门办理人员" in rows  # the refused officer's role, by its name


@sqlite_only
async def test_the_audit_log_in_english(audit_sample: None, login_as: LoginAs) -> None:
    admin = await login_as("admin")
    await admin.get("/lang/en")
    status, body = await admin.get("/admin/audit")
    assert status == 200
    rows = table_of(body)
    assert "Viewed personal data" in rows
    assert "Failed login" in rows
    assert "Contact name" in rows


@sqlite_only
async def test_an_exports_category_filter_reads_in_the_readers_language(
    console: Console, login_as: LoginAs
) -> None:
    kb = console.services.knowledge.kb
    category = next(
        c for c in complaint_categories(kb) if complaint_category_name(kb, c, "en") != c
    )
    english = complaint_category_name(kb, category, "en")
    manager = await login_as("manager")
    status, _ = await manager.get("/log.csv", category=category)
    assert status == 200
    admin = await login_as("admin")
    rows = table_of((await admin.get("/admin/audit", action="export."))[1])
    assert category in rows
    await admin.get("/lang/en")
    rows = table_of((await admin.get("/admin/audit", action="export."))[1])
    assert f"Category: {english}" in rows
    assert category not in rows


async def test_the_audit_log_filters_by_account_name(
    audit_sample: None, login_as: LoginAs
) -> None:
    admin = await login_as("admin")
    status, body = await admin.get("/admin/audit", account="Manager")
    assert status == 200
    rows = table_of(body)
    assert "查看个人信息" in rows
    assert "登录失败" in rows
    assert "拒绝访问页面" not in rows
    status, body = await admin.get("/admin/audit", account="nobody-here")
    assert status == 200
    assert "没有记录。" in table_of(body)
    status, body = await admin.get("/admin/audit", action="access.")
    assert "拒绝访问页面" in table_of(body)
    assert "查看个人信息" not in table_of(body)
    status, body = await admin.get("/admin/audit", action="login")
    assert "登录失败" not in table_of(body)
    assert "登录" in table_of(body)
    status, body = await admin.get("/admin/audit", action="log")
    assert "登录失败" in table_of(body)


async def test_failed_logins_for_a_name_without_an_account_are_found_by_that_name(
    console: Console, client: ConsoleClient, login_as: LoginAs
) -> None:
    await client.login("no-such-person", "guess-guess-guess")
    admin = await login_as("admin")
    status, body = await admin.get("/admin/audit", account="no-such-person")
    assert status == 200
    assert "登录失败" in table_of(body)
    assert table_of(body).count("<tr>") == 1


def test_every_audited_action_has_a_name() -> None:
    """Actions written as literals anywhere, and the families written with f-strings."""
    from bot.console.translations import LABELS
    from bot.console.views import tickets

    root = Path(__file__).resolve().parent.parent / "bot"
    literal = set()
    for path in root.rglob("*.py"):
        source = path.read_text("utf-8")
        if "record_audit(" in source:
            # Audit actions are dotted ("ticket.reply"), but for logging in and out; other
            # `action=` arguments (argparse, knowledge versions) are single words.
            literal |= set(re.findall(r'action="((?:[a-z_]+\.)+[a-z_]+|login|logout)"', source))
    handlers = [getattr(tickets, name) for name in dir(tickets)]
    ticket_actions = {
        f"ticket.{handler.__name__.removeprefix('ticket_')}"
        for handler in handlers
        if (getattr(handler, "__doc__", "") or "").startswith("Ticket action:")
    }
    exports = {
        f"export.{kind}.{fmt}"
        for kind in ("log", "figures", "disclosure")
        for fmt in ("csv", "xlsx")
    }
    expected = literal | ticket_actions | exports
    assert len(ticket_actions) == 7
    assert "ticket.view_personal_data" in expected
    assert sorted(expected - set(LABELS["audit_action"])) == []
