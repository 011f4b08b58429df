"""Knowledge-base changes reach every host: two (or three) knowledge folders on one database, as
`python -m bot run` on two machines has them. What one host publishes (a phrasing taught by
staff, a console edit, a new item, a retired one) is brought into the other host's folder and
matcher; a host started later with an old folder catches up before it serves; a file changed
by hand on one host is kept beside the published text that replaces it; `kb publish` publishes a
host's hand edits (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.answering.department_editing import department_content
from bot.answering.editing import file_hash
from bot.answering.learning import PhrasingTeacher
from bot.answering.publishing import EditError, KnowledgeEditor, KnowledgeSync
from bot.answering.replication import FileChange, PublishConflict, folder_files
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.db import create_engine, session_factory
from bot.core.models import KnowledgeFile
from bot.services import Services
from bot.workers import run_worker_process
from tests.fixtures_knowledge import REPO_ROOT
from tests.fixtures_knowledge_editor import (
    CIVIL,
    CIVIL_ITEM,
    POLICE_ITEM,
    EditedKnowledge,
    copy_knowledge,
    knowledge_settings,
)

CIVIL_FILE = f"guides/{CIVIL_ITEM}.toml"
POLICE_FILE = f"guides/{POLICE_ITEM}.toml"
# Answered by another item until staff teach it to the marriage-registration item.
TAUGHT = "红本本在哪儿领"
NEW_ANSWER = "结婚登记现在可以全市通办，在任一婚姻登记处预约即可办理，不收费。"
NEW_ITEM = "pet-dog-licence"


@dataclass
class Host:
    """Another machine: its own knowledge folder, store, poll and editor on the same database."""

    directory: Path
    store: KnowledgeStore
    sync: KnowledgeSync
    editor: KnowledgeEditor


@pytest.fixture
async def host_b(
    edited: EditedKnowledge, database_url: str, tmp_path: Path
) -> AsyncIterator[Host]:
    directory = copy_knowledge(tmp_path / "host-b")
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        store = KnowledgeStore(directory, thresholds_from(edited.services.settings))
        sync = KnowledgeSync(store, sessions, 60)
        await sync.start()
        yield Host(directory, store, sync, KnowledgeEditor(store, sessions, sync))
    finally:
        await engine.dispose()


def _text(directory: Path, path: str) -> str:
    return (directory / path).read_bytes().decode("utf-8")


def _set_aside(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.local-*"))


async def _publish(edited: EditedKnowledge, action: str, item_id: str, content: object) -> None:
    editor = edited.services.editor
    change = await editor.propose(
        edited.editors["civil-officer"],
        action=action,
        item_id=item_id,
        kind="guide",
        content=content,  # type: ignore[arg-type]
    )
    await editor.decide(edited.editors["kb-editor"], change, approve=True)


def _civil_with_answer(edited: EditedKnowledge, answer: str) -> dict[str, object]:
    found = edited.services.editor.current_content(CIVIL_ITEM)
    assert found is not None
    content = found[1]
    content["answer"] = answer
    return content


async def test_what_one_host_publishes_reaches_the_other_hosts_folder_and_matcher(
    edited: EditedKnowledge, host_b: Host
) -> None:
    before = host_b.store.matcher.match(TAUGHT)
    assert not (before.decision == "answer" and before.best and before.best.item.id == CIVIL_ITEM)

    # Staff teach host A a phrasing: host B's poll writes the file and answers with it.
    taught = await edited.services.teacher.add_phrasing(CIVIL_ITEM, TAUGHT)
    assert taught.status == "learned"
    assert TAUGHT not in _text(host_b.directory, CIVIL_FILE)
    assert await host_b.sync.check() is True
    assert _text(host_b.directory, CIVIL_FILE) == _text(edited.directory, CIVIL_FILE)
    after = host_b.store.matcher.match(TAUGHT)
    assert after.decision == "answer"
    assert after.best is not None
    assert after.best.item.id == CIVIL_ITEM
    assert await host_b.sync.check() is False

    # A new item approved in the console on host A appears on host B, then goes when retired.
    content = {
        "id": NEW_ITEM,
        "kind": "guide",
        "title": "犬只登记",
        "category": "婚姻登记",
        "department": CIVIL,
        "questions": ["养狗要办证吗", "狗证去哪里办"],
        "keywords": ["狗证"],
        "answer": "养犬须在取得犬只后 30 日内登记。",
    }
    await _publish(edited, "create", NEW_ITEM, content)
    assert await host_b.sync.check() is True
    new_file = f"guides/{NEW_ITEM}.toml"
    assert _text(host_b.directory, new_file) == _text(edited.directory, new_file)
    assert host_b.store.kb.items[NEW_ITEM].answer == "养犬须在取得犬只后 30 日内登记。"
    await _publish(edited, "retire", NEW_ITEM, None)
    assert await host_b.sync.check() is True
    assert not (host_b.directory / new_file).exists()
    assert NEW_ITEM not in host_b.store.kb.items

    # The folders are alike wherever the database published, and nothing was set aside: host
    # B's files held texts the database knew.
    assert _set_aside(host_b.directory) == []
    for path in (CIVIL_FILE, POLICE_FILE, "synonyms.toml", "departments.toml"):
        assert _text(host_b.directory, path) == _text(edited.directory, path)


async def test_a_host_started_later_with_an_old_folder_catches_up_before_serving(
    edited: EditedKnowledge, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _publish(edited, "edit", CIVIL_ITEM, _civil_with_answer(edited, NEW_ANSWER))
    taught = await edited.services.teacher.add_phrasing(POLICE_ITEM, "身份证坏了去哪换新的")
    assert taught.status == "learned"
    # Which stores reload while host C starts (host A's own may, on its next poll: the log
    # line alone would not tell the two apart).
    reloaded: list[KnowledgeStore] = []
    reload = KnowledgeStore.reload

    async def recording(store: KnowledgeStore) -> object:
        reloaded.append(store)
        return await reload(store)

    monkeypatch.setattr(KnowledgeStore, "reload", recording)

    # Host C starts from the release's folder, which both changes passed by.
    directory = copy_knowledge(tmp_path / "host-c")
    settings = knowledge_settings(database_url, directory)
    words_only = settings.matching.model_copy(update={"semantic_model": "off"})
    services = await Services.start(settings.model_copy(update={"matching": words_only}))
    try:
        # The folder was brought up to date before the knowledge base was built: no reload.
        assert services.knowledge not in reloaded
        assert services.knowledge.kb.items[CIVIL_ITEM].answer == NEW_ANSWER
        assert "身份证坏了去哪换新的" in services.knowledge.kb.items[POLICE_ITEM].questions
        for path in (CIVIL_FILE, POLICE_FILE):
            assert _text(directory, path) == _text(edited.directory, path)
        assert services.sync.seen == 2
        assert _set_aside(directory) == []
    finally:
        await services.close()

    # A worker (python -m bot worker) on a fourth host does the same before its first sweep.
    worker_folder = copy_knowledge(tmp_path / "host-d")
    assert (
        await run_worker_process(knowledge_settings(database_url, worker_folder), once=True) == 0
    )
    for path in (CIVIL_FILE, POLICE_FILE):
        assert _text(worker_folder, path) == _text(edited.directory, path)


async def test_a_file_changed_by_hand_is_kept_beside_the_published_text_that_replaces_it(
    edited: EditedKnowledge, host_b: Host, caplog: pytest.LogCaptureFixture
) -> None:
    hand_edit = _text(host_b.directory, CIVIL_FILE) + "# 本机手改，未经控制台\n"
    (host_b.directory / CIVIL_FILE).write_text(hand_edit, encoding="utf-8")
    departments = _text(host_b.directory, "departments.toml") + "# 本机加的注释\n"
    (host_b.directory / "departments.toml").write_text(departments, encoding="utf-8")

    await _publish(edited, "edit", CIVIL_ITEM, _civil_with_answer(edited, NEW_ANSWER))
    with caplog.at_level(logging.WARNING, logger="bot.answering.replication"):
        assert await host_b.sync.check() is True
    # The database's published text wins; the hand edit is kept beside it, and said so.
    assert _text(host_b.directory, CIVIL_FILE) == _text(edited.directory, CIVIL_FILE)
    assert host_b.store.kb.items[CIVIL_ITEM].answer == NEW_ANSWER
    (kept,) = _set_aside(host_b.directory)
    assert kept.parent == host_b.directory / "guides"
    assert kept.name.startswith(f"{CIVIL_ITEM}.toml.local-")
    assert kept.read_text(encoding="utf-8") == hand_edit
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(kept.name in w and "never published" in w for w in warnings), warnings
    # A file the database never published is the host's own: left as it is.
    assert _text(host_b.directory, "departments.toml") == departments

    # `kb publish` on host B publishes its own files; host A takes the departments in, keeping
    # its earlier copy (the database never held it, so it cannot tell it from a hand edit).
    a_departments = _text(edited.directory, "departments.toml")
    published = await host_b.sync.replica.publish_folder()
    assert published.version is not None
    assert "departments.toml" in published.published
    assert CIVIL_FILE not in published.published
    assert published.behind == ()
    assert await edited.services.sync.check() is True
    assert _text(edited.directory, "departments.toml") == departments
    (a_kept,) = _set_aside(edited.directory)
    assert a_kept.read_text(encoding="utf-8") == a_departments
    again = await host_b.sync.replica.publish_folder()
    assert again.version is None


async def test_a_published_file_changed_by_hand_is_set_aside_before_the_host_changes_it_and_at_start(
    edited: EditedKnowledge, host_b: Host
) -> None:
    await _publish(edited, "edit", CIVIL_ITEM, _civil_with_answer(edited, NEW_ANSWER))
    assert await host_b.sync.check() is True
    first_edit = _text(host_b.directory, CIVIL_FILE) + "# 第一次手改\n"
    (host_b.directory / CIVIL_FILE).write_text(first_edit, encoding="utf-8")

    # Staff teach host B a phrasing of that item: it is added to the published text.
    teacher = PhrasingTeacher(host_b.store, host_b.editor)
    assert (await teacher.add_phrasing(CIVIL_ITEM, TAUGHT)).status == "learned"
    assert "第一次手改" not in _text(host_b.directory, CIVIL_FILE)
    assert await edited.services.sync.check() is True
    assert _text(edited.directory, CIVIL_FILE) == _text(host_b.directory, CIVIL_FILE)
    assert TAUGHT in edited.services.knowledge.kb.items[CIVIL_ITEM].questions
    assert [p.read_text(encoding="utf-8") for p in _set_aside(host_b.directory)] == [first_edit]

    # Changed by hand again, then the process restarts: its first check compares every file.
    second_edit = _text(host_b.directory, CIVIL_FILE) + "# 第二次手改\n"
    (host_b.directory / CIVIL_FILE).write_text(second_edit, encoding="utf-8")
    await KnowledgeSync(host_b.store, host_b.sync.sessions, 60).start()
    assert _text(host_b.directory, CIVIL_FILE) == _text(edited.directory, CIVIL_FILE)
    kept = sorted(p.read_text(encoding="utf-8") for p in _set_aside(host_b.directory))
    assert kept == sorted([first_edit, second_edit])


async def test_a_change_made_against_a_file_another_host_published_since_is_outdated(
    edited: EditedKnowledge, host_b: Host
) -> None:
    # Host B's officer proposes against the file both hosts have; host A publishes first.
    b_change = await host_b.editor.propose(
        edited.editors["civil-officer"],
        action="edit",
        item_id=CIVIL_ITEM,
        kind="guide",
        content=_civil_with_answer(edited, "本机 B 的答复。"),
    )
    original = _text(host_b.directory, CIVIL_FILE)
    await _publish(edited, "edit", CIVIL_ITEM, _civil_with_answer(edited, NEW_ANSWER))
    with pytest.raises(EditError) as refused:
        await host_b.editor.decide(edited.editors["kb-editor"], b_change, approve=True)
    assert refused.value.code == "outdated"
    # Host B took A's file in before trying, so its folder holds what was published.
    assert _text(host_b.directory, CIVIL_FILE) == _text(edited.directory, CIVIL_FILE)

    # A publisher whose folder is behind (a change committed between its catch-up and its own)
    # is refused in the transaction, whatever its host: nothing is stored.
    replica = host_b.sync.replica
    async with replica.sessions() as session:
        stale = FileChange(CIVIL_FILE, original + "# stale\n", file_hash(original))
        with pytest.raises(PublishConflict):
            await replica.record(session, 99, [stale])
        await session.rollback()
        count = await session.scalar(
            select(func.count()).select_from(KnowledgeFile).where(KnowledgeFile.version == 99)
        )
    assert count == 0

    # A phrasing taught on host B builds on host A's edit, and reaches host A.
    taught = await PhrasingTeacher(host_b.store, host_b.editor).add_phrasing(CIVIL_ITEM, TAUGHT)
    assert taught.status == "learned"
    assert await edited.services.sync.check() is True
    item = edited.services.knowledge.kb.items[CIVIL_ITEM]
    assert item.answer == NEW_ANSWER
    assert TAUGHT in item.questions
    assert _text(host_b.directory, CIVIL_FILE) == _text(edited.directory, CIVIL_FILE)


async def _kb_publish(tmp_path: Path, directory: Path, url: str) -> tuple[int, str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[knowledge]\ndir = "{directory.as_posix()}"\n', encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if k != "BOT_CONFIG"}
    environment |= {"PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "--config", str(config), "kb", "publish"),
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_kb_publish_stores_every_file_once_and_refuses_a_broken_folder(
    tmp_path: Path,
) -> None:
    directory = copy_knowledge(tmp_path / "knowledge")
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3"
    files = folder_files(directory)

    status, out, err = await _kb_publish(tmp_path, directory, url)
    assert status == 0, err
    assert "published version 1:" in out
    assert f"{len(files)} files" in out
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            stored = dict(
                (await session.execute(select(KnowledgeFile.path, KnowledgeFile.content))).all()
            )
    finally:
        await engine.dispose()
    assert sorted(stored) == sorted(files)
    assert stored["synonyms.toml"] == _text(directory, "synonyms.toml")

    status, out, _ = await _kb_publish(tmp_path, directory, url)
    assert status == 0
    assert "nothing to publish" in out

    (directory / CIVIL_FILE).write_text('id = "broken"\n', encoding="utf-8")
    status, _, err = await _kb_publish(tmp_path, directory, url)
    assert status == 2
    assert "nothing published" in err


async def test_a_department_edited_on_one_host_reaches_the_other_hosts_folder(
    edited: EditedKnowledge, host_b: Host
) -> None:
    phone = "012-81113199"
    path = edited.directory / "departments.toml"
    found = department_content(path.read_text(encoding="utf-8"), CIVIL)
    assert found is not None
    assert found["phone"] != phone
    desk = edited.services.departments
    change = await desk.propose(
        edited.editors["civil-officer"],
        action="edit",
        department_id=CIVIL,
        content={**found, "phone": phone},
    )
    await edited.services.editor.decide(edited.editors["kb-editor"], change, approve=True)
    assert host_b.store.kb.departments[CIVIL].phone != phone
    assert await host_b.sync.check() is True
    assert _text(host_b.directory, "departments.toml") == _text(
        edited.directory, "departments.toml"
    )
    assert host_b.store.kb.departments[CIVIL].phone == phone
    assert _set_aside(host_b.directory) == []
