"""The console over HTTP on 127.0.0.1, where a browser adds nothing: headers, cookies, CSRF,
throttling, who may see what (both databases), exports, audit.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from openpyxl import load_workbook
from sqlalchemy import select, update

from bot.console.app import serving_console
from bot.console.security import CONTENT_SECURITY_POLICY, roles_of
from bot.console.state import ZONE
from bot.core.models import AuditEntry, Question, Ticket, User, WebSession, utcnow
from bot.runner import RUN_SERVICES
from bot.services import Services
from bot.tickets.figures import Month, figures_for_month
from tests.fixtures_console import (
    ACCESS_MATRIX,
    EVERYONE,
    OK,
    PASSWORD,
    Console,
    ConsoleClient,
    LoginAs,
    SampleWork,
    add_resident,
    complaint,
    free_port,
    matrix_paths,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# HTTP behaviour that no query decides runs on one database; the data logic runs on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def audit_actions(console: Console) -> list[str]:
    async with console.services.sessions() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


# -- headers and cookies ------------------------------------------------------------------------


@sqlite_only
async def test_every_response_carries_the_security_headers(client: ConsoleClient) -> None:
    for path in ("/login", "/log", "/no-such-page", "/static/console.css"):
        async with client.http.get(path, allow_redirects=False) as response:
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src" not in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


@sqlite_only
async def test_the_session_cookie_is_secure_http_only_and_strictly_first_party(
    client: ConsoleClient,
) -> None:
    await client.get("/login")
    async with client.http.post(
        "/login",
        data={"csrf_token": client.token, "username": "manager", "password": PASSWORD},
        allow_redirects=False,
    ) as response:
        cookie = response.cookies["console_session"]
    assert response.status == 303
    assert cookie["secure"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    async with client.console.services.sessions() as session:
        stored = (await session.execute(select(WebSession.token_hash))).scalar_one()
    assert cookie.value not in stored


@sqlite_only
async def test_pages_are_not_cached_by_the_browser(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    manager = await login_as("manager")
    async with manager.http.get(f"/tickets/{work.urban}") as response:
        assert response.headers["Cache-Control"] == "no-store"


# -- logging in --------------------------------------------------------------------------------------


@sqlite_only
async def test_a_page_sends_a_stranger_to_the_login_and_back_after_it(
    client: ConsoleClient,
) -> None:
    status, _ = await client.get("/figures")
    assert status == 303
    await client.get("/login", next="/figures")
    status, _, location = await client.post(
        "/login", {"username": "manager", "password": PASSWORD, "next": "/figures"}
    )
    assert (status, location) == (303, "/figures")


@sqlite_only
async def test_the_login_never_redirects_to_another_site(client: ConsoleClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil"):
        await client.get("/login")
        status, _, location = await client.post(
            "/login", {"username": "manager", "password": PASSWORD, "next": target}
        )
        assert (status, location) == (303, "/"), target
        await client.get("/password")
        assert (await client.post("/logout"))[0] == 303


@sqlite_only
async def test_the_login_form_needs_its_own_csrf_token(client: ConsoleClient) -> None:
    await client.get("/login")
    status, _, _ = await client.post(
        "/login", {"username": "manager", "password": PASSWORD}, csrf=False
    )
    assert status == 403
    status, _, _ = await client.post(
        "/login", {"username": "manager", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert status == 403


async def test_wrong_passwords_lock_the_account_for_a_while(
    console: Console, client: ConsoleClient
) -> None:
    for _ in range(5):
        status, body, _ = await client.login("manager", "not-the-password")
        assert status == 401
        assert "用户名或密码不正确" in body
    status, body, _ = await client.login("manager")
    assert status == 429
    assert "登录失败次数过多" in body
    assert (await audit_actions(console))[-1] == "login.throttled"


async def test_logging_out_ends_the_session_on_the_server(
    console: Console, login_as: LoginAs
) -> None:
    manager = await login_as("manager")
    cookie = next(c for c in manager.http.cookie_jar if c.key == "console_session").value
    status, _, location = await manager.post("/logout")
    assert (status, location) == (303, "/login")
    replay = ConsoleClient(console)
    replay.http.cookie_jar.update_cookies({"console_session": cookie})
    assert (await replay.get("/log"))[0] == 303
    await replay.close()


# -- CSRF ---------------------------------------------------------------------------------------------


async def test_a_form_without_the_session_csrf_token_changes_nothing(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    await officer.get(f"/tickets/{work.urban}")
    status, _, _ = await officer.post(f"/tickets/{work.urban}/acknowledge", csrf=False)
    assert status == 403
    status, _, _ = await officer.post(
        f"/tickets/{work.urban}/acknowledge", {"csrf_token": "x" * 43}
    )
    assert status == 403
    other = await login_as("other_officer")
    status, _, _ = await officer.post(
        f"/tickets/{work.urban}/acknowledge", {"csrf_token": other.token}
    )
    assert status == 403
    ticket = await console.desk.get(work.urban)
    assert ticket.status == "assigned"
    status, _, _ = await officer.post(f"/tickets/{work.urban}/acknowledge")
    assert status == 303
    assert (await console.desk.get(work.urban)).status == "acknowledged"


# -- who may see what ---------------------------------------------------------------------------------


async def test_every_role_against_every_page_and_action(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    values = await matrix_paths(console, work)
    outcomes: dict[tuple[str, str, str], object] = {}
    for account in EVERYONE:
        client = await login_as(account)
        for method, template, form, expected in ACCESS_MATRIX:
            path = template.format(**values)
            if method == "GET":
                status, _ = await client.get(path)
            else:
                status, _, _ = await client.post(path, form)
            assert status < 500, (account, method, path)
            got = OK if status not in (401, 403, 404) else status
            outcomes[(account, method, template)] = got
            assert got == expected[account], (account, method, path, status)
    assert len(outcomes) == len(EVERYONE) * len(ACCESS_MATRIX)
    denied = [a for a in await audit_actions(console) if a in ("access.denied", "ticket.denied")]
    expected_denials = sum(
        1 for _, _, _, e in ACCESS_MATRIX for account in EVERYONE if e[account] != OK
    )
    assert len(denied) == expected_denials


async def test_nobody_logged_in_reaches_anything_but_the_login(
    console: Console, work: SampleWork, client: ConsoleClient
) -> None:
    values = await matrix_paths(console, work)
    for method, template, form, _ in ACCESS_MATRIX:
        path = template.format(**values)
        if method == "GET":
            status, _ = await client.get(path)
        else:
            status, _, location = await client.post(path, form)
            assert location.startswith("/login"), path
        assert status == 303, path


async def test_an_officer_guessing_another_departments_ticket_gets_not_found_and_is_noted(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    status, body = await officer.get(f"/tickets/{work.ecology}")
    assert status == 404
    assert "工厂夜里偷排污水" not in body
    status_missing, body_missing = await officer.get("/tickets/TS-2026-999999")
    assert status_missing == 404
    assert body.replace(work.ecology, "") == body_missing.replace("TS-2026-999999", "")
    async with console.services.sessions() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.denied"))
        )
    assert [(e.target_id, e.detail["exists"]) for e in entries] == [
        (work.ecology, True),
        ("TS-2026-999999", False),
    ]


async def test_a_disabled_account_is_logged_out_at_once(
    console: Console, login_as: LoginAs
) -> None:
    manager = await login_as("manager")
    async with console.services.sessions() as session:
        await session.execute(update(User).where(User.username == "manager").values(disabled=True))
        await session.commit()
    assert (await manager.get("/log"))[0] == 303


# -- personal data -------------------------------------------------------------------------------


async def test_contact_details_show_only_with_consent_and_every_view_is_audited(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    _, body = await officer.get(f"/tickets/{work.urban}")
    assert "+862155501234" in body
    # Residents are promised that no department gets their Telegram account.
    assert "Telegram 昵称" not in body
    assert "Telegram 用户 ID" not in body
    other = await login_as("other_officer")
    _, body = await other.get(f"/tickets/{work.ecology}")
    assert "+862155501234" not in body
    assert "诉求人未同意" in body
    # A manager sees who filed it, with the phone masked: only the department handling the
    # ticket, with the resident's consent, sees the whole number.
    manager = await login_as("manager")
    _, body = await manager.get(f"/tickets/{work.ecology}")
    assert "+862155501234" not in body
    assert "+86 215***1234" in body
    assert "Telegram 用户 ID" in body
    staff = await login_as("staff")
    _, body = await staff.get(f"/tickets/{work.triage}")
    assert "+862155501234" not in body
    async with console.services.sessions() as session:
        views = list(
            await session.execute(
                select(User.username, AuditEntry.target_id)
                .join(User, User.id == AuditEntry.user_id)
                .where(AuditEntry.action == "ticket.view_personal_data")
                .order_by(AuditEntry.id)
            )
        )
    assert [tuple(v) for v in views] == [("officer", work.urban), ("manager", work.ecology)]


async def test_an_anonymous_report_shows_nobody_who_filed_it(
    console: Console, login_as: LoginAs
) -> None:
    resident = await add_resident(console.services, 770001, "匿名者")
    filed = await console.desk.file(
        complaint(
            resident,
            type="report",
            description="有人在市场卖过期食品。",
            category="市容环境",
            anonymous=True,
            contact_name=None,
            contact_phone=None,
            share_identity=False,
        )
    )
    manager = await login_as("manager")
    _, body = await manager.get(f"/tickets/{filed.number}")
    assert "匿名举报，不显示诉求人信息" in body
    assert "770001" not in body
    assert "匿名者" not in body


# -- exports ----------------------------------------------------------------------------------------


async def test_the_csv_export_is_excel_ready_guarded_and_without_contact_details(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    resident = await add_resident(console.services, 770002)
    await console.desk.file(
        complaint(resident, description='=HYPERLINK("http://evil.example","点我")')
    )
    manager = await login_as("manager")
    async with manager.http.get("/log.csv", params={"type": "complaint"}) as response:
        data = await response.read()
        disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="complaint-log-')
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:5] == ["编号", "类型", "类别", "承办部门", "状态"]
    assert len(rows) == 1 + 4
    assert rows[1][-2] == '\'=HYPERLINK("http://evil.example","点我")'
    assert all("+862155501234" not in cell for row in rows for cell in row)
    assert "韩梅梅" not in data.decode("utf-8")
    assert (await audit_actions(console))[-1] == "export.log.csv"


async def test_the_xlsx_export_follows_the_filters_and_the_language(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    manager = await login_as("manager")
    await manager.get("/lang/en", next="/log")
    async with manager.http.get(
        "/log.xlsx", params={"department": "ecology-environment"}
    ) as response:
        sheet = load_workbook(io.BytesIO(await response.read())).active
    assert sheet is not None
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][:3] == ["Number", "Type", "Category"]
    assert rows[1][0] == work.ecology
    assert rows[1][1] == "Complaint"
    # One ticket: nothing was cut, so the sheet says nothing about a limit.
    assert len(rows) == 2


# -- manager pages ----------------------------------------------------------------------------------


async def test_the_figures_page_shows_what_bot_figures_computes(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    await officer.post(f"/tickets/{work.urban}/acknowledge")
    await officer.post(f"/tickets/{work.urban}/reply", {"text": "已安排清运。"})
    async with console.services.sessions() as session:
        month = Month.of(utcnow(), console.app[ZONE])
        expected = await figures_for_month(session, month)
    manager = await login_as("manager")
    status, body = await manager.get("/figures")
    assert status == 200
    assert f"统计 · {month}" in body
    assert "<svg" in body
    assert "<polyline" in body or expected.total.assigned == 0
    row = expected.department("urban-management")
    assert row.replied == 1
    assert "示例市城市管理综合执法局" in body


async def test_the_unanswered_page_shows_each_groups_count_and_trend(
    console: Console, login_as: LoginAs
) -> None:
    resident = await add_resident(console.services, 7001)
    now = utcnow()
    asked = [
        # Asked more and more: three times this week, once the week before.
        ("游泳馆几点开门", 0.5),
        ("游泳馆几点开门？", 1),
        ("游泳馆几点开门", 2),
        ("游泳馆几点开门", 8),
        # Fading: once this week, three times the week before.
        ("动物园门票多少钱", 3),
        ("动物园门票多少钱", 9),
        ("动物园门票多少钱", 10),
        ("动物园门票多少钱", 12),
        # Not asked this week: not listed for the last 7 days.
        ("图书馆周末开放吗", 16),
        ("图书馆周末开放吗", 17),
    ]
    async with console.services.sessions() as session:
        for text, days_ago in asked:
            session.add(
                Question(
                    resident_id=resident,
                    chat_id=7001,
                    text=text,
                    decision="escalate",
                    reason="no_match",
                    created_at=now - dt.timedelta(days=days_ago),
                )
            )
        await session.commit()
    manager = await login_as("manager")

    def rows(body: str) -> dict[str, str]:
        table = body[body.index("<tbody>") : body.index("</tbody>")]
        found = {}
        for row in table.split("<tr>")[1:]:
            for leader in ("游泳馆几点开门", "动物园门票多少钱", "图书馆周末开放吗"):
                if f"<td>{leader}</td>" in row:
                    found[leader] = " ".join(row.split())
        return found

    status, body = await manager.get("/unanswered", days="7")
    assert status == 200
    assert "共 4 个问题，2 组。" in body
    week = rows(body)
    assert set(week) == {"游泳馆几点开门", "动物园门票多少钱"}
    assert '<td class="num">3</td>' in week["游泳馆几点开门"]
    assert "trend-up" in week["游泳馆几点开门"]
    assert "前 7 天：1 次" in week["游泳馆几点开门"]
    assert "0 · 0 · 1 · 3" in week["游泳馆几点开门"]
    assert '<td class="num">1</td>' in week["动物园门票多少钱"]
    assert "trend-down" in week["动物园门票多少钱"]
    assert "前 7 天：3 次" in week["动物园门票多少钱"]
    assert "0 · 0 · 3 · 1" in week["动物园门票多少钱"]
    # The busiest group first.
    assert body.index("<td>游泳馆几点开门</td>") < body.index("<td>动物园门票多少钱</td>")

    status, body = await manager.get("/unanswered", days="30")
    month = rows(body)
    assert set(month) == {"游泳馆几点开门", "动物园门票多少钱", "图书馆周末开放吗"}
    assert "前 30 天：0 次" in month["图书馆周末开放吗"]
    assert "trend-up" in month["图书馆周末开放吗"]
    assert "0 · 2 · 0 · 0" in month["图书馆周末开放吗"]


async def test_the_log_lists_searches_and_pages(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    manager = await login_as("manager")
    _, body = await manager.get("/log")
    assert all(number in body for number in work.numbers)
    _, body = await manager.get("/log", q="偷排污水")
    assert work.ecology in body
    assert work.urban not in body
    _, body = await manager.get("/log", department="-")
    assert work.triage in body
    assert work.urban not in body


@sqlite_only
async def test_english_is_one_click_away_and_remembered(
    console: Console, login_as: LoginAs
) -> None:
    manager = await login_as("manager")
    status, _ = await manager.get("/lang/en", next="/figures")
    assert status == 303
    _, body = await manager.get("/log")
    assert "Complaint log" in body
    assert 'lang="en"' in body
    await manager.get("/lang/zh", next="/log")
    _, body = await manager.get("/log")
    assert "投诉记录" in body


# -- admin -------------------------------------------------------------------------------------------


async def test_an_admin_creates_an_account_whose_one_time_password_must_be_changed(
    console: Console, client: ConsoleClient, login_as: LoginAs
) -> None:
    admin = await login_as("admin")
    status, body, _ = await admin.post(
        "/admin/users",
        {
            "username": "zhou",
            "display_name": "周科员",
            "role": "officer",
            "department": "education",
        },
    )
    assert status == 200
    password = body.split("<code>", 1)[1].split("</code>", 1)[0]
    assert len(password) == 19
    status, _, _ = await client.login("zhou", password)
    assert status == 303
    status, _ = await client.get("/department")
    assert status == 303
    status, body, location = await client.post(
        "/password", {"current": password, "new": "my-own-secret-42", "repeat": "my-own-secret-42"}
    )
    assert (status, location) == (303, "/password?done=1"), body
    status, body = await client.get("/department")
    assert status == 200
    assert "示例市教育局" in body


@sqlite_only
async def test_an_admin_cannot_lock_themselves_out(console: Console, login_as: LoginAs) -> None:
    admin = await login_as("admin")
    async with console.services.sessions() as session:
        own = (await session.execute(select(User.id).where(User.username == "admin"))).scalar_one()
    await admin.get(f"/admin/users/{own}")
    status, body, _ = await admin.post(f"/admin/users/{own}", {"action": "disable"})
    assert status == 400
    assert "不能停用自己" in body


async def test_disabling_an_account_in_the_console_ends_its_sessions(
    console: Console, login_as: LoginAs
) -> None:
    staff = await login_as("staff")
    admin = await login_as("admin")
    async with console.services.sessions() as session:
        target = (
            await session.execute(select(User.id).where(User.username == "staff"))
        ).scalar_one()
    await admin.get(f"/admin/users/{target}")
    status, _, _ = await admin.post(f"/admin/users/{target}", {"action": "disable"})
    assert status == 303
    assert (await staff.get("/inbox"))[0] == 303
    assert "user.disable" in await audit_actions(console)


async def test_tickets_filed_are_counted_in_the_log_of_their_department(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    _, body = await officer.get("/department")
    assert work.urban in body
    assert work.ecology not in body
    assert work.triage not in body
    async with console.services.sessions() as session:
        held = await session.scalar(
            select(Ticket.department_id).where(Ticket.number == work.urban)
        )
    assert held == "urban-management"


@sqlite_only
async def test_behind_a_trusted_proxy_throttling_counts_the_real_client(
    console: Console, client: ConsoleClient
) -> None:
    web_settings = console.services.settings.web
    console.services.settings = console.services.settings.model_copy(
        update={"web": web_settings.model_copy(update={"trusted_proxies": ("127.0.0.1",)})}
    )
    await client.get("/login")
    async with client.http.post(
        "/login",
        data={"csrf_token": client.token, "username": "manager", "password": "wrong-password"},
        headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"},
    ) as response:
        assert response.status == 401
    async with client.http.post(
        "/login",
        data={"csrf_token": client.token, "username": "staff", "password": "wrong-password"},
        headers={"X-Forwarded-For": "203.0.113.10"},
    ) as response:
        assert response.status == 401
    async with console.services.sessions() as session:
        addresses = list(
            await session.scalars(select(AuditEntry.ip).where(AuditEntry.action == "login.failed"))
        )
    assert addresses == ["203.0.113.9", "203.0.113.10"]


@sqlite_only
async def test_without_a_trusted_proxy_a_forwarded_header_is_ignored(
    console: Console, client: ConsoleClient
) -> None:
    await client.get("/login")
    async with client.http.post(
        "/login",
        data={"csrf_token": client.token, "username": "manager", "password": "wrong-password"},
        headers={"X-Forwarded-For": "198.51.100.7"},
    ) as response:
        assert response.status == 401
    async with console.services.sessions() as session:
        address = await session.scalar(
            select(AuditEntry.ip).where(AuditEntry.action == "login.failed")
        )
    assert address == "127.0.0.1"


@sqlite_only
async def test_the_run_command_serves_the_console_unless_it_is_switched_off(
    services: Services,
) -> None:
    port = free_port()
    web_settings = services.settings.web.model_copy(update={"port": port})
    services.settings = services.settings.model_copy(update={"web": web_settings})
    assert serving_console in RUN_SERVICES
    async with (
        serving_console(services, None),
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/login") as response,
    ):
        assert response.status == 200
        assert "登录" in await response.text()
    services.settings = services.settings.model_copy(
        update={"web": web_settings.model_copy(update={"enabled": False})}
    )
    async with serving_console(services, None), aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/login")


async def test_python_m_bot_web_serves_the_console_alone(tmp_path: Path) -> None:
    port = free_port()
    environment = dict(os.environ)
    environment.pop("TELEGRAM_BOT_TOKEN", None)
    environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'web.sqlite3'}"
    environment["PYTHONPATH"] = str(REPO_ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "web",
        "--port",
        str(port),
        cwd=REPO_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/login") as response:
                        status, body = response.status, await response.text()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("python -m bot web did not start listening")
        assert status == 200
        assert "登录" in body
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    assert f"web console on http://127.0.0.1:{port}/" in output.decode()


@sqlite_only
async def test_every_route_declares_who_may_open_it(console: Console) -> None:
    rules = {}
    for route in console.app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        rules[f"{route.method} {route.resource.canonical}"] = roles_of(route.handler)
    assert None not in rules.values(), [path for path, rule in rules.items() if rule is None]
    public = sorted(path for path, rule in rules.items() if rule == {"public"})
    # /metrics checks its bearer token itself (bot/console/views/health.py).
    assert public == [
        "GET /healthz",
        "GET /lang/{language}",
        "GET /login",
        "GET /metrics",
        "GET /privacy",
        "GET /readyz",
        "POST /login",
    ]


async def test_an_empty_or_long_text_is_refused_naming_the_field_and_its_limit(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    status, _, location = await officer.post(f"/tickets/{work.urban}/reply", {"text": " \u200b "})
    assert status == 303
    _, body = await officer.get(location)
    assert "答复内容不能为空，请填写后再提交（1–3000 字）。" in body
    assert "填写的内容不完整或过长" not in body
    _, _, location = await officer.post(
        f"/tickets/{work.urban}/hand-back", {"reason": "理" * 1001}
    )
    _, body = await officer.get(location)
    assert "理由太长了，最多 1000 字，请精简后再提交。" in body
    ticket = await console.services.tickets.get(work.urban)
    assert ticket.status == "assigned"
    # A crafted notice code shows nothing.
    _, body = await officer.get(f"/tickets/{work.urban}?msg=empty_password")
    assert "不能为空" not in body
