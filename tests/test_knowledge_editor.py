"""The knowledge-base editor's desk and its files: proposals only for one's own department,
review, the TOML written with tomlkit (round trips, comments kept, passes kb check), versions
and restoring them, git commits, every process reloading through the published version, the
audit log, freshness, and the console's forms refusing forged posts."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.answering.editing import (
    check_draft,
    content_from_form,
    content_of_item_file,
    render_item_file,
    render_synonyms_file,
    search_items,
    synonym_groups_from_text,
)
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.publishing import EditError, KnowledgeSync
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.models import AuditEntry, KnowledgeChange, KnowledgeVersion
from tests.fixtures_console import ConsoleClient, serving
from tests.fixtures_knowledge_editor import (
    CIVIL,
    CIVIL_ITEM,
    POLICE,
    POLICE_ITEM,
    EditedKnowledge,
)

BUNDLED = Path(__file__).resolve().parent.parent / "knowledge"
NEW_ANSWER = "结婚登记现在可以全市通办，在任一婚姻登记处预约即可办理，不收费。"


# -- the files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(BUNDLED.glob("*/*.toml")), ids=lambda p: p.stem)
def test_every_bundled_item_round_trips_unchanged(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    content = content_of_item_file(text)
    assert render_item_file(content, text, None) == text
    written = render_item_file(content, text, dt.date(2026, 12, 3))
    again = content_of_item_file(written)
    assert again == content
    assert render_item_file(again, written, dt.date(2026, 12, 3)) == written


def test_an_edit_keeps_comments_and_untouched_keys_as_written() -> None:
    original = (
        "# 婚姻登记 — reviewed by the civil affairs bureau\n"
        'id = "x-item"\nkind = "guide"\n'
        'title = "旧标题"  # the official name\n'
        'category = "婚姻"\ndepartment = "civil-affairs"\n'
        'questions = [\n  "怎么办",  # most asked\n  "去哪办",\n]\n'
        'keywords = []\nanswer = "旧答复"\nupdated = 2026-01-01\n'
    )
    content = content_of_item_file(original)
    content["answer"] = "新答复"
    content["questions"] = [*content["questions"], "要带什么"]
    content["fee"] = "不收费"
    written = render_item_file(content, original, dt.date(2026, 12, 3))
    assert "# 婚姻登记 — reviewed by the civil affairs bureau" in written
    assert 'title = "旧标题"  # the official name' in written
    assert '"怎么办",  # most asked' in written
    data = tomllib.loads(written)
    assert data["answer"] == "新答复"
    assert data["questions"] == ["怎么办", "去哪办", "要带什么"]
    assert data["fee"] == "不收费"
    assert data["updated"] == dt.date(2026, 12, 3)
    del content["fee"]
    removed = render_item_file(content, written, None)
    assert "fee" not in tomllib.loads(removed)


def test_the_form_is_checked_as_kb_check_checks_a_file(tmp_path: Path) -> None:
    kb = load_knowledge_base(BUNDLED)
    form = {
        "title": "",
        "category": "婚姻",
        "department": "no-such-department",
        "questions": "\n\n",
        "answer": "<b>答复</b>\x00",
        "url": "javascript:alert(1)",
        "materials": "x" * 400,
        "related": "no-such-item",
    }
    content = content_from_form(form, "guide", "New_Item")
    checked = check_draft(content, kb, existing_id=None)
    assert not checked.ok
    fields = {name: [p.message for p in found] for name, found in checked.by_field().items()}
    assert fields["title"] == ["must not be empty"] or fields["title"] == ["missing field"]
    assert "is not kebab-case" in fields["id"][0]
    assert fields["department"][0].startswith("unknown department 'no-such-department'")
    assert fields["questions"] == ["must hold at least one question"]
    assert fields["url"] == ["must start with https:// or http://"]
    assert fields["materials"] == ["each line at most 300 characters"]
    assert content["answer"] == "<b>答复</b>"  # control characters go, text stays text
    taken = check_draft(
        content_from_form(
            {"title": "t", "category": "c", "department": CIVIL, "questions": "q", "answer": "a"},
            "guide",
            CIVIL_ITEM,
        ),
        kb,
        existing_id=None,
    )
    assert [p.field for p in taken.problems] == ["id"]


def test_search_finds_by_title_question_and_id() -> None:
    kb = load_knowledge_base(BUNDLED)
    assert [i.id for i in search_items(kb, query="结婚登记").items] == [CIVIL_ITEM]
    assert search_items(kb, query=POLICE_ITEM).items[0].id == POLICE_ITEM
    assert search_items(kb, department=CIVIL).total == 11
    assert search_items(kb, query="没有这种东西的词").total == 0


# -- the desk -------------------------------------------------------------------------------------


def git(directory: Path, *arguments: str) -> str:
    """Run git in a folder (as someone who keeps the knowledge base in git would)."""
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    return subprocess.run(
        ["git", "-C", str(directory), *identity, *arguments],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _file(edited: EditedKnowledge, item_id: str) -> str:
    return (edited.directory / "guides" / f"{item_id}.toml").read_text(encoding="utf-8")


async def _propose_answer(edited: EditedKnowledge, who: str, item_id: str, answer: str) -> int:
    found = edited.services.editor.current_content(item_id)
    assert found is not None
    kind, content = found
    content["answer"] = answer
    return await edited.services.editor.propose(
        edited.editors[who], action="edit", item_id=item_id, kind=kind, content=content
    )


async def test_an_officer_proposes_a_reviewer_publishes_and_every_process_reloads(
    edited: EditedKnowledge,
) -> None:
    services = edited.services
    original = _file(edited, CIVIL_ITEM)
    # Another process: its own store of the same folder, told through the database.
    other = KnowledgeStore(edited.directory, thresholds_from(services.settings))
    sync = KnowledgeSync(other, services.sessions, 60)
    await sync.start()

    change_id = await _propose_answer(edited, "civil-officer", CIVIL_ITEM, NEW_ANSWER)
    assert _file(edited, CIVIL_ITEM) == original  # nothing published before review
    with pytest.raises(EditError) as refused:
        await services.editor.decide(edited.editors["civil-officer"], change_id, approve=True)
    assert refused.value.code == "forbidden"

    await services.editor.decide(edited.editors["kb-editor"], change_id, approve=True)
    written = tomllib.loads(_file(edited, CIVIL_ITEM))
    assert written["answer"] == NEW_ANSWER
    assert load_knowledge_base(edited.directory).items[CIVIL_ITEM].answer == NEW_ANSWER
    assert services.knowledge.kb.items[CIVIL_ITEM].answer == NEW_ANSWER
    assert other.kb.items[CIVIL_ITEM].answer != NEW_ANSWER
    assert await sync.check() is True
    assert other.kb.items[CIVIL_ITEM].answer == NEW_ANSWER
    assert await sync.check() is False

    versions = await services.editor.versions(CIVIL_ITEM)
    assert [(v.number, v.action) for v in versions] == [(2, "edit"), (1, "baseline")]
    assert versions[1].toml == original
    assert versions[0].author_name == "民政王科长"
    assert versions[0].reviewer_name == "政务公开办张审核"
    fresh = {f.item_id: f for f in await services.editor.freshness()}[CIVIL_ITEM]
    assert fresh.reviewer == "政务公开办张审核"
    assert not fresh.stale

    # Restoring version 1 is a change like any other, and brings the old answer back.
    restore_id = await services.editor.restore(edited.editors["civil-officer"], CIVIL_ITEM, 1)
    await services.editor.decide(edited.editors["kb-manager"], restore_id, approve=True)
    assert content_of_item_file(_file(edited, CIVIL_ITEM)) == content_of_item_file(original)
    assert await sync.check() is True
    assert other.kb.items[CIVIL_ITEM].answer == services.knowledge.kb.items[CIVIL_ITEM].answer
    assert other.kb.items[CIVIL_ITEM].answer != NEW_ANSWER

    async with services.sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target_type == "knowledge")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert actions == [
        "knowledge.propose",
        "knowledge.approve",
        "knowledge.propose",
        "knowledge.approve",
    ]


async def test_an_officer_cannot_touch_another_departments_items(
    edited: EditedKnowledge,
) -> None:
    editor = edited.services.editor
    with pytest.raises(EditError) as refused:
        await _propose_answer(edited, "civil-officer", POLICE_ITEM, "改别人的条目")
    assert refused.value.code == "forbidden"
    # Nor move their own item to another department, nor create one for it.
    found = editor.current_content(CIVIL_ITEM)
    assert found is not None
    moved = dict(found[1], department=POLICE)
    with pytest.raises(EditError):
        await editor.propose(
            edited.editors["civil-officer"],
            action="edit",
            item_id=CIVIL_ITEM,
            kind="guide",
            content=moved,
        )
    with pytest.raises(EditError):
        await editor.propose(
            edited.editors["civil-officer"],
            action="retire",
            item_id=POLICE_ITEM,
            kind="guide",
            content=None,
        )
    with pytest.raises(EditError):
        await editor.confirm_current(edited.editors["civil-officer"], POLICE_ITEM)
    async with edited.services.sessions() as session:
        assert (await session.scalars(select(KnowledgeChange))).all() == []


async def test_a_sent_back_change_needs_a_comment_and_an_outdated_one_is_refused(
    edited: EditedKnowledge,
) -> None:
    editor = edited.services.editor
    first = await _propose_answer(edited, "civil-officer", CIVIL_ITEM, NEW_ANSWER)
    second = await _propose_answer(edited, "civil-officer", CIVIL_ITEM, "另一个答复，基于旧版本。")
    with pytest.raises(EditError) as no_comment:
        await editor.decide(edited.editors["kb-editor"], first, approve=False)
    assert no_comment.value.code == "comment_needed"
    await editor.decide(edited.editors["kb-editor"], first, approve=True)
    with pytest.raises(EditError) as outdated:
        await editor.decide(edited.editors["kb-editor"], second, approve=True)
    assert outdated.value.code == "outdated"
    sent = await editor.decide(
        edited.editors["kb-editor"], second, approve=False, comment="请在最新版本上修改"
    )
    assert sent.status == "sent_back"
    assert tomllib.loads(_file(edited, CIVIL_ITEM))["answer"] == NEW_ANSWER


async def test_a_new_item_is_retired_and_restored_and_git_keeps_one_commit_each(
    edited: EditedKnowledge,
) -> None:
    directory = edited.directory
    await asyncio.to_thread(git, directory, "init", "-q")
    await asyncio.to_thread(git, directory, "add", "-A")
    await asyncio.to_thread(git, directory, "commit", "-q", "-m", "start")
    editor = edited.services.editor
    content = {
        "id": "pet-dog-licence",
        "kind": "guide",
        "title": "犬只登记",
        "category": "婚姻登记",
        "department": CIVIL,
        "questions": ["养狗要办证吗", "狗证去哪里办"],
        "keywords": ["狗证"],
        "answer": "养犬须在取得犬只后 30 日内登记。",
    }
    created = await editor.propose(
        edited.editors["civil-officer"],
        action="create",
        item_id="pet-dog-licence",
        kind="guide",
        content=content,
    )
    await editor.decide(edited.editors["kb-editor"], created, approve=True)
    assert "pet-dog-licence" in edited.services.knowledge.kb.items
    retired = await editor.propose(
        edited.editors["civil-officer"],
        action="retire",
        item_id="pet-dog-licence",
        kind="guide",
        content=None,
    )
    await editor.decide(edited.editors["kb-editor"], retired, approve=True)
    assert "pet-dog-licence" not in edited.services.knowledge.kb.items
    assert not (directory / "guides" / "pet-dog-licence.toml").exists()
    assert [v.item_id for v in await editor.retired_items()] == ["pet-dog-licence"]
    restored = await editor.restore(edited.editors["civil-officer"], "pet-dog-licence", 1)
    await editor.decide(edited.editors["kb-editor"], restored, approve=True)
    assert edited.services.knowledge.kb.items["pet-dog-licence"].title == "犬只登记"
    log = (await asyncio.to_thread(git, directory, "log", "--format=%s")).splitlines()
    assert log == [
        "create pet-dog-licence (version 3)",
        "retire pet-dog-licence (version 2)",
        "create pet-dog-licence (version 1)",
        "start",
    ]
    assert await asyncio.to_thread(git, directory, "status", "--porcelain") == ""
    async with edited.services.sessions() as session:
        numbers = (
            await session.scalars(
                select(KnowledgeVersion.action)
                .where(KnowledgeVersion.item_id == "pet-dog-licence")
                .order_by(KnowledgeVersion.number)
            )
        ).all()
    assert numbers == ["create", "retire", "create"]


async def test_the_preview_shows_how_the_bot_answers_before_and_after(
    edited: EditedKnowledge,
) -> None:
    editor = edited.services.editor
    kb = edited.services.knowledge.kb
    content = {
        "id": "pet-dog-licence",
        "kind": "guide",
        "title": "犬只登记",
        "category": "婚姻登记",
        "department": CIVIL,
        "questions": ["养狗要办狗证吗", "犬只登记去哪里办理"],
        "keywords": ["狗证", "犬只登记"],
        "answer": "养犬须在取得犬只后 30 日内登记。",
    }
    checked = check_draft(content, kb, existing_id=None)
    assert checked.ok
    assert checked.item is not None
    rows = await editor.preview(
        checked.item, item_id="pet-dog-licence", own_questions=content["questions"]
    )
    assert [r.question for r in rows] == content["questions"]
    assert all(r.before.item_id != "pet-dog-licence" for r in rows)
    assert any(r.after.item_id == "pet-dog-licence" for r in rows)


# -- the console's forms ------------------------------------------------------------------------


async def test_forged_posts_of_an_officer_for_another_department_are_refused(
    edited: EditedKnowledge,
) -> None:
    async with serving(edited.services) as console:
        client = ConsoleClient(console)
        try:
            status, _, _ = await client.login("civil-officer")
            assert status == 303
            await client.get("/knowledge")
            status, _ = await client.get(f"/knowledge/items/{POLICE_ITEM}/edit")
            assert status == 403
            form = {"title": "篡改", "category": "x", "questions": "q", "answer": "a"}
            for path in (
                f"/knowledge/items/{POLICE_ITEM}/edit",
                f"/knowledge/items/{POLICE_ITEM}/retire",
                f"/knowledge/items/{POLICE_ITEM}/confirm",
            ):
                status, _, _ = await client.post(path, {**form, "action": "propose"})
                assert status == 403, path
            status, _, _ = await client.post(
                "/knowledge/changes/1/decide", {"decision": "approve"}
            )
            assert status == 403
            # A new item "for" another department is filed under the officer's own.
            status, _, location = await client.post(
                "/knowledge/new/guide",
                {
                    "id": "forged-item",
                    "title": "伪造",
                    "category": "x",
                    "department": POLICE,
                    "questions": "伪造的问题",
                    "answer": "伪造的答复",
                    "action": "propose",
                },
            )
            assert status == 303
            assert "/knowledge/changes/" in location
            # Without the CSRF token nothing is accepted.
            status, _, _ = await client.post(
                f"/knowledge/items/{CIVIL_ITEM}/confirm", {}, csrf=False
            )
            assert status == 403
        finally:
            await client.close()
    async with edited.services.sessions() as session:
        changes = (await session.scalars(select(KnowledgeChange))).all()
    assert [(c.item_id, c.department_id) for c in changes] == [("forged-item", CIVIL)]
    assert edited.services.knowledge.kb.items[POLICE_ITEM].title != "篡改"


async def test_field_errors_come_back_beside_the_field(edited: EditedKnowledge) -> None:
    async with serving(edited.services) as console:
        client = ConsoleClient(console)
        try:
            await client.login("kb-editor")
            await client.get("/knowledge/new/guide")
            status, body, _ = await client.post(
                "/knowledge/new/guide",
                {
                    "id": "Bad Id",
                    "title": "",
                    "category": "x",
                    "department": CIVIL,
                    "questions": "",
                    "answer": "<script>alert(1)</script>",
                    "action": "propose",
                },
            )
        finally:
            await client.close()
    assert status == 400
    assert 'id="error-title"' in body
    assert 'id="error-questions"' in body
    assert "至少填写一个问法" in body
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    async with edited.services.sessions() as session:
        assert (await session.scalars(select(KnowledgeChange))).all() == []


async def test_a_phrasing_taught_by_staff_reaches_the_other_processes_too(
    edited: EditedKnowledge,
) -> None:
    services = edited.services
    other = KnowledgeStore(edited.directory, thresholds_from(services.settings))
    sync = KnowledgeSync(other, services.sessions, 60)
    await sync.start()
    result = await services.teacher.add_phrasing(CIVIL_ITEM, "领结婚证要先预约吗")
    assert result.status == "learned"
    assert await sync.check() is True
    assert "领结婚证要先预约吗" in other.kb.items[CIVIL_ITEM].questions


def test_synonyms_keep_their_comments_when_groups_change() -> None:
    original = (BUNDLED / "synonyms.toml").read_text(encoding="utf-8")
    groups = [list(g) for g in tomllib.loads(original)["groups"]]
    assert render_synonyms_file(groups, original) == original
    groups[1].append("户口本子")
    del groups[5]
    groups.append(["狗证", "犬证"])
    written = render_synonyms_file(groups, original)
    assert tomllib.loads(written)["groups"] == groups
    assert written.splitlines()[:7] == original.splitlines()[:7]  # the header comments
    assert original.count("  #") == written.count("  #")
    assert synonym_groups_from_text("狗证、犬证\n\n养狗, 养犬，饲养犬只\n") == [
        ["狗证", "犬证"],
        ["养狗", "养犬", "饲养犬只"],
    ]


async def test_a_reviewer_publishes_synonyms_and_an_officer_cannot(
    edited: EditedKnowledge,
) -> None:
    async with serving(edited.services) as console:
        officer = ConsoleClient(console)
        reviewer = ConsoleClient(console)
        try:
            await officer.login("civil-officer")
            status, _ = await officer.get("/knowledge/synonyms")
            assert status == 200
            status, _, _ = await officer.post("/knowledge/synonyms", {"groups": "a、b"})
            assert status == 403
            await reviewer.login("kb-editor")
            status, page = await reviewer.get("/knowledge/synonyms")
            text = page.split('id="f-groups"', 1)[1].split(">", 1)[1].split("</textarea>")[0]
            lonely = text.replace("&#34;", '"').replace("&#39;", "'") + "\n孤单的词\n"
            status, body, _ = await reviewer.post("/knowledge/synonyms", {"groups": lonely})
            assert status == 400
            assert "a group needs at least two words" in body
            edited_text = text.replace("&#34;", '"').replace("&#39;", "'") + "\n狗证、犬证\n"
            status, _, location = await reviewer.post(
                "/knowledge/synonyms", {"groups": edited_text}
            )
            assert status == 303
            assert "msg=kb_synonyms" in location
        finally:
            await officer.close()
            await reviewer.close()
    written = tomllib.loads((edited.directory / "synonyms.toml").read_text(encoding="utf-8"))
    assert written["groups"][-1] == ["狗证", "犬证"]
    assert ("狗证", "犬证") in edited.services.knowledge.kb.synonyms
    assert load_knowledge_base(edited.directory).synonyms[-1] == ("狗证", "犬证")
