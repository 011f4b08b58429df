"""Take the screenshots of docs/console.md: `make screenshots` (or `python -m tests.console_screenshots`).

Builds a console on a temporary SQLite database filled with demo work, logs in as each role in
Debian's headless Chromium and saves PNGs in docs/screenshots/. Chinese text needs a CJK font
(Debian: fonts-wqy-microhei or fonts-noto-cjk).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.config import load_settings
from bot.services import Services
from bot.tickets.desk import TicketDesk
from tests.console_demo import add_demo_work
from tests.fixtures_console import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    create_accounts,
    login_name,
    serving,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = REPO_ROOT / "docs" / "screenshots"


async def log_in(browser: Any, url: str, account: str, **context: Any) -> Any:
    """Return a page logged in as an account."""
    options = {"locale": "zh-CN", "viewport": {"width": 1280, "height": 900}} | context
    page = await (await browser.new_context(**options)).new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", login_name(account))
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    return page


async def shoot(page: Any, url: str, name: str, *, whole: bool = True) -> None:
    """Save a page, whole or (for long lists) its first screen."""
    await page.goto(url)
    await page.screenshot(path=str(TARGET / f"{name}.png"), full_page=whole)
    print(f"docs/screenshots/{name}.png", flush=True)


async def main() -> int:
    from playwright.async_api import async_playwright

    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        base = load_settings(REPO_ROOT / "config.toml")
        settings = base.model_copy(
            update={
                "database": base.database.model_copy(
                    update={"url": f"sqlite+aiosqlite:///{folder}/demo.sqlite3"}
                )
            }
        )
        knowledge = KnowledgeStore(settings.knowledge_dir, thresholds_from(settings))
        services = await Services.start(settings, knowledge=knowledge)
        try:
            await create_accounts(services.sessions, set(knowledge.kb.departments))
            # Before the console starts, so that its figures of past months include the work.
            desk = TicketDesk(settings, services.sessions, lambda: knowledge.kb)
            live = await add_demo_work(services, desk)
            async with serving(services) as console, async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                url = console.url
                page = await (await browser.new_context(locale="zh-CN")).new_page()
                await shoot(page, f"{url}/login", "login")
                staff = await log_in(browser, url, "staff")
                await shoot(staff, f"{url}/inbox", "staff-inbox")
                await shoot(staff, f"{url}/inbox/1", "staff-escalation")
                await shoot(staff, f"{url}/triage", "staff-triage", whole=False)
                officer = await log_in(browser, url, "officer")
                await shoot(officer, f"{url}/department", "officer-queue", whole=False)
                await shoot(officer, f"{url}/tickets/{live['waiting']}", "officer-ticket")
                manager = await log_in(browser, url, "manager")
                await shoot(manager, f"{url}/log", "manager-log", whole=False)
                await shoot(manager, f"{url}/tickets/{live['replied']}", "manager-ticket")
                await shoot(manager, f"{url}/figures", "manager-figures")
                await shoot(manager, f"{url}/unanswered?days=30", "manager-unanswered")
                await shoot(manager, f"{url}/disclosure", "manager-disclosure")
                await manager.goto(f"{url}/lang/en?next=/figures")
                await shoot(manager, f"{url}/figures", "manager-figures-en")
                admin = await log_in(browser, url, "admin")
                await shoot(admin, f"{url}/admin/users", "admin-users")
                phone = await log_in(
                    browser,
                    url,
                    "officer",
                    viewport={"width": 390, "height": 844},
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                )
                await shoot(phone, f"{url}/tickets/{live['waiting']}", "phone-officer-ticket")
                await browser.close()
        finally:
            await services.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
