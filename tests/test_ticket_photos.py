"""Residents' photos are fetched through the bot's Bot API server (the real python-telegram-bot
Application against LocalBotApi: getFile, then the download), kept in the database, and served by
the console to those who may see the ticket, audited; the shared location shows with a map link.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from telegram import Bot

from bot.core.config import Settings, WebSettings, file_url_of
from bot.core.models import AttachmentFile, AuditEntry, TicketAttachment
from bot.tickets.attachments import (
    FAILED,
    PENDING,
    STORED,
    TOO_LARGE,
    AttachmentStore,
    PhotoFetcher,
    image_type,
)
from bot.tickets.desk import PhotoRef
from bot.workers import TelegramPhotoSource, photo_fetcher
from tests.fixtures_console import Console, LoginAs, complaint
from tests.fixtures_conversation import BotHarness
from tests.fixtures_tickets import TicketBot
from tests.test_console_browser import open_as
from tests.test_ticket_chat import file_rubbish_complaint
from tryout.local_bot_api import LocalBotApi, sample_png

LATITUDE, LONGITUDE = 30.274085, 120.15507


async def statuses(services: Any, number: str) -> list[str]:
    """Return the fetch status of each photo of a ticket (pending when not queued)."""
    ticket = await services.tickets.get(number)
    async with services.sessions() as session:
        rows = await session.execute(
            select(AttachmentFile.status)
            .select_from(TicketAttachment)
            .outerjoin(AttachmentFile, AttachmentFile.attachment_id == TicketAttachment.id)
            .where(TicketAttachment.ticket_id == ticket.id)
            .order_by(TicketAttachment.id)
        )
        return [status or PENDING for status in rows.scalars()]


async def kept(services: Any, number: str) -> list[AttachmentFile]:
    ticket = await services.tickets.get(number)
    async with services.sessions() as session:
        rows = await session.execute(
            select(AttachmentFile)
            .join(TicketAttachment, TicketAttachment.id == AttachmentFile.attachment_id)
            .where(TicketAttachment.ticket_id == ticket.id)
            .order_by(AttachmentFile.attachment_id)
        )
        files = list(rows.scalars())
        for file in files:
            await session.refresh(file, ["content"])
        return files


async def test_the_workers_fetch_a_residents_photos_through_the_bot_api_and_keep_them(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    confirmation = await file_rubbish_complaint(chat, photos=2)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    # The workers' fetcher runs in the background; wait (without a time limit on the result)
    # until neither photo is pending.
    for _ in range(600):
        if PENDING not in await statuses(bot.services, number):
            break
        await asyncio.sleep(0.05)
    assert await statuses(bot.services, number) == [STORED, STORED]
    files = await kept(bot.services, number)
    png = sample_png()
    assert [f.content for f in files] == [png, png]
    assert {f.content_type for f in files} == {"image/png"}
    assert {f.sha256 for f in files} == {hashlib.sha256(png).hexdigest()}
    assert all(f.size == len(png) and f.attempts == 1 for f in files)
    # Fetched through getFile and the file download of the same local server.
    assert [c.method for c in bot.api.calls if c.method == "getFile"] == ["getFile"] * 2


async def test_a_photo_shows_as_pending_until_fetched_then_only_to_those_who_may_see_it(
    bot: BotHarness, console: Console, login_as: LoginAs
) -> None:
    # The console is served beside the bot on the same database (`console`), as `python -m bot
    # web` would be; the bot here runs no ticket workers, so nothing fetches on its own.
    chat = bot.resident()
    confirmation = await file_rubbish_complaint(chat, photos=1)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    # Filed at once; nothing fetched it yet.
    assert await statuses(bot.services, number) == [PENDING]
    officer = await login_as("officer")
    status, page = await officer.get(f"/tickets/{number}")
    assert status == 200
    assert "照片获取中…" in page
    assert "<img" not in page
    [attachment] = await bot.services.tickets.attachments(number)
    status, _ = await officer.get(f"/tickets/{number}/photos/{attachment.id}")
    assert status == 404

    assert await photo_fetcher(bot.services.tickets, bot.app.bot).run_until_idle() == 1
    _, page = await officer.get(f"/tickets/{number}")
    url = f"/tickets/{number}/photos/{attachment.id}"
    assert f'<img src="{url}"' in page
    assert "照片获取中" not in page
    async with officer.http.get(url) as response:
        assert response.status == 200
        body = await response.read()
        headers = response.headers
    assert body == sample_png()
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "private, no-store"
    assert headers["Content-Disposition"] == f'inline; filename="{number}-{attachment.id}.png"'
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    async with bot.services.sessions() as session:
        entry = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "ticket.view_personal_data")
                .order_by(AuditEntry.id.desc())
            )
        ).first()
    assert entry is not None
    assert entry.target_id == number
    assert entry.detail == {"fields": ["photo"], "photo": attachment.id}

    # Another department's officer, and an admin, get nothing; the try is audited.
    other = await login_as("other_officer")
    assert (await other.get(url))[0] == 404
    admin = await login_as("admin")
    assert (await admin.get(url))[0] == 403
    # A photo number under another ticket's number is not found either.
    other_ticket = await bot.services.tickets.file(complaint(None, share_identity=False))
    assert (await officer.get(f"/tickets/{other_ticket.number}/photos/{attachment.id}"))[0] == 404
    # Not a number, or a number too big for the column: no such page.
    assert (await officer.get(f"/tickets/{number}/photos/9999999999"))[0] == 404
    assert (await officer.get(f"/tickets/{number}/photos/-1"))[0] == 404


async def file_with_photos(services: Any, *file_ids: str, **fields: Any) -> str:
    filed = await services.tickets.file(
        complaint(None, photos=tuple(PhotoRef(f) for f in file_ids), **fields)
    )
    return str(filed.number)


@pytest.fixture
async def api_bot() -> AsyncIterator[tuple[LocalBotApi, Bot]]:
    """A LocalBotApi and a python-telegram-bot Bot pointed at it, files included."""
    async with LocalBotApi() as api:
        bot = Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url)
        async with bot:
            yield api, bot


async def test_what_cannot_be_kept_is_marked_and_a_failed_download_is_tried_again(
    services: Any, api_bot: tuple[LocalBotApi, Bot]
) -> None:
    api, bot = api_bot
    small = api.store_file(sample_png(), "photos", "image/png")
    # A photo bigger than the limit (a valid PNG header, then noise).
    big = api.store_file(sample_png()[:33] + os.urandom(70_000), "photos", "image/png")
    # Bytes that are no image, sent as a photo.
    fake = api.store_file(b"<html><script>alert(1)</script></html>", "photos", "image/jpeg")
    number = await file_with_photos(
        services, small.file_id, big.file_id, fake.file_id, "no-such-file-id"
    )
    tickets = services.settings.tickets.model_copy(update={"max_photo_bytes": 65_536})
    settings = services.settings.model_copy(update={"tickets": tickets})
    store = AttachmentStore(settings, services.sessions)
    # First through a Bot API server that is not there: a network error, tried again later.
    absent = Bot(api.token, base_url="http://127.0.0.1:9/bot")
    assert await PhotoFetcher(store, TelegramPhotoSource(absent)).run_until_idle() == 4
    assert await statuses(services, number) == [PENDING] * 4
    files = await kept(services, number)
    assert all(f.attempts == 1 and f.last_error for f in files)
    assert all(f.next_attempt_at > dt.datetime.now(dt.UTC) for f in files)
    # Not due yet: a fetcher running now leaves them alone.
    fetcher = PhotoFetcher(store, TelegramPhotoSource(bot))
    assert await fetcher.run_until_idle() == 0
    later = AttachmentStore(
        settings, services.sessions, now=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    )
    assert await PhotoFetcher(later, TelegramPhotoSource(bot)).run_until_idle() == 4
    assert await statuses(services, number) == [STORED, TOO_LARGE, FAILED, FAILED]
    files = await kept(services, number)
    assert files[0].content == sample_png()
    assert [f.content for f in files[1:]] == [None, None, None]
    assert "not a JPEG" in (files[2].last_error or "")
    assert "invalid file_id" in (files[3].last_error or "").lower()
    # Given up for good: nothing is tried again.
    assert await PhotoFetcher(later, TelegramPhotoSource(bot)).run_until_idle() == 0


async def test_transient_failures_give_up_after_the_configured_attempts(
    services: Any, api_bot: tuple[LocalBotApi, Bot]
) -> None:
    api, _ = api_bot
    photo = api.store_file(sample_png(), "photos", "image/png")
    number = await file_with_photos(services, photo.file_id)
    tickets = services.settings.tickets.model_copy(update={"photo_fetch_attempts": 3})
    settings = services.settings.model_copy(update={"tickets": tickets})
    # Not initialised: it could not even ask getMe of a server that is not there.
    absent = Bot(api.token, base_url="http://127.0.0.1:9/bot")
    for hours in (0, 1, 2):
        store = AttachmentStore(
            settings,
            services.sessions,
            now=lambda hours=hours: dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
        )
        assert await PhotoFetcher(store, TelegramPhotoSource(absent)).run_until_idle() == 1
    assert await statuses(services, number) == [FAILED]
    [file] = await kept(services, number)
    assert file.attempts == 3


async def test_two_fetchers_share_the_queue_without_fetching_a_photo_twice(
    services: Any, api_bot: tuple[LocalBotApi, Bot]
) -> None:
    api, bot = api_bot
    ids = [api.store_file(sample_png(), "photos", "image/png").file_id for _ in range(5)]
    number = await file_with_photos(services, *ids)
    store = AttachmentStore(services.settings, services.sessions)
    one, two = (PhotoFetcher(store, TelegramPhotoSource(bot), batch_size=2) for _ in range(2))
    tried = await asyncio.gather(one.run_until_idle(), two.run_until_idle())
    assert sum(tried) == 5
    assert await statuses(services, number) == [STORED] * 5
    assert len([c for c in api.calls if c.method == "getFile"]) == 5


def test_the_content_type_is_read_from_the_bytes() -> None:
    assert image_type(sample_png()) == "image/png"
    assert image_type(b"\xff\xd8\xff\xe0" + b"\0" * 20) == "image/jpeg"
    assert image_type(b"GIF89a" + b"\0" * 10) == "image/gif"
    assert image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert image_type(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>") is None
    assert image_type(b"") is None


async def test_the_ticket_page_shows_the_coordinates_and_a_map_link(
    console: Console, login_as: LoginAs
) -> None:
    filed = await console.desk.file(
        complaint(None, latitude=LATITUDE, longitude=LONGITUDE, location_text="幸福小区东门")
    )
    officer = await login_as("officer")
    _, page = await officer.get(f"/tickets/{filed.number}")
    assert "30.27408, 120.15507" in page
    link = (
        "https://www.openstreetmap.org/?mlat=30.274085&amp;mlon=120.155070"
        "#map=17/30.274085/120.155070"
    )
    assert f'href="{link}"' in page
    assert 'rel="noopener noreferrer"' in page


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_in_chromium_an_officer_sees_the_photo_the_map_link_and_english_categories(
    console: Console, api_bot: tuple[LocalBotApi, Bot], chromium: Any
) -> None:
    api, bot = api_bot
    photo = api.store_file(sample_png(), "photos", "image/png")
    pending = api.store_file(sample_png(), "photos", "image/png")
    number = await file_with_photos(
        console.services,
        photo.file_id,
        latitude=LATITUDE,
        longitude=LONGITUDE,
        location_text="幸福小区东门",
    )
    store = AttachmentStore(console.services.settings, console.services.sessions)
    assert await PhotoFetcher(store, TelegramPhotoSource(bot)).run_until_idle() == 1
    # A second ticket whose photo nobody fetched yet.
    waiting = await file_with_photos(console.services, pending.file_id)
    page = await open_as(chromium, console.url, "officer")
    await page.goto(f"{console.url}/tickets/{number}")
    image = page.locator("ul.photos img")
    assert await image.count() == 1
    # Loaded by the browser with its session cookie, and decoded as an image.
    # Wait for the picture itself to arrive (a loaded machine may not have it yet).
    loaded = "img => img.complete ? img.naturalWidth : new Promise(done => { img.onload = () => done(img.naturalWidth); img.onerror = () => done(0); })"
    assert await image.evaluate(loaded) == 96
    assert await page.inner_text(".coordinates") == "30.27408, 120.15507"
    link = page.locator("a.map-link")
    assert await link.get_attribute("href") == (
        "https://www.openstreetmap.org/?mlat=30.274085&mlon=120.155070#map=17/30.274085/120.155070"
    )
    assert await link.inner_text() == "在地图上查看"
    assert "市容环境" in await page.inner_text("dl.facts")
    await page.goto(f"{console.url}/tickets/{waiting}")
    assert await page.inner_text("ul.photos") == "照片获取中…"
    assert await page.locator("ul.photos img").count() == 0

    await page.click("text=English")
    assert await page.inner_text("ul.photos") == "Photo being fetched…"
    await page.goto(f"{console.url}/tickets/{number}")
    facts = await page.inner_text("dl.facts")
    assert "City appearance and sanitation" in facts
    assert "市容环境" not in facts
    assert await page.inner_text("a.map-link") == "Show on a map"
    await page.goto(f"{console.url}/department")
    assert "City appearance and sanitation" in await page.inner_text("main")
    assert "市容环境" not in await page.inner_text("main")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_in_chromium_the_english_log_names_categories_in_english(
    console: Console, chromium: Any
) -> None:
    filed = await console.desk.file(
        complaint(None, category="生态环境", description="河道发黑有臭味。")
    )
    page = await open_as(chromium, console.url, "manager")
    await page.goto(f"{console.url}/log")
    await page.click("text=English")
    options = await page.locator("select[name=category] option").all_inner_texts()
    assert "Environment and pollution" in options
    assert "City appearance and sanitation" in options
    assert not [o for o in options if any("\u4e00" <= ch <= "\u9fff" for ch in o)]
    await page.select_option("select[name=category]", "生态环境")
    await page.click("form.filters button[type=submit]")
    row = page.locator("table.tickets tbody tr").first
    assert filed.number in await row.inner_text()
    assert "Environment and pollution" in await row.inner_text()


def test_the_map_address_must_be_a_web_address_with_both_coordinates() -> None:
    web = WebSettings(map_url="https://maps.example.cn/?q={lat},{lon}")
    assert web.map_link(30.5, 120.25) == "https://maps.example.cn/?q=30.500000,120.250000"
    for wrong in ("javascript:alert(1)//{lat}{lon}", "https://maps.example.cn/?q={lat}"):
        with pytest.raises(ValidationError):
            WebSettings(map_url=wrong)


def test_files_come_from_the_same_bot_api_server_as_the_methods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TELEGRAM_API_BASE_FILE_URL", raising=False)
    assert file_url_of("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url_of("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/file/bot"
    settings = Settings()
    assert settings.telegram_file_url("http://10.0.0.5:8081/bot") == (
        "http://10.0.0.5:8081/file/bot"
    )
    configured = settings.model_copy(
        update={
            "telegram": settings.telegram.model_copy(
                update={"api_base_file_url": "https://files.example.cn/file/bot"}
            )
        }
    )
    assert configured.telegram_file_url("http://10.0.0.5:8081/bot") == (
        "https://files.example.cn/file/bot"
    )
