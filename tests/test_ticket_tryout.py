"""The local try-out has departments to file tickets with: a department's Telegram group, the
supervisor's group, and a pretend department system reached by signed webhook that answers by
signed callback. The whole round trip over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.answering.store import KnowledgeStore
from bot.core.config import load_settings
from bot.runner import running
from tests.fixtures_conversation import REPO_ROOT
from tests.test_ticket_chat import choose_category
from tryout.department_demo import demo_base_url
from tryout.local_bot_api import LocalBotApi
from tryout.runner import tryout_knowledge


async def test_in_the_try_out_a_report_reaches_the_department_system_which_answers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundled_store: KnowledgeStore,
    chromium: Any,
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    base = load_settings(REPO_ROOT / "config.toml")
    settings = base.model_copy(
        update={
            "database": base.database.model_copy(update={"path": tmp_path / "bot.sqlite3"}),
            "web": base.web.model_copy(update={"enabled": False}),
            "callbacks": base.callbacks.model_copy(update={"port": 0}),
        }
    )
    async with running(settings, tryout_port=0, knowledge=bundled_store) as started:
        api = started.tryout
        assert api is not None
        keys = [view.key for view in api.tryout.views]
        assert "department" in keys
        assert "supervisor" in keys
        resident = api.private_chat(api.tryout.resident)
        await resident.send("/complain")
        await resident.press("🚨 举报", expect=2)
        await choose_category(resident, "生态环境")
        await resident.send("化工厂晚上偷排废水，河水发黑。")
        await resident.press("➡️ 下一步", expect=2)
        await resident.press("🕶 匿名举报", expect=2)
        confirmation = await resident.press("✅ 确认提交", expect=2)
        number = confirmation.text.split("工单号 ")[1].split("\n")[0]
        page = demo_base_url(started.settings.callbacks)
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                async with http.get(page) as response:
                    shown = await response.text()
                if number in shown:
                    break
                await asyncio.sleep(0.1)
            assert number in shown
            assert "化工厂晚上偷排废水" in shown
            # In a browser: a styled page that says the report is anonymous (never "null").
            context = await chromium.new_context()
            browser_page = await context.new_page()
            await browser_page.goto(page)
            row = browser_page.locator("tr", has_text=number)
            assert "匿名举报 Anonymous report" in await row.inner_text()
            assert "null" not in await browser_page.locator("body").inner_text()
            header = browser_page.locator("header")
            background = await header.evaluate("e => getComputedStyle(e).backgroundColor")
            assert background not in ("rgba(0, 0, 0, 0)", "transparent")
            button = row.get_by_role("button", name="签收 Acknowledge")
            assert await button.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
            await browser_page.screenshot(
                path=str(tmp_path / "department-demo.png"), full_page=True
            )
            await context.close()
            cursor = api.messages(resident.chat)[-1].sequence
            async with http.post(
                page + "/act", data={"ticket": number, "action": "acknowledge"}
            ) as response:
                assert response.status == 200
            [notice] = await api.wait_for_bot_messages(resident.chat, after=cursor)
            assert "签收" in notice.text
        ticket = await started.services.tickets.get(number)
        assert ticket.status == "acknowledged"


def snapshot(folder: Path) -> dict[Path, bytes]:
    """Return every file of a folder with its bytes."""
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


async def test_teaching_in_the_try_out_changes_its_copy_of_the_knowledge_base_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_copy: Path
) -> None:
    # `knowledge_copy` stands for the checkout's tracked knowledge/ folder.
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    tracked = snapshot(knowledge_copy)
    base = load_settings(REPO_ROOT / "config.toml")
    data = tmp_path / "data"
    settings = base.model_copy(
        update={
            "knowledge": base.knowledge.model_copy(update={"dir": knowledge_copy}),
            "database": base.database.model_copy(update={"path": data / "bot.sqlite3"}),
            "matching": base.matching.model_copy(
                update={"semantic_model": "off", "embedding_cache": data / "embeddings"}
            ),
            "web": base.web.model_copy(update={"enabled": False}),
            "callbacks": base.callbacks.model_copy(update={"port": 0}),
        }
    )
    question = "我的证件不见了"
    async with running(settings, tryout_port=0) as started:
        assert started.settings.knowledge_dir == data / "tryout-knowledge"
        api = started.tryout
        assert api is not None
        resident = api.private_chat(api.tryout.resident)
        await resident.send("/start", expect=2)
        await resident.press("🙋 转人工", expect=2)
        await resident.send(question, expect=2)
        staff = api.group_chat(api.tryout.staff_group, api.tryout.staff[0])
        post = api.last_bot_message(api.tryout.staff_group)
        assert post is not None
        await staff.reply(post, "身份证请按挂失补领办理。", expect=3)
        replies = await staff.reply(post, "/learn id-card-replacement", expect=2)
        assert "已把这个问法加入事项" in replies.text
    copied = data / "tryout-knowledge" / "guides" / "id-card-replacement.toml"
    assert question in copied.read_text("utf-8")
    assert snapshot(knowledge_copy) == tracked
    # The copy, with what was taught, is kept at the next start; a changed knowledge/ (an
    # update of the checkout) is copied again.
    assert tryout_knowledge(knowledge_copy, data) == data / "tryout-knowledge"
    assert question in copied.read_text("utf-8")
    synonyms = knowledge_copy / "synonyms.toml"
    synonyms.write_text(synonyms.read_text("utf-8") + "\n", encoding="utf-8")
    tryout_knowledge(knowledge_copy, data)
    assert question not in copied.read_text("utf-8")


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/London"])
async def test_the_chat_page_shows_times_in_the_deployments_zone_not_the_browsers(
    chromium: Any, zone: str
) -> None:
    async with LocalBotApi(time_zone=zone) as api:
        world = api.setup_tryout()
        sent = api.send_text(world.resident, api.private_chat(world.resident).chat, "你好")
        expected = dt.datetime.fromtimestamp(sent.data["date"], ZoneInfo(zone)).strftime("%H:%M")
        # A browser far from either zone: its own clock would show another hour.
        context = await chromium.new_context(timezone_id="America/Los_Angeles")
        page = await context.new_page()
        await page.goto(api.tryout_url)
        bubble = page.locator(".bubble", has_text="你好").first
        await bubble.wait_for()
        assert expected in await bubble.locator(".meta").inner_text()
        await context.close()
