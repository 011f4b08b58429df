"""The local try-out has departments to file tickets with: a department's Telegram group, the
supervisor's group, and a pretend department system reached by signed webhook that answers by
signed callback. The whole round trip over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bot.answering.store import KnowledgeStore
from bot.core.config import load_settings
from bot.runner import running
from tests.fixtures_conversation import REPO_ROOT
from tests.test_ticket_chat import choose_category
from tryout.department_demo import demo_base_url


async def test_in_the_try_out_a_report_reaches_the_department_system_which_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled_store: KnowledgeStore
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
            cursor = api.messages(resident.chat)[-1].sequence
            async with http.post(
                page + "/act", data={"ticket": number, "action": "acknowledge"}
            ) as response:
                assert response.status == 200
            [notice] = await api.wait_for_bot_messages(resident.chat, after=cursor)
            assert "签收" in notice.text
        ticket = await started.services.tickets.get(number)
        assert ticket.status == "acknowledged"
