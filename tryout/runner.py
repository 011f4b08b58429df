"""The local try-out as `python -m bot run` starts it without TELEGRAM_BOT_TOKEN.

`start_tryout` starts a local Bot API server with a generated token and the try-out's people in
it (a resident, a staff group, a department's group, a supervisor's group), and returns a
`TryOut`: the settings the bot runs with, what to serve beside the department callback endpoint
(a department's pretend system, tryout/department_demo.py), and the banner that tells the person
trying where to go. bot/runner.py uses it only in that case; nothing else in the product does.
See README.md ("Quick start") and docs/telegram.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.console.accounts import create_user, find_user, hash_password, one_time_password
from bot.core.config import PRIVACY_SECRET_ENV, Settings
from bot.services import Services
from tryout.department_demo import (
    DemoDepartment,
    demo_base_url,
    setup_demo_routes,
    tryout_ticket_settings,
)
from tryout.local_bot_api import LocalBotApi

log = logging.getLogger(__name__)

# Console accounts of the try-out, one per role (its own database, never a real deployment's).
TRYOUT_ACCOUNTS = (
    ("tryout-staff", "staff", None, "试用工作人员"),
    ("tryout-officer", "officer", "urban-management", "试用城管局办理人员"),
    # Reviews the officer's knowledge-base proposals (items and the department's own entry).
    ("tryout-editor", "editor", None, "试用知识库审核人员"),
    ("tryout-manager", "manager", None, "试用管理人员"),
    ("tryout-admin", "admin", None, "试用系统管理员"),
)


# The try-out's own copy of the knowledge base, beside its database (data/ by default), and the
# file that remembers which knowledge/ it was copied from.
KNOWLEDGE_COPY = "tryout-knowledge"
KNOWLEDGE_STAMP = "tryout-knowledge.source"


def _knowledge_digest(directory: Path) -> str:
    """Return a digest of a knowledge folder's files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def tryout_knowledge(source: Path, data_dir: Path) -> Path:
    """Return the try-out's copy of the knowledge base, made from `source` when needed.

    What the try-out teaches (📚 a phrasing learned in the staff group) is written to the copy,
    never to the tracked knowledge/ folder. The copy is kept between starts, and made again when
    `source` has changed since (e.g. after a `git pull`); what the try-out published is in its
    database and is brought back into the new copy at start (bot/answering/replication.py).
    """
    target = data_dir / KNOWLEDGE_COPY
    stamp = data_dir / KNOWLEDGE_STAMP
    digest = _knowledge_digest(source)
    if target.is_dir() and stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = data_dir / f".{KNOWLEDGE_COPY}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(source, fresh)
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)
    stamp.write_text(digest, encoding="utf-8")
    log.info("try-out knowledge base copied from %s to %s", source, target)
    return target


def tryout_settings(settings: Settings, staff_chat_id: int) -> Settings:
    """Return the settings of a try-out: its staff group, its own SQLite file, and its own copy
    of the knowledge base (data/tryout-knowledge), so trying leaves the checkout unchanged."""
    database = settings.database
    if not (os.environ.get("DATABASE_URL") or database.url):
        database = database.model_copy(update={"path": database.path.with_name("tryout.sqlite3")})
    data_dir = settings.resolve(settings.database.path).parent
    knowledge = settings.knowledge.model_copy(
        update={"dir": tryout_knowledge(settings.knowledge_dir, data_dir)}
    )
    return settings.model_copy(
        update={
            "knowledge": knowledge,
            "database": database,
            "telegram": settings.telegram.model_copy(
                update={"staff_chat_id": staff_chat_id, "mode": "polling"}
            ),
        }
    )


async def tryout_accounts(services: Services) -> str:
    """Create the try-out's console accounts (or give them a new password); return it.

    The password is new at every start and printed only to the terminal of the person trying.
    """
    password = one_time_password()
    departments = set(services.knowledge.kb.departments)
    async with services.sessions() as session:
        for username, role, department, name in TRYOUT_ACCOUNTS:
            user = await find_user(session, username)
            if user is None:
                await create_user(
                    session,
                    username=username,
                    password=password,
                    role=role,
                    departments=departments,
                    department_id=department,
                    display_name=name,
                )
            else:
                user.password_hash = hash_password(password)
                user.disabled = False
                user.must_change_password = False
        await session.commit()
    return password


@dataclass
class TryOut:
    """A running try-out: its Bot API server, token and settings."""

    api: LocalBotApi
    token: str
    settings: Settings
    # The department's pretend system, once it is served.
    demo: DemoDepartment | None = None

    def serve_demo_department(self, app: web.Application) -> None:
        """Add the pretend department system to the callback listener's application."""
        self.demo = setup_demo_routes(app, self.settings)

    async def welcome(self, services: Services) -> str:
        """Make the console accounts (when the console runs); return the banner to print."""
        password = await tryout_accounts(services) if self.settings.web.enabled else None
        return banner(self, password)


def banner(tryout: TryOut, password: str | None) -> str:
    """Return what the person trying reads first: where to chat, the console, the departments."""
    api, settings = tryout.api, tryout.settings
    text = ""
    if tryout.demo is not None:
        text += (
            "  Departments: 城市管理局 answers in the group “城市管理局工单群”; 生态环境局's own\n"
            f"  system (a demo) is at {demo_base_url(settings.callbacks)}\n"
            "\n"
        )
    world = api.tryout
    staff = "、".join(person.first_name for person in world.staff)
    text += (
        "\n"
        "  本地试用 Local try-out (no TELEGRAM_BOT_TOKEN set)\n"
        f"  Open {api.tryout_url} in your browser.\n"
        f"  You can be the resident {world.resident.first_name} talking to the bot, or the staff\n"
        f"  ({staff}) in the group “{world.staff_group.title}”, who answer by replying to the\n"
        "  bot's posts. Stop with Ctrl+C.\n"
    )
    if password is not None:
        web_settings = settings.web
        names = ", ".join(username for username, *_ in TRYOUT_ACCOUNTS)
        text += (
            f"\n  Web console 网页后台: http://{web_settings.host}:{web_settings.port}/\n"
            f"  Log in as {names}\n"
            f"  with the password {password} (new at every start).\n"
            "  Knowledge base 知识库: tryout-officer proposes changes to 城市管理局's items and\n"
            "  department entry, tryout-editor reviews and publishes them.\n"
            "  Sample tickets for its figures 示例数据: make samples (remove: make samples-remove)\n"
        )
    return text


@contextlib.asynccontextmanager
async def start_tryout(settings: Settings, *, port: int | None = None) -> AsyncIterator[TryOut]:
    """Serve a local Bot API server with the try-out's people; stop it when the block ends.

    `port` overrides [telegram] tryout_port (0: any free port).
    """
    token = f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(24)}"
    # The secret of anonymous reports' pseudonyms (bot/core/privacy.py), made up for this run
    # and kept in this process only: a try-out's anonymous reports are followed until it stops.
    os.environ.setdefault(PRIVACY_SECRET_ENV, secrets.token_urlsafe(32))
    telegram = settings.telegram
    api = LocalBotApi(
        token=token,
        host=telegram.tryout_host,
        port=telegram.tryout_port if port is None else port,
        time_zone=settings.timezone,
    )
    async with api:
        world = api.setup_tryout()
        settings = tryout_settings(settings, world.staff_group.id)
        # A department chat, a supervisor chat and a department's system to try tickets with.
        settings = tryout_ticket_settings(api, settings)
        yield TryOut(api=api, token=token, settings=settings)
