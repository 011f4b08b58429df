"""The console in Debian's headless Chromium: each role does its work by clicking, the access
matrix holds for a real browser session, hostile text stays text, forms need their CSRF token,
guessers are locked out, and a phone screen is enough.

A browser adds nothing that differs between databases, so these run on SQLite; the data logic
behind every page is tested on both (test_complaint_log, test_console_http).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.models import Escalation, Ticket, utcnow
from bot.services import Services
from bot.tickets.desk import Actor
from tests.fixtures_console import (
    ACCESS_MATRIX,
    EVERYONE,
    OK,
    PASSWORD,
    Console,
    SampleWork,
    add_escalation,
    add_resident,
    complaint,
    create_accounts,
    login_name,
    matrix_paths,
    serving,
)
from tests.fixtures_conversation import BotHarness, conversation_settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>"\'&'


async def open_as(browser: Any, url: str, account: str, **options: Any) -> Any:
    """Log in through the login form and return the page (in a context of its own)."""
    context = await browser.new_context(**options)
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", login_name(account))
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_load_state()
    return page


def read_bytes(path: str | Path) -> bytes:
    return Path(path).read_bytes()


async def ticket_status(console: Console, number: str) -> str:
    return (await console.desk.get(number)).status


# -- logging in ------------------------------------------------------------------------------------


async def test_a_manager_logs_in_reads_english_and_logs_out(
    console: Console, chromium: Any
) -> None:
    page = await (await chromium.new_context()).new_page()
    await page.goto(f"{console.url}/log")
    assert page.url == f"{console.url}/login?next=/log"
    await page.fill("input[name=username]", "manager")
    await page.fill("input[name=password]", "wrong-password-1")
    await page.click("form button[type=submit]")
    assert await page.inner_text("[role=alert]") == "用户名或密码不正确。"
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    assert page.url == f"{console.url}/log"
    assert await page.inner_text("h1") == "投诉记录"
    await page.click("text=English")
    assert await page.inner_text("h1") == "Complaint log"
    assert await page.inner_text("nav.main") == (
        "Complaint log\nFigures\nUnanswered\nDisclosure\nKnowledge base\nInbox\nTriage"
    )
    await page.click("text=Log out")
    assert page.url == f"{console.url}/login"
    await page.goto(f"{console.url}/log")
    assert page.url.startswith(f"{console.url}/login")


# -- staff --------------------------------------------------------------------------------------------


@pytest.fixture
async def bot_console(bot: BotHarness) -> AsyncIterator[Console]:
    """The console of the running bot's own services, as in `python -m bot run`."""
    await create_accounts(bot.services.sessions, set(bot.services.knowledge.kb.departments))
    async with serving(bot.services) as console:
        yield console


async def test_a_staff_answer_typed_in_the_browser_reaches_the_resident_in_telegram(
    bot: BotHarness, bot_console: Console, chromium: Any
) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    post = bot.latest_staff_post()
    page = await open_as(chromium, bot_console.url, "staff")
    assert page.url == f"{bot_console.url}/inbox"
    await page.click("text=犬只免疫证明怎么开")
    assert await page.inner_text("blockquote.question") == "犬只免疫证明怎么开"
    await page.fill("textarea[name=answer]", "导盲犬可以进，其他宠物请不要带进大厅。")
    await page.click("text=发送答复")
    assert await page.inner_text("[role=status]") == "答复已发送给群众。"
    # Delivered before the console answered the form: the resident already has it.
    assert chat.last_bot_message is not None
    assert chat.last_bot_message.text == (
        "👩\u200d💼 工作人员答复\n您的问题：犬只免疫证明怎么开\n\n导盲犬可以进，其他宠物请不要带进大厅。"
    )
    assert "✅ 已由 王芳 答复" in post.text
    async with bot.services.sessions() as session:
        escalation = (await session.scalars(select(Escalation))).one()
    assert (escalation.answered_by, escalation.answered_via) == ("王芳", "console")


async def test_staff_teach_the_bot_a_new_phrasing_from_the_browser(
    database_url: str, engine: Any, knowledge_copy: Path, chromium: Any
) -> None:
    base = conversation_settings(database_url)
    settings = base.model_copy(
        update={"knowledge": base.knowledge.model_copy(update={"dir": knowledge_copy})}
    )
    store = KnowledgeStore(knowledge_copy, thresholds_from(settings))
    services = await Services.start(settings, knowledge=store)
    try:
        await create_accounts(services.sessions, set(store.kb.departments))
        resident = await add_resident(services, 660001)
        question = "那张绿色的卡片掉了在哪重新弄"
        assert store.matcher.match(question).decision != "answer"
        escalation = await add_escalation(services, resident, question)
        async with serving(services) as console:
            page = await open_as(chromium, console.url, "staff")
            await page.goto(f"{console.url}/inbox/{escalation}")
            await page.select_option(
                "select[name=item_id]", "social-security-card-loss-replacement"
            )
            await page.click("text=加入知识库")
            assert await page.inner_text("[role=status]") == (
                "已将该问法加入知识库，机器人今后可直接回答。"
            )
        item = store.kb.items["social-security-card-loss-replacement"]
        assert question in item.questions
        assert question in read_bytes(knowledge_copy / item.source).decode("utf-8")
        assert (
            store.matcher.match(question).best.item.id == "social-security-card-loss-replacement"
        )
    finally:
        await services.close()


async def test_staff_assign_an_unrouted_ticket_and_its_department_sees_it(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    page = await open_as(chromium, console.url, "staff")
    await page.click("text=人工分派")
    await page.click(f"text={work.triage}")
    await page.select_option("select[name=department]", "urban-management")
    await page.fill("input[name=note]", "楼上漏水，按市容环境处理")
    await page.click("form[action$=reassign] button")
    assert page.url.startswith(f"{console.url}/triage")
    assert await page.inner_text("[role=status]") == "已分派给所选部门。"
    assert work.triage not in await page.inner_text("main")
    officer = await open_as(chromium, console.url, "officer")
    assert work.triage in await officer.inner_text("main")


# -- officers -------------------------------------------------------------------------------------


async def test_an_officer_works_a_ticket_through_with_its_deadlines_in_sight(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    resident = await add_resident(console.services, 550001)
    late = (
        await console.desk.file(complaint(resident, description="井盖缺失，晚上很危险"))
    ).number
    async with console.services.sessions() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.number == late)
            .values(reply_deadline=utcnow() - dt.timedelta(hours=3))
        )
        await session.execute(
            update(Ticket)
            .where(Ticket.number == work.urban)
            .values(reply_deadline=utcnow() + dt.timedelta(hours=20))
        )
        await session.commit()
    page = await open_as(chromium, console.url, "officer")
    assert page.url == f"{console.url}/department"
    rows = page.locator("table.tickets").first.locator("tbody tr")
    assert await rows.count() == 2
    assert await rows.nth(0).get_attribute("class") == "overdue"
    assert "已超期" in await rows.nth(0).inner_text()
    assert await rows.nth(1).get_attribute("class") == "soon"
    assert work.ecology not in await page.inner_text("main")

    await page.click(f"text={work.urban}")
    await page.click("form[action$=acknowledge] button")
    assert await page.inner_text("[role=status]") == "已签收。"
    await page.fill("textarea[name=question]", "请问垃圾在东门哪一侧？")
    await page.click("form[action$=ask] button")
    assert await page.inner_text("[role=status]") == "已向群众发出补充材料的请求。"
    await page.fill("textarea[name=text]", "已安排环卫队今日清运。")
    await page.click("form[action$=reply] button")
    assert await page.inner_text("[role=status]") == "答复已发送，群众将收到通知。"
    timeline = await page.inner_text("ol.timeline")
    for step in ("受理", "交办", "签收", "请群众补充材料", "答复"):
        assert step in timeline
    assert "已安排环卫队今日清运。" in timeline
    assert await ticket_status(console, work.urban) == "replied"

    await page.goto(f"{console.url}/tickets/{late}")
    await page.fill("textarea[name=reason]", "井盖属于自来水公司，不归城管。")
    await page.click("form[action$=hand-back] button")
    assert page.url.startswith(f"{console.url}/department")
    assert await ticket_status(console, late) == "returned"
    staff = await open_as(chromium, console.url, "staff")
    await staff.goto(f"{console.url}/triage")
    assert "井盖属于自来水公司" in await staff.inner_text("main")


# -- managers -------------------------------------------------------------------------------------


async def test_a_manager_filters_searches_reads_a_timeline_and_exports(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    resident = await add_resident(console.services, 440001)
    await console.desk.file(complaint(resident, description="=1+2 的公式不应被执行，噪音扰民"))
    page = await open_as(chromium, console.url, "manager")
    await page.fill("input[name=q]", "噪音")
    await page.click("form.filters button[type=submit]")
    rows = page.locator("table.tickets tbody tr")
    assert await rows.count() == 1
    await page.goto(f"{console.url}/log")
    await page.select_option("select[name=department]", "ecology-environment")
    await page.click("form.filters button[type=submit]")
    assert await rows.count() == 1
    assert work.ecology in await rows.first.inner_text()
    await page.click(f"text={work.ecology}")
    assert "工厂夜里偷排污水" in await page.inner_text("p.body")
    assert "受理" in await page.inner_text("ol.timeline")
    await page.goto(f"{console.url}/log")
    async with page.expect_download() as download_info:
        await page.click("p.exports >> text=CSV")
    download = await download_info.value
    data = await asyncio.to_thread(read_bytes, await download.path())
    assert download.suggested_filename.endswith(".csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows_in_file = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows_in_file) == 1 + 4
    assert "'=1+2 的公式不应被执行，噪音扰民" in [row[-2] for row in rows_in_file]


async def test_the_figures_page_draws_its_charts_and_tables(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    # The department answers in its Telegram chat; the figures count it all the same.
    actor = Actor.department("urban-management", "1", "城管李科长")
    await console.desk.acknowledge(work.urban, actor)
    await console.desk.reply(work.urban, actor, "已清运。")
    page = await open_as(chromium, console.url, "manager")
    await page.click("nav.main >> text=统计")
    assert await page.locator("figure.chart > svg").count() == 2
    assert await page.locator("figure.chart polyline").count() >= 1
    urban = page.locator("table.numbers tbody tr", has_text="示例市城市管理综合执法局")
    cells = await urban.locator("td").all_inner_texts()
    assert cells[0] == "示例市城市管理综合执法局"
    assert cells[5] == "1"  # replied this month
    await page.click("text=口径说明")
    assert "满意率：已评价工单中" in await page.inner_text("details")


# -- admins ------------------------------------------------------------------------------------------


async def test_an_admin_adds_an_officer_who_must_choose_a_password_at_first_login(
    console: Console, chromium: Any
) -> None:
    page = await open_as(chromium, console.url, "admin")
    await page.fill("input[name=username]", "sun")
    await page.fill("input[name=display_name]", "孙科员")
    await page.select_option("select[name=role]", "officer")
    await page.select_option("select[name=department]", "education")
    await page.click("text=创建")
    one_time = await page.inner_text("p.password code")
    newcomer = await (await chromium.new_context()).new_page()
    await newcomer.goto(f"{console.url}/login")
    await newcomer.fill("input[name=username]", "sun")
    await newcomer.fill("input[name=password]", one_time)
    await newcomer.click("form button[type=submit]")
    assert newcomer.url == f"{console.url}/password"
    await newcomer.goto(f"{console.url}/department")
    assert newcomer.url == f"{console.url}/password"
    await newcomer.fill("input[name=current]", one_time)
    await newcomer.fill("input[name=new]", "sun-chooses-this-one")
    await newcomer.fill("input[name=repeat]", "sun-chooses-this-one")
    await newcomer.click("form[action='/password'] button")
    assert await newcomer.inner_text("[role=status]") == "密码已修改，其他设备上的登录已退出。"
    await newcomer.goto(f"{console.url}/department")
    assert await newcomer.inner_text("h1") == "示例市教育局"


# -- the access matrix in the browser ---------------------------------------------------------------


async def test_every_role_meets_the_access_matrix_in_a_real_browser_session(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    values = await matrix_paths(console, work)
    checked = 0
    for account in EVERYONE:
        page = await open_as(chromium, console.url, account)
        token = await page.get_attribute("form[action='/logout'] input[name=csrf_token]", "value")
        for method, template, form, expected in ACCESS_MATRIX:
            url = console.url + template.format(**values)
            if method == "GET" and not template.endswith((".csv", ".xlsx", ".json")):
                response = await page.goto(url)
                status = response.status
                if expected[account] == OK and template not in ("/",):
                    assert page.url.split("?")[0] == url.split("?")[0], (account, url)
            elif method == "GET":
                response = await page.request.get(url, max_redirects=0)
                status = response.status
            else:
                response = await page.request.post(
                    url, form=form | {"csrf_token": token}, max_redirects=0
                )
                status = response.status
            got = OK if status not in (401, 403, 404) else status
            assert got == expected[account], (account, method, url, status)
            checked += 1
        await page.context.close()
    assert checked == len(EVERYONE) * len(ACCESS_MATRIX)


# -- hostile input ------------------------------------------------------------------------------------


async def test_hostile_text_is_shown_as_text_on_every_page(
    console: Console, chromium: Any
) -> None:
    resident = await add_resident(console.services, 330001, XSS)
    filed = await console.desk.file(
        complaint(
            resident,
            description=f"垃圾没人清理 {XSS}",
            contact_name=XSS,
            location_text=XSS,
        )
    )
    escalation = await add_escalation(console.services, resident, f"问题 {XSS}")
    dialogs: list[str] = []
    texts: dict[str, str] = {}
    visits = {
        "manager": (f"/tickets/{filed.number}", "/log?q=%3Cscript%3E", "/unanswered"),
        "officer": (f"/tickets/{filed.number}", "/department"),
        "staff": (f"/inbox/{escalation}", "/inbox"),
    }
    for account, paths in visits.items():
        page = await open_as(chromium, console.url, account)
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        for path in paths:
            await page.goto(console.url + path)
            assert await page.locator("script").count() == 0, path
            assert await page.locator("img").count() == 0, path
            assert "<script>alert" not in await page.content(), path
            texts[f"{account} {path}"] = await page.inner_text("main")
            if path.startswith("/log"):
                assert await page.input_value("input[name=q]") == "<script>"
        await page.context.close()
    assert f"垃圾没人清理 {XSS}" in texts[f"manager /tickets/{filed.number}"]
    assert f"姓名\n{XSS}" in texts[f"officer /tickets/{filed.number}"]
    assert f"问题 {XSS}" in texts[f"staff /inbox/{escalation}"]
    assert f"问题 {XSS}" in texts["manager /unanswered"]
    assert dialogs == []


async def test_an_admin_cannot_plant_markup_in_a_display_name(
    console: Console, chromium: Any
) -> None:
    page = await open_as(chromium, console.url, "admin")
    await page.fill("input[name=username]", "mallory")
    await page.fill("input[name=display_name]", XSS)
    await page.click("text=创建")
    await page.goto(f"{console.url}/admin/users")
    assert XSS in await page.inner_text("table")
    assert await page.locator("table script, table img").count() == 0


# -- CSRF and throttling in the browser -------------------------------------------------------------


async def test_a_form_stripped_of_its_csrf_token_is_refused(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    page = await open_as(chromium, console.url, "officer")
    await page.goto(f"{console.url}/tickets/{work.urban}")
    await page.eval_on_selector(
        "form[action$=acknowledge] input[name=csrf_token]", "input => input.remove()"
    )
    response_status: list[int] = []
    page.on("response", lambda response: response_status.append(response.status))
    await page.click("form[action$=acknowledge] button")
    assert 403 in response_status
    assert await page.inner_text("h1") == "无权操作"
    assert await ticket_status(console, work.urban) == "assigned"


async def test_a_guesser_is_locked_out_even_when_the_guess_is_right(
    console: Console, chromium: Any
) -> None:
    page = await (await chromium.new_context()).new_page()
    await page.goto(f"{console.url}/login")
    for number in range(5):
        await page.fill("input[name=username]", "manager")
        await page.fill("input[name=password]", f"guess-number-{number}")
        await page.click("form button[type=submit]")
        assert await page.inner_text("[role=alert]") == "用户名或密码不正确。"
    await page.fill("input[name=username]", "manager")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    assert await page.inner_text("[role=alert]") == "登录失败次数过多，请稍后再试。"
    assert page.url == f"{console.url}/login"


# -- a phone ----------------------------------------------------------------------------------------


async def test_an_officer_can_work_on_a_phone_screen(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    page = await open_as(
        chromium,
        console.url,
        "officer",
        viewport={"width": 375, "height": 740},
        is_mobile=True,
        has_touch=True,
    )
    for path in ("/department", f"/tickets/{work.urban}"):
        await page.goto(console.url + path)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, path
    button = page.locator("form[action$=acknowledge] button")
    box = await button.bounding_box()
    assert box is not None
    assert box["height"] >= 40
    await button.tap()
    assert await page.inner_text("[role=status]") == "已签收。"
