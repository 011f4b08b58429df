"""The knowledge base in the console: browse, search, edit, propose, review, restore, freshness.

Officers propose changes to their own department's items; editors and managers review every
department's. The work is `KnowledgeEditor`'s (bot/answering/publishing.py); the checks are
those of `kb check` (bot/answering/editing.py), shown beside the field they concern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.answering.cards import Card, build_card
from bot.answering.department_editing import DEPARTMENT_KIND
from bot.answering.editing import (
    KINDS,
    DraftCheck,
    check_draft,
    content_from_form,
    field_changes,
    form_fields,
    form_values,
    ordered_content,
    render_item_file,
    search_items,
    synonym_groups_from_text,
    text_diff,
)
from bot.answering.freshness import DEPARTMENT_PHONE_CHANGED, DEPARTMENT_RENAMED, OVERDUE
from bot.answering.knowledge_base import DISCLOSURE_MODES, Item, Problem
from bot.answering.publishing import AnswerPreview, EditError, Editor
from bot.console.forms import form_text, positive_int
from bot.console.messages import redirect_with
from bot.console.rendering import page, render
from bot.console.security import VIEWER, Viewer, allow, client_ip
from bot.console.state import LANGUAGE, SERVICES, department_names
from bot.core.audit import record_audit

PAGE_SIZE = 50
# Why an item needs review (bot/answering/freshness.py), as the freshness page names it.
REASON_NAMES = {
    OVERDUE: "超期未审核",
    DEPARTMENT_RENAMED: "部门名称已变更",
    DEPARTMENT_PHONE_CHANGED: "部门电话已变更",
}
MAX_FIELD_CHARS = 20_000
MAX_QUERY_CHARS = 200

# The form's labels (Chinese; translations.py has the English).
FIELD_LABELS = {
    "id": "编号",
    "title": "标题",
    "category": "分类",
    "department": "负责部门",
    "questions": "群众问法（每行一个）",
    "keywords": "关键词（每行一个）",
    "answer": "答复",
    "materials": "所需材料（每行一项）",
    "steps": "办理流程（每行一步）",
    "fee": "收费",
    "time_limit": "办理时限",
    "location": "办理地点",
    "hours": "办公时间",
    "phone": "咨询电话",
    "legal_basis": "办理依据（每行一项）",
    "url": "网址",
    "related": "相关条目编号（每行一个）",
    "disclosure": "公开方式",
    "period": "公开时限",
    "published_in": "公开渠道",
    "exempt_reason": "不予公开的理由",
    "alternative": "群众可以怎么做",
}
_ZH_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^missing field$"), "必须填写"),
    (re.compile(r"^must not be empty$"), "不能为空"),
    (re.compile(r"^must hold at least one question$"), "至少填写一个问法"),
    (re.compile(r"^unknown department '(.*)'"), "未知部门：{0}"),
    (re.compile(r"is not kebab-case"), "只能使用小写字母、数字和连字符（-），如 id-card-renewal"),
    (re.compile(r"^duplicate id '(.*)'"), "编号 {0} 已被使用"),
    (re.compile(r"^at most (\d+) characters$"), "最多 {0} 个字符"),
    (re.compile(r"^at most (\d+) lines$"), "最多 {0} 行"),
    (re.compile(r"^each line at most (\d+) characters$"), "每行最多 {0} 个字符"),
    (re.compile(r"^must start with https://"), "须以 https:// 或 http:// 开头"),
    (re.compile(r"^unknown item '(.*)'"), "没有编号为 {0} 的条目，群众看不到这一项"),
    (re.compile(r"is not one of"), "请选择一种公开方式"),
    (re.compile(r"^only disclosure items"), "只有公开事项填写此项"),
    (re.compile(r"^holds no phone number$"), "没有填写电话号码"),
    (re.compile(r"^'(.*)' is not a phone number$"), "“{0}”不是能拨通的电话号码"),
    (
        re.compile(r"^the numbering plan does not know '(.*)'"),
        "电话号码编码中没有“{0}”，请核对区号和位数",
    ),
    (
        re.compile(r"^must name each of complaint_categories"),
        "英文分类须与中文分类逐一对应、顺序相同",
    ),
    (re.compile(r"^must be an array of text$"), "每行一项"),
)
_ERRORS = {
    "forbidden": ("只能修改本部门的条目。", "You may change only your own department's items."),
    "not_found": ("没有这个条目。", "There is no such item."),
    "outdated": (
        "该条目在提出修改后已被他人修改，请退回让作者在最新版本上重新修改。",
        "The item changed after this was proposed; send it back to be redone on the "
        "latest version.",
    ),
    "not_pending": ("该修改已处理。", "This change was already decided."),
    "comment_needed": ("退回时请写明理由。", "Say why when sending a change back."),
    "invalid": ("内容没有通过知识库检查。", "The content does not pass the knowledge-base check."),
    "in_use": (
        "该部门仍有条目或其他依赖，不能撤销，见下方。",
        "The department is still in use and cannot be retired; see below.",
    ),
}


def problem_text(problem: Problem, language: str) -> str:
    """Return a check's message in the reader's language (`kb check` words it in English)."""
    if language == "en":
        return problem.message
    for pattern, chinese in _ZH_PROBLEMS:
        found = pattern.search(problem.message)
        if found:
            return chinese.format(*found.groups())
    return problem.message


async def refuse(request: web.Request) -> web.HTTPForbidden:
    """Record a refused knowledge-base action as the access check does, and return the 403."""
    viewer = request[VIEWER]
    async with request.app[SERVICES].sessions() as session:
        await record_audit(
            session,
            user_id=viewer.user_id,
            action="access.denied",
            target_type="page",
            target_id=request.path[:64],
            detail={"method": request.method, "role": viewer.role},
            ip=client_ip(request),
        )
        await session.commit()
    return web.HTTPForbidden()


def editor_of(viewer: Viewer) -> Editor:
    return Editor(viewer.user_id, viewer.name, viewer.role, viewer.department_id)


def _item(request: web.Request) -> Item:
    item = request.app[SERVICES].knowledge.kb.items.get(request.match_info["item_id"])
    if item is None:
        raise web.HTTPNotFound()
    return item


def _cards(item: Item | None, request: web.Request) -> dict[str, Card]:
    if item is None:
        return {}
    kb = request.app[SERVICES].knowledge.kb
    return {language: build_card(item, kb, language) for language in ("zh", "en")}


def error_text(code: str, language: str) -> str:
    chinese, english = _ERRORS.get(code, _ERRORS["invalid"])
    return english if language == "en" else chinese


# -- browsing ------------------------------------------------------------------------------------


@allow("officer", "editor", "manager")
@page("knowledge.html")
async def knowledge_list(request: web.Request) -> dict[str, Any]:
    """Every item, searched and filtered; the viewer's own department first for officers."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    kb = services.knowledge.kb
    query = request.query.get("q", "")[:MAX_QUERY_CHARS]
    kind = request.query.get("kind", "")
    kind = kind if kind in KINDS else ""
    department = request.query.get("department", "")
    if department not in kb.departments:
        department = ""
    stale_only = request.query.get("stale") == "1"
    only = None
    freshness = {f.item_id: f for f in await services.editor.freshness()}
    if stale_only:
        only = frozenset(i for i, f in freshness.items() if f.stale)
    offset = (positive_int(request.query.get("page")) or 1) - 1
    found = search_items(
        kb,
        query=query,
        kind=kind,
        department=department,
        only=only,
        offset=offset * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    pending = await services.editor.changes(status="proposed", limit=500)
    return {
        "found": found,
        "query": query,
        "kind": kind,
        "department": department,
        "stale_only": stale_only,
        "page_number": offset + 1,
        "pages": max(1, (found.total + PAGE_SIZE - 1) // PAGE_SIZE),
        "departments": department_names(request),
        "freshness": freshness,
        "pending": len(pending),
        "may_edit": editor_of(viewer).may_edit,
    }


@allow("officer", "editor", "manager")
async def item_page(request: web.Request) -> web.StreamResponse:
    """One item: its answer card in both languages, its versions, pending changes."""
    services = request.app[SERVICES]
    item_id = request.match_info["item_id"]
    item = services.knowledge.kb.items.get(item_id)
    versions = await services.editor.versions(item_id)
    if item is None and not versions:
        raise web.HTTPNotFound()
    freshness = {f.item_id: f for f in await services.editor.freshness()}
    department = (
        item.department if item else str((versions[0].content or {}).get("department", ""))
    )
    if item is None:
        for version in versions:
            if version.content:
                department = str(version.content.get("department", ""))
                break
    return render(
        request,
        "knowledge_item.html",
        {
            "item": item,
            "item_id": item_id,
            "cards": _cards(item, request),
            "versions": versions,
            "changes": await services.editor.changes(item_id=item_id, limit=50),
            "fresh": freshness.get(item_id),
            "may_edit": editor_of(request[VIEWER]).may_edit(department),
            "departments": department_names(request),
        },
    )


# -- the form ------------------------------------------------------------------------------------


def _render_form(
    request: web.Request,
    *,
    kind: str,
    item_id: str,
    values: Mapping[str, str],
    existing: Item | None,
    checked: DraftCheck | None = None,
    previews: list[AnswerPreview] | None = None,
    status: int = 200,
    error: str = "",
) -> web.Response:
    viewer = request[VIEWER]
    language = request[LANGUAGE]
    departments = department_names(request)
    if viewer.role == "officer":
        departments = {k: v for k, v in departments.items() if k == viewer.department_id}
    problems = {
        name: [problem_text(p, language) for p in found]
        for name, found in (checked.by_field() if checked else {}).items()
    }
    return render(
        request,
        "knowledge_form.html",
        {
            "kind": kind,
            "item_id": item_id,
            "existing": existing,
            "values": values,
            "fields": form_fields(kind),
            "field_labels": FIELD_LABELS,
            "problems": problems,
            "checked": checked,
            "cards": _cards(checked.item if checked and checked.ok else None, request),
            "previews": previews or [],
            "departments": departments,
            "disclosure_modes": DISCLOSURE_MODES,
            "error": error,
        },
        status=status,
    )


async def _form_input(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {
        str(key): form_text(posted, str(key), MAX_FIELD_CHARS, strip=False)
        for key in posted
        if isinstance(posted.get(key), str)
    }


@allow("officer", "editor", "manager")
async def new_item_form(request: web.Request) -> web.StreamResponse:
    """An empty form for a new item; questions may come from the unanswered page."""
    kind = request.match_info["kind"]
    viewer = request[VIEWER]
    questions = [q[:300] for q in request.query.getall("q", [])][:20]
    values = {"questions": "\n".join(questions)}
    if viewer.role == "officer" and viewer.department_id:
        values["department"] = viewer.department_id
    return _render_form(request, kind=kind, item_id="", values=values, existing=None)


@allow("officer", "editor", "manager")
async def edit_item_form(request: web.Request) -> web.StreamResponse:
    """The form of an existing item, filled from its file; phrasings may be added from the
    unanswered page."""
    services = request.app[SERVICES]
    item = _item(request)
    if not editor_of(request[VIEWER]).may_edit(item.department):
        raise await refuse(request)
    found = services.editor.current_content(item.id)
    if found is None:
        raise web.HTTPNotFound()
    values = form_values(found[1])
    added = [q[:300] for q in request.query.getall("add", [])][:20]
    if added:
        values["questions"] = "\n".join([values.get("questions", ""), *added]).strip()
    return _render_form(request, kind=item.kind, item_id=item.id, values=values, existing=item)


@allow("officer", "editor", "manager")
async def add_phrasings(request: web.Request) -> web.StreamResponse:
    """From the unanswered page: open the chosen item's form with residents' wordings added."""
    item = request.app[SERVICES].knowledge.kb.items.get(request.query.get("item", ""))
    if item is None:
        raise web.HTTPNotFound()
    added = [q[:300] for q in request.query.getall("add", [])][:20]
    url = request.app.router["knowledge_edit"].url_for(item_id=item.id)
    raise web.HTTPSeeOther(url.with_query([("add", q) for q in added]))


async def _submit(request: web.Request, *, kind: str, existing: Item | None) -> web.StreamResponse:
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    editor = editor_of(viewer)
    values = await _form_input(request)
    item_id = existing.id if existing else values.get("id", "").strip()[:200]
    if viewer.role == "officer":
        # An officer's item belongs to their department, whatever a forged form says.
        values["department"] = viewer.department_id or ""
    content = content_from_form(values, kind, item_id)
    checked = check_draft(
        content, services.knowledge.kb, existing_id=existing.id if existing else None
    )
    action = values.get("action", "preview")
    previews: list[AnswerPreview] = []
    if checked.ok and checked.item is not None:
        own = list(checked.item.questions) + list(existing.questions if existing else ())
        previews = await services.editor.preview(checked.item, item_id=item_id, own_questions=own)
    if action != "propose" or not checked.ok:
        return _render_form(
            request,
            kind=kind,
            item_id=item_id,
            values=values,
            existing=existing,
            checked=checked,
            previews=previews,
            status=200 if checked.ok else 400,
        )
    try:
        change_id = await services.editor.propose(
            editor,
            action="edit" if existing else "create",
            item_id=item_id,
            kind=kind,
            content=ordered_content(content),
            note=values.get("note", "")[:1000].strip(),
            ip=client_ip(request),
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        return _render_form(
            request,
            kind=kind,
            item_id=item_id,
            values=values,
            existing=existing,
            checked=checked,
            previews=previews,
            status=400,
            error=error_text(error.code, request[LANGUAGE]),
        )
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, "kb_proposed")


@allow("officer", "editor", "manager")
async def new_item_submit(request: web.Request) -> web.StreamResponse:
    return await _submit(request, kind=request.match_info["kind"], existing=None)


@allow("officer", "editor", "manager")
async def edit_item_submit(request: web.Request) -> web.StreamResponse:
    item = _item(request)
    if not editor_of(request[VIEWER]).may_edit(item.department):
        raise await refuse(request)
    return await _submit(request, kind=item.kind, existing=item)


@allow("officer", "editor", "manager")
async def retire_item(request: web.Request) -> web.StreamResponse:
    """Propose to take an item out of the knowledge base (its versions stay)."""
    services = request.app[SERVICES]
    item = _item(request)
    posted = await request.post()
    try:
        change_id = await services.editor.propose(
            editor_of(request[VIEWER]),
            action="retire",
            item_id=item.id,
            kind=item.kind,
            content=None,
            note=form_text(posted, "note", 1000),
            ip=client_ip(request),
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        raise web.HTTPBadRequest() from error
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, "kb_proposed")


@allow("officer", "editor", "manager")
async def confirm_item(request: web.Request) -> web.StreamResponse:
    """Record that an item was read and is still correct."""
    services = request.app[SERVICES]
    item = _item(request)
    try:
        await services.editor.confirm_current(
            editor_of(request[VIEWER]), item.id, ip=client_ip(request)
        )
    except EditError as error:
        raise await refuse(request) from error
    raise redirect_with(request, "knowledge_item", {"item_id": item.id}, "kb_confirmed")


# -- versions ------------------------------------------------------------------------------------


@allow("officer", "editor", "manager")
async def version_page(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    item_id = request.match_info["item_id"]
    number = positive_int(request.match_info["number"]) or 0
    version = await services.editor.version(item_id, number)
    if version is None:
        raise web.HTTPNotFound()
    previous = await services.editor.version(item_id, number - 1) if number > 1 else None
    department = str((version.content or {}).get("department", ""))
    item = services.knowledge.kb.items.get(item_id)
    current = services.editor.current_content(item_id)
    return render(
        request,
        "knowledge_version.html",
        {
            "item_id": item_id,
            "version": version,
            "changes": field_changes(previous.content if previous else None, version.content),
            "against_current": field_changes(current[1] if current else None, version.content),
            "diff": text_diff(previous.toml if previous else "", version.toml, item_id),
            "may_restore": editor_of(request[VIEWER]).may_edit(
                item.department if item else department
            )
            and editor_of(request[VIEWER]).may_edit(
                department or (item.department if item else "")
            ),
            "field_labels": FIELD_LABELS,
        },
    )


@allow("officer", "editor", "manager")
async def restore_version(request: web.Request) -> web.StreamResponse:
    """Propose an earlier version as the item's next one."""
    services = request.app[SERVICES]
    item_id = request.match_info["item_id"]
    number = positive_int(request.match_info["number"]) or 0
    try:
        change_id = await services.editor.restore(
            editor_of(request[VIEWER]), item_id, number, ip=client_ip(request)
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        if error.code == "not_found":
            raise web.HTTPNotFound() from error
        raise redirect_with(
            request, "knowledge_item", {"item_id": item_id}, "kb_invalid"
        ) from error
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, "kb_proposed")


# -- review --------------------------------------------------------------------------------------


@allow("officer", "editor", "manager")
@page("knowledge_changes.html")
async def changes_page(request: web.Request) -> dict[str, Any]:
    """Changes waiting for review (reviewers: all; officers: their department's), and decided."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    changes = await services.editor.changes(limit=300)
    if viewer.role == "officer":
        changes = [c for c in changes if c.department_id == viewer.department_id]
    return {
        "waiting": [c for c in changes if c.status == "proposed"],
        "decided": [c for c in changes if c.status != "proposed"][:100],
        "departments": department_names(request),
    }


@allow("officer", "editor", "manager")
async def change_page(request: web.Request) -> web.StreamResponse:
    """One proposed change: what differs, the card it makes, how the bot would answer."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    change_id = positive_int(request.match_info["change_id"])
    change = await services.editor.change(change_id) if change_id else None
    if change is None:
        raise web.HTTPNotFound()
    if viewer.role == "officer" and change.department_id != viewer.department_id:
        raise web.HTTPNotFound()
    error = request.query.get("error", "")
    error = error_text(error, request[LANGUAGE]) if error in _ERRORS else ""
    if change.kind == DEPARTMENT_KIND:
        from bot.console.views.departments import department_change_page

        return await department_change_page(request, change, error)
    kb = services.knowledge.kb
    editor = services.editor
    current = editor.current_content(change.item_id)
    item = None
    if change.content is not None:
        item = check_draft(
            change.content, kb, existing_id=change.item_id if current else None
        ).item
    previews: list[AnswerPreview] = []
    if change.status == "proposed":
        # Against the item as it is now: what publishing it would change.
        before_content = current[1] if current else None
        before_text = editor.read_file(change.kind, change.item_id) or ""
        try:
            after_text = (
                render_item_file(change.content, before_text or None, None)
                if change.content is not None
                else ""
            )
        except ValueError:
            after_text = ""
        if item is not None or change.item_id in kb.items:
            own = item.questions if item else kb.items[change.item_id].questions
            previews = await editor.preview(item, item_id=change.item_id, own_questions=own)
    else:
        # Against the version before the one it became (nothing for one never published).
        made = await editor.version(change.item_id, change.version) if change.version else None
        previous = (
            await editor.version(change.item_id, change.version - 1)
            if change.version and change.version > 1
            else None
        )
        before_content = previous.content if previous else None
        before_text = previous.toml if previous else ""
        after_text = made.toml if made else ""
    return render(
        request,
        "knowledge_change.html",
        {
            "change": change,
            "changes": field_changes(before_content, change.content),
            "diff": text_diff(before_text, after_text, change.item_id),
            "cards": _cards(item, request),
            "previews": previews,
            "may_review": editor_of(viewer).may_review,
            "field_labels": FIELD_LABELS,
            "departments": department_names(request),
            "error": error,
        },
    )


@allow("editor", "manager")
async def decide_change(request: web.Request) -> web.StreamResponse:
    """Approve (publish) or send back a change."""
    services = request.app[SERVICES]
    change_id = positive_int(request.match_info["change_id"]) or 0
    posted = await request.post()
    decision = form_text(posted, "decision", 16)
    comment = form_text(posted, "comment", 1000)
    if decision not in ("approve", "send_back"):
        raise web.HTTPBadRequest()
    try:
        await services.editor.decide(
            editor_of(request[VIEWER]),
            change_id,
            approve=decision == "approve",
            comment=comment,
            ip=client_ip(request),
        )
    except EditError as error:
        if error.code == "not_found":
            raise web.HTTPNotFound() from error
        url = request.app.router["knowledge_change"].url_for(change_id=str(change_id))
        raise web.HTTPSeeOther(url.with_query(error=error.code)) from error
    code = "kb_published" if decision == "approve" else "kb_sent_back"
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, code)


# -- synonym groups ------------------------------------------------------------------------------


def _render_synonyms(
    request: web.Request, text: str, problems: list[str], status: int = 200
) -> web.Response:
    services = request.app[SERVICES]
    return render(
        request,
        "knowledge_synonyms.html",
        {
            "text": text,
            "problems": problems,
            "may_review": editor_of(request[VIEWER]).may_review,
            "count": len(services.knowledge.kb.synonyms),
        },
        status=status,
    )


@allow("officer", "editor", "manager")
async def synonyms_page(request: web.Request) -> web.StreamResponse:
    """The city's synonym groups, one a line (reviewers edit them: they serve everyone)."""
    groups = request.app[SERVICES].knowledge.kb.synonyms
    return _render_synonyms(request, "\n".join("、".join(group) for group in groups), [])


@allow("editor", "manager")
async def synonyms_submit(request: web.Request) -> web.StreamResponse:
    """Publish the edited synonym groups."""
    services = request.app[SERVICES]
    posted = await request.post()
    text = form_text(posted, "groups", 200_000, strip=False)
    groups = synonym_groups_from_text(text)
    try:
        await services.editor.publish_synonyms(
            editor_of(request[VIEWER]), groups, ip=client_ip(request)
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        return _render_synonyms(request, text, error.detail.split("; "), status=400)
    raise redirect_with(request, "knowledge_synonyms", {}, "kb_synonyms")


# -- freshness -----------------------------------------------------------------------------------


@allow("officer", "editor", "manager")
@page("knowledge_freshness.html")
async def freshness_page(request: web.Request) -> dict[str, Any]:
    """Items not confirmed current in time (an officer: their department's), and for
    reviewers the share confirmed in time per department."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    kb = services.knowledge.kb
    everything = await services.editor.freshness()
    mine = (
        [f for f in everything if f.department_id == viewer.department_id]
        if viewer.role == "officer"
        else everything
    )
    shares = []
    if viewer.role != "officer":
        by_department: dict[str, list[int]] = {}
        for fresh in everything:
            counts = by_department.setdefault(fresh.department_id, [0, 0])
            counts[0] += 1
            counts[1] += 0 if fresh.stale else 1
        for department, (total, on_time) in sorted(by_department.items()):
            shares.append((department, total, on_time, round(100 * on_time / total)))
    return {
        "stale": sorted(
            (f for f in mine if f.stale),
            key=lambda f: (f.reviewed_at is not None, f.reviewed_at or 0, f.item_id),
        ),
        "shares": shares,
        "days": services.editor.review_days,
        "reason_names": REASON_NAMES,
        "titles": {i.id: i.get_text("title", request[LANGUAGE]) for i in kb.items.values()},
        "departments": department_names(request),
    }
