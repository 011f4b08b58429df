"""Departments edited through the knowledge base's review: departments.toml written with
tomlkit (every bundled department round trips, comments stay), the checks of `kb check` and the
numbering plan, an officer's proposal for their own department only, publishing with versions,
restore and git commits, every process reloading, items listed for review when their
department's name or phone changes, and a department still in use refused retirement. The desk
runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.answering.department_editing import (
    check_department_draft,
    department_content,
    department_from_form,
    departments_in_file,
    render_departments_file,
)
from bot.answering.freshness import DEPARTMENT_PHONE_CHANGED, DEPARTMENT_RENAMED
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.publishing import EditError, KnowledgeSync
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.console.accounts import create_user
from bot.core.models import AuditEntry, KnowledgeChange
from tests.fixtures_knowledge_editor import CIVIL, CIVIL_ITEM, POLICE, EditedKnowledge

BUNDLED = Path(__file__).resolve().parent.parent / "knowledge" / "departments.toml"
NEW_PHONE = "012-81113199"
SPORTS = "sports-bureau"


def _file(edited: EditedKnowledge) -> str:
    return (edited.directory / "departments.toml").read_text(encoding="utf-8")


def _content(edited: EditedKnowledge, department_id: str, **changes: object) -> dict[str, object]:
    found = department_content(_file(edited), department_id)
    assert found is not None
    return {**found, **changes}


# -- the file ------------------------------------------------------------------------------------


def test_every_bundled_department_round_trips_and_only_its_lines_change() -> None:
    text = BUNDLED.read_text(encoding="utf-8")
    for entry in departments_in_file(text):
        assert render_departments_file(text, entry["id"], entry) == text
    changed = render_departments_file(
        text, CIVIL, {**(department_content(text, CIVIL) or {}), "phone": NEW_PHONE}
    )
    before, after = text.splitlines(), changed.splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ('phone = "012-81113100"', f'phone = "{NEW_PHONE}"')
    ]


def test_adding_and_retiring_keep_every_other_department_and_its_comments() -> None:
    original = (
        "# The city's departments.\n\n"
        '[[departments]]\nid = "a"\nname = "甲局"  # official name\n\n'
        '# B answers for parks.\n[[departments]]\nid = "b"\nname = "乙局"\n'
        'complaint_keywords = ["公园", "绿地"]\n\n'
        '# C is new.\n[[departments]]\nid = "c"\nname = "丙局"\n'
    )
    added = render_departments_file(
        original, "d", {"id": "d", "name": "丁局", "complaint_keywords": ["体育", "健身"]}
    )
    assert added.startswith(original)
    assert added.endswith(
        '\n\n[[departments]]\nid = "d"\nname = "丁局"\ncomplaint_keywords = ["体育", "健身"]\n'
    )
    # Retiring b takes the comment above it, and keeps the one above c.
    without_b = render_departments_file(original, "b", None)
    assert "# B answers for parks." not in without_b
    assert '# C is new.\n[[departments]]\nid = "c"' in without_b
    assert 'name = "甲局"  # official name' in without_b
    # Retiring the first keeps the file's head and the comment above the second.
    without_a = render_departments_file(original, "a", None)
    assert without_a.startswith("# The city's departments.\n")
    assert '# B answers for parks.\n[[departments]]\nid = "b"' in without_a
    assert [d["id"] for d in departments_in_file(without_a)] == ["b", "c"]
    with pytest.raises(ValueError):
        render_departments_file(original, "zzz", None)


def test_the_form_is_checked_as_kb_check_and_the_numbering_plan_check_it() -> None:
    kb = load_knowledge_base(BUNDLED.parent)
    existing = department_content(BUNDLED.read_text(encoding="utf-8"), CIVIL)
    form = {
        "name": "  示例市民政局 ",
        "phone": "12-34",
        "url": "javascript:alert(1)",
        "complaint_categories": "婚姻登记\n社会救助\n",
        "complaint_categories_en": "Marriage registration",
        "complaint_keywords": "低保\n\n婚姻",
        # One line a category: the second names a category the department does not list.
        "complaint_category_keywords": "婚姻登记: 结婚 离婚\n\n殡仪: 火化\n",
    }
    content = department_from_form(form, CIVIL, existing)
    assert content["name"] == "示例市民政局"
    assert content["complaint_keywords"] == ["低保", "婚姻"]
    assert content["complaint_category_keywords"] == ["婚姻登记: 结婚 离婚", "殡仪: 火化"]
    checked = check_department_draft(content, kb, existing_id=CIVIL)
    assert not checked.ok
    fields = {p.field: p.message for p in checked.problems}
    assert fields["phone"] == "'12-34' is not a phone number"
    assert fields["url"] == "must start with https:// or http://"
    assert fields["complaint_categories_en"].startswith("must name each of complaint_categories")
    assert fields["complaint_category_keywords"] == "'殡仪' is not one of complaint_categories"
    # A real number passes; a number of the right shape the plan does not know (the made-up
    # area code 012 of the bundled city) only warns; a short service number passes.
    for phone, warned in (("010-81110110", False), (NEW_PHONE, True), ("12345", False)):
        checked = check_department_draft(
            {**(existing or {}), "phone": phone}, kb, existing_id=CIVIL
        )
        assert checked.ok, phone
        assert bool(checked.warnings) is warned, phone
    for phone in ("电话待定", "0123"):
        checked = check_department_draft(
            {**(existing or {}), "phone": phone}, kb, existing_id=CIVIL
        )
        assert [p.field for p in checked.problems] == ["phone"], phone
    # A new department needs a free kebab-case id and a name.
    new = check_department_draft({"id": POLICE, "name": "重复"}, kb, existing_id=None)
    assert [p.field for p in new.problems] == ["id"]
    new = check_department_draft({"id": "Sports Bureau"}, kb, existing_id=None)
    assert sorted(p.field or "" for p in new.problems) == ["id", "name"]


# -- the desk ------------------------------------------------------------------------------------


async def test_an_officers_new_phone_is_reviewed_published_reloaded_and_its_items_are_due(
    edited: EditedKnowledge,
) -> None:
    services = edited.services
    desk = services.departments
    officer = edited.editors["civil-officer"]
    original = _file(edited)
    other = KnowledgeStore(edited.directory, thresholds_from(services.settings))
    sync = KnowledgeSync(other, services.sessions, 60)
    await sync.start()
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert DEPARTMENT_PHONE_CHANGED not in fresh[CIVIL_ITEM].reasons

    change = await desk.propose(
        officer,
        action="edit",
        department_id=CIVIL,
        content=_content(edited, CIVIL, phone=NEW_PHONE),
    )
    stale = await desk.propose(
        officer, action="edit", department_id=CIVIL, content=_content(edited, CIVIL, hours="全天")
    )
    assert _file(edited) == original  # nothing is published before review
    with pytest.raises(EditError) as refused:
        await services.editor.decide(officer, change, approve=True)
    assert refused.value.code == "forbidden"
    await services.editor.decide(edited.editors["kb-editor"], change, approve=True)

    written = _file(edited)
    assert written.startswith(original.split("[[departments]]")[0])  # the file's comments
    assert department_content(written, CIVIL) == _content(edited, CIVIL)
    assert department_content(written, CIVIL)["phone"] == NEW_PHONE  # type: ignore[index]
    assert services.knowledge.kb.departments[CIVIL].phone == NEW_PHONE
    assert other.kb.departments[CIVIL].phone != NEW_PHONE
    assert await sync.check() is True
    assert other.kb.departments[CIVIL].phone == NEW_PHONE
    # The second proposal was made against the old entry: it must be redone.
    with pytest.raises(EditError) as outdated:
        await services.editor.decide(edited.editors["kb-editor"], stale, approve=True)
    assert outdated.value.code == "outdated"

    versions = await desk.versions(CIVIL)
    assert [(v.number, v.action) for v in versions] == [(2, "edit"), (1, "baseline")]
    assert versions[1].content is not None
    assert versions[1].content["phone"] == "012-81113100"
    assert versions[0].toml.startswith('[[departments]]\nid = "civil-affairs"\n')
    assert f'phone = "{NEW_PHONE}"' in versions[0].toml
    assert (versions[0].author_name, versions[0].reviewer_name) == (
        "民政王科长",
        "政务公开办张审核",
    )

    # Every item of the department is due for review, reviewed in the console or not.
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    civil = [f for f in fresh.values() if f.department_id == CIVIL]
    assert civil
    assert all(f.reasons[-1:] == (DEPARTMENT_PHONE_CHANGED,) for f in civil)
    assert all(DEPARTMENT_PHONE_CHANGED not in f.reasons for f in fresh.values() if f not in civil)
    await services.editor.confirm_current(officer, CIVIL_ITEM)
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert fresh[CIVIL_ITEM].reasons == ()

    # Restoring version 1 is a change like any other; a renaming is due as well.
    restore = await desk.restore(officer, CIVIL, 1)
    await services.editor.decide(edited.editors["kb-manager"], restore, approve=True)
    assert department_content(_file(edited), CIVIL) == department_content(original, CIVIL)
    renamed = await desk.propose(
        officer,
        action="edit",
        department_id=CIVIL,
        content=_content(edited, CIVIL, name="示例市民政服务局"),
    )
    await services.editor.decide(edited.editors["kb-editor"], renamed, approve=True)
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert fresh[CIVIL_ITEM].reasons == (DEPARTMENT_RENAMED, DEPARTMENT_PHONE_CHANGED)
    assert load_knowledge_base(edited.directory).departments[CIVIL].name == "示例市民政服务局"

    async with services.sessions() as session:
        audit = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.target_id)
                .where(AuditEntry.target_type == "knowledge")
                .order_by(AuditEntry.id)
            )
        ).all()
    key = f"@department:{CIVIL}"
    assert [tuple(a) for a in audit] == [
        ("knowledge.propose", key),
        ("knowledge.propose", key),
        ("knowledge.approve", key),
        ("knowledge.confirm", CIVIL_ITEM),
        ("knowledge.propose", key),
        ("knowledge.approve", key),
        ("knowledge.propose", key),
        ("knowledge.approve", key),
    ]


async def test_an_officer_can_never_change_another_department(edited: EditedKnowledge) -> None:
    desk = edited.services.departments
    officer = edited.editors["civil-officer"]
    police = _content(edited, POLICE, phone="012-81110111")
    with pytest.raises(EditError) as refused:
        await desk.propose(officer, action="edit", department_id=POLICE, content=police)
    assert refused.value.code == "forbidden"
    # Nor add a department, nor retire one, not even their own.
    for action, department_id, content in (
        ("create", SPORTS, {"id": SPORTS, "name": "示例市体育局"}),
        ("retire", CIVIL, None),
        ("retire", POLICE, None),
    ):
        with pytest.raises(EditError) as refused:
            await desk.propose(
                officer, action=action, department_id=department_id, content=content
            )
        assert refused.value.code == "forbidden", (action, department_id)
    async with edited.services.sessions() as session:
        assert (await session.scalars(select(KnowledgeChange))).all() == []


async def test_a_department_in_use_is_not_retired_and_a_new_one_is_retired_and_restored(
    edited: EditedKnowledge,
) -> None:
    directory = edited.directory
    await asyncio.to_thread(git, directory, "init", "-q")
    await asyncio.to_thread(git, directory, "add", "-A")
    await asyncio.to_thread(git, directory, "commit", "-q", "-m", "start")
    services = edited.services
    desk = services.departments
    reviewer = edited.editors["kb-editor"]
    with pytest.raises(EditError) as in_use:
        await desk.propose(reviewer, action="retire", department_id=CIVIL, content=None)
    assert in_use.value.code == "in_use"
    assert CIVIL_ITEM in in_use.value.detail

    created = await desk.propose(
        reviewer,
        action="create",
        department_id=SPORTS,
        content={"id": SPORTS, "name": "示例市体育局", "phone": "12345"},
    )
    await services.editor.decide(reviewer, created, approve=True)
    assert services.knowledge.kb.departments[SPORTS].name == "示例市体育局"
    # An officer account of the department, or its section in config.toml, keep it in use.
    async with services.sessions() as session:
        user = await create_user(
            session,
            username="sports-officer",
            password="a-long-password-1",
            role="officer",
            departments=set(services.knowledge.kb.departments),
            department_id=SPORTS,
        )
        await session.commit()
    with pytest.raises(EditError) as in_use:
        await desk.propose(reviewer, action="retire", department_id=SPORTS, content=None)
    assert in_use.value.detail == "still used by officer accounts: sports-officer"
    desk.configured = lambda: {SPORTS}
    assert str(await desk.in_use(SPORTS)) == (
        "still used by its [departments.<id>] section in config.toml; "
        "officer accounts: sports-officer"
    )
    desk.configured = tuple
    async with services.sessions() as session:
        found = await session.get(type(user), user.id)
        assert found is not None
        found.disabled = True
        await session.commit()

    retired = await desk.propose(reviewer, action="retire", department_id=SPORTS, content=None)
    await services.editor.decide(reviewer, retired, approve=True)
    assert SPORTS not in services.knowledge.kb.departments
    assert SPORTS not in [d["id"] for d in departments_in_file(_file(edited))]
    assert [v.item_id for v in await desk.retired()] == [f"@department:{SPORTS}"]
    assert await services.editor.retired_items() == []
    restored = await desk.restore(reviewer, SPORTS, 1)
    await services.editor.decide(reviewer, restored, approve=True)
    assert services.knowledge.kb.departments[SPORTS].phone == "12345"
    log = (await asyncio.to_thread(git, directory, "log", "--format=%s")).splitlines()
    assert log == [
        f"create department {SPORTS} (version 3)",
        f"retire department {SPORTS} (version 2)",
        f"create department {SPORTS} (version 1)",
        "start",
    ]
    assert await asyncio.to_thread(git, directory, "status", "--porcelain") == ""


def git(directory: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@localhost"]
    return subprocess.run(
        ["git", "-C", str(directory), *identity, *arguments],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
