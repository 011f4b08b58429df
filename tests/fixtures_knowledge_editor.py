"""Fixtures of the knowledge-base editor: services over a private copy of the knowledge base,
accounts of an officer of each of two departments, an editor and a manager."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.publishing import Editor
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.console.accounts import create_user
from bot.core.config import Settings
from bot.services import Services
from tests.fixtures_console import PASSWORD
from tests.fixtures_conversation import conversation_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
CIVIL = "civil-affairs"
POLICE = "public-security"
# An item of each department in the bundled knowledge base.
CIVIL_ITEM = "marriage-registration"
POLICE_ITEM = "id-card-renewal"
KB_ACCOUNTS: dict[str, tuple[str, str | None, str]] = {
    "civil-officer": ("officer", CIVIL, "民政王科长"),
    "police-officer": ("officer", POLICE, "公安李科长"),
    "kb-editor": ("editor", None, "政务公开办张审核"),
    "kb-manager": ("manager", None, "刘主任"),
}


def knowledge_settings(database_url: str, directory: Path, **knowledge: Any) -> Settings:
    """The conversation settings with the knowledge base in `directory`."""
    base = conversation_settings(database_url)
    values: dict[str, Any] = {"dir": directory, "reload_poll_seconds": 0.2}
    values.update(knowledge)
    return base.model_copy(update={"knowledge": base.knowledge.model_copy(update=values)})


def copy_knowledge(target: Path) -> Path:
    shutil.copytree(REPO_ROOT / "knowledge", target)
    return target


async def create_kb_accounts(services: Services) -> dict[str, Editor]:
    """Create KB_ACCOUNTS (password PASSWORD); return each as the desk's Editor."""
    editors = {}
    async with services.sessions() as session:
        for username, (role, department, name) in KB_ACCOUNTS.items():
            user = await create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                departments=set(services.knowledge.kb.departments),
                department_id=department,
                display_name=name,
            )
            await session.flush()
            editors[username] = Editor(user.id, name, role, department)
        await session.commit()
    return editors


@dataclass
class EditedKnowledge:
    """Services over a private knowledge base copy, and the accounts that edit it."""

    directory: Path
    services: Services
    editors: dict[str, Editor]


@pytest.fixture
async def edited(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[EditedKnowledge]:
    """Services on a private copy of the bundled knowledge base (SQLite and PostgreSQL)."""
    directory = copy_knowledge(tmp_path / "knowledge")
    settings = knowledge_settings(database_url, directory)
    store = KnowledgeStore(directory, thresholds_from(settings))
    services = await Services.start(settings, knowledge=store)
    try:
        editors = await create_kb_accounts(services)
        yield EditedKnowledge(directory, services, editors)
    finally:
        await services.close()
