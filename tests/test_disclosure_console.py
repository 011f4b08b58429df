"""A department answers a disclosure application in the console, in Debian's headless Chromium:
the reply form refuses an empty reason by naming the field, refuses a file that is not what it
claims, and keeps the uploaded document, which the ticket page then offers as a download. The
same form over plain HTTP on SQLite and PostgreSQL: the upload limit holds for the reply form
alone.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bot.tickets.desk import Actor
from tests.fixtures_console import Console, LoginAs, add_resident, complaint
from tests.test_console_browser import open_as

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
REASON = "实施名单含有住户姓名和门牌号，属于个人隐私，依据条例第十五条不予公开。"


async def application(console: Console, telegram_user_id: int) -> str:
    """A disclosure application passed to urban management (the `officer` account's)."""
    resident = await add_resident(console.services, telegram_user_id)
    filed = await console.desk.file(
        complaint(
            resident,
            type="disclosure",
            category="政务公开",
            description="申请公开2026年老旧小区改造项目的资金安排和实施名单。",
        )
    )
    await console.desk.reassign(filed.number, Actor.staff("1"), "urban-management")
    return filed.number


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_officer_answers_with_a_file_and_cannot_leave_the_reason_empty(
    console: Console, chromium: Any
) -> None:
    number = await application(console, 660001)
    page = await open_as(chromium, console.url, "officer")
    await page.goto(f"{console.url}/tickets/{number}")
    form = "form[action$='/reply']"

    async def answer(reason: str, name: str, content: bytes) -> str:
        await page.fill(f"{form} textarea[name=text]", "资金安排予以公开，实施名单部分公开。")
        await page.select_option(f"{form} select[name=outcome]", "partly_disclosed")
        await page.fill(f"{form} textarea[name=reason]", reason)
        await page.set_input_files(
            f"{form} input[name=document]",
            files=[{"name": name, "mimeType": "application/pdf", "buffer": content}],
        )
        await page.click(f"{form} button")
        return str(await page.inner_text("[role=alert], [role=status]"))

    notice = await answer("", "资金安排.pdf", PDF)
    assert notice == "除“予以公开”外，必须填写“理由”一栏（会告诉申请人）。"
    assert (await console.desk.get(number)).status == "assigned"
    assert await console.desk.documents(number) == []

    notice = await answer(REASON, "资金安排.pdf", b"<html><script>alert(1)</script></html>")
    assert notice.startswith("“公开的文件”未接受")
    assert (await console.desk.get(number)).status == "assigned"

    notice = await answer(REASON, "资金安排.pdf", PDF)
    assert notice == "答复已发送，群众将收到通知。"
    ticket = await console.desk.get(number)
    assert (ticket.status, ticket.outcome) == ("replied", "partly_disclosed")
    timeline = await page.inner_text("ol.timeline")
    assert f"理由：{REASON}" in timeline
    assert timeline.count("理由：") == 1  # other events' own "reason" data is no reason shown
    link = page.locator("a[download]", has_text="资金安排.pdf")
    href = await link.get_attribute("href")
    assert href is not None
    download = await page.request.get(f"{console.url}{href}")
    assert download.status == 200
    assert await download.body() == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"

    # Another department's officer cannot fetch it.
    other = await open_as(chromium, console.url, "other_officer")
    refused = await other.request.get(f"{console.url}{href}")
    assert refused.status == 404


async def test_only_the_reply_form_takes_a_body_as_large_as_a_document(
    console: Console, login_as: LoginAs
) -> None:
    number = await application(console, 660002)
    client = await login_as("officer")
    status, _ = await client.get(f"/tickets/{number}")
    assert status == 200
    big = PDF + b"0" * (600 * 1024)  # over the console's usual limit, under the document's

    def form(**texts: str) -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("csrf_token", client.token)
        for name, value in texts.items():
            data.add_field(name, value)
        data.add_field("document", big, filename="附件.pdf", content_type="application/pdf")
        return data

    url = f"/tickets/{number}"
    # Nobody but a logged-in officer may send so much: not a stranger, not staff.
    staff = await login_as("staff")
    async with aiohttp.ClientSession(base_url=console.url) as stranger:
        for http in (stranger, staff.http):
            async with http.post(
                f"{url}/reply",
                data=form(text="见附件。", outcome="disclosed"),
                allow_redirects=False,
            ) as response:
                assert response.status == 413
    async with client.http.post(
        f"{url}/ask", data=form(question="请补充。"), allow_redirects=False
    ) as response:
        assert response.status == 413
    async with client.http.post(
        f"{url}/reply",
        data=form(text="见附件。", outcome="disclosed", reason=""),
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        assert response.headers["Location"].endswith("msg=replied")
    [kept] = await console.desk.documents(number)
    assert kept.size == len(big)
