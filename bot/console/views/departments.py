"""The departments of the knowledge base in the console: list, one department, its form with the
checks of `kb check` beside each field, before/after answer cards, versions and restore, new
departments and retiring them.

Officers propose changes to their own department only; editors and managers to any, and only
they add or retire departments. Every change goes through the knowledge base's review queue
(views/knowledge.py): the work is `DepartmentDesk`'s (bot/answering/department_desk.py).
Delivery channels ([departments.<id>] in config.toml) are deployment settings, not edited here.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bot.answering.department_editing import (
    DEPARTMENT_FIELDS,
    CardPreview,
    DepartmentCheck,
    card_preview,
    check_department_draft,
    department_from_form,
    department_table_text,
    items_of,
    items_writing,
    render_departments_file,
)
from bot.answering.editing import field_changes, form_values, text_diff
from bot.answering.knowledge_base import Department
from bot.answering.publishing import EditError
from bot.console.forms import form_text, positive_int
from bot.console.messages import redirect_with
from bot.console.rendering import render
from bot.console.security import VIEWER, allow, client_ip
from bot.console.state import LANGUAGE, SERVICES
from bot.console.views.knowledge import (
    MAX_FIELD_CHARS,
    editor_of,
    error_text,
    problem_text,
    refuse,
)
from bot.core.models import KnowledgeChange

# The form's labels (Chinese; translations.py has the English).
DEPARTMENT_LABELS = {
    "id": "编号",
    "name": "名称",
    "phone": "电话",
    "address": "地址",
    "hours": "办公时间",
    "url": "网址",
    "complaint_categories": "投诉分类",
    "complaint_keywords": "投诉关键词",
    "complaint_category_keywords": "分类关键词（分类: 关键词 关键词）",
}


def _department_id(request: web.Request) -> str:
    return request.match_info["department_id"]


def _channels(request: web.Request, department_id: str) -> tuple[str, ...]:
    """The department's delivery channels as config.toml names them (never their addresses)."""
    found = request.app[SERVICES].settings.departments.get(department_id)
    return tuple(found.channels) if found else ()


# -- the list and one department -----------------------------------------------------------------


@allow("officer", "editor", "manager")
async def departments_page(request: web.Request) -> web.StreamResponse:
    """Every department, with its phone, its items and its pending changes."""
    services = request.app[SERVICES]
    kb = services.knowledge.kb
    editor = editor_of(request[VIEWER])
    pending = await services.editor.changes(status="proposed", limit=500)
    waiting: dict[str, int] = {}
    for change in pending:
        if change.kind == "department":
            waiting[change.department_id] = waiting.get(change.department_id, 0) + 1
    counts: dict[str, int] = {}
    for item in kb.items.values():
        counts[item.department] = counts.get(item.department, 0) + 1
    return render(
        request,
        "knowledge_departments.html",
        {
            "departments": list(kb.departments.values()),
            "counts": counts,
            "waiting": waiting,
            "may_edit": editor.may_edit,
            "may_review": editor.may_review,
            "retired": await services.departments.retired() if editor.may_review else [],
        },
    )


@allow("officer", "editor", "manager")
async def department_page(request: web.Request) -> web.StreamResponse:
    """One department: its fields, the card of one of its items, its items, versions, changes."""
    services = request.app[SERVICES]
    department_id = _department_id(request)
    kb = services.knowledge.kb
    department = kb.departments.get(department_id)
    versions = await services.departments.versions(department_id)
    if department is None and not versions:
        raise web.HTTPNotFound()
    last = next((v.content for v in versions if v.content), None)
    editor = editor_of(request[VIEWER])
    return render(
        request,
        "knowledge_department.html",
        {
            "department_id": department_id,
            "department": department,
            "values": form_values(services.departments.current_content(department_id) or last),
            "fields": DEPARTMENT_FIELDS,
            "labels": DEPARTMENT_LABELS,
            "preview": card_preview(kb, department_id, department) if department else None,
            "items": items_of(kb, department_id),
            "channels": _channels(request, department_id),
            "versions": versions,
            "changes": await services.departments.changes(department_id),
            "may_edit": editor.may_edit(department_id),
            "may_review": editor.may_review,
        },
    )


# -- the form ------------------------------------------------------------------------------------


def _render_form(
    request: web.Request,
    *,
    department_id: str,
    values: Mapping[str, str],
    existing: Department | None,
    checked: DepartmentCheck | None = None,
    status: int = 200,
    error: str = "",
) -> web.Response:
    services = request.app[SERVICES]
    language = request[LANGUAGE]
    kb = services.knowledge.kb
    problems: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    if checked is not None:
        for found in checked.problems:
            problems.setdefault(found.field or "", []).append(problem_text(found, language))
        for found in checked.warnings:
            warnings.setdefault(found.field or "", []).append(problem_text(found, language))
    preview: CardPreview | None = None
    writing_old_phone = []
    if existing is not None and checked is not None and checked.ok:
        preview = card_preview(kb, existing.id, checked.department)
        assert checked.department is not None
        if checked.department.phone != existing.phone:
            writing_old_phone = items_writing(kb, existing.id, existing.phone)
    return render(
        request,
        "knowledge_department_form.html",
        {
            "department_id": department_id,
            "existing": existing,
            "values": values,
            "fields": DEPARTMENT_FIELDS,
            "labels": DEPARTMENT_LABELS,
            "problems": problems,
            "warnings": warnings,
            "checked": checked,
            "preview": preview,
            "writing_old_phone": writing_old_phone,
            "renamed": bool(
                existing
                and checked
                and checked.department
                and (
                    checked.department.name != existing.name
                    or checked.department.phone != existing.phone
                )
            ),
            "item_count": len(items_of(kb, existing.id)) if existing else 0,
            "channels": _channels(request, department_id) if existing else (),
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


def _existing(request: web.Request) -> Department:
    department = request.app[SERVICES].knowledge.kb.departments.get(_department_id(request))
    if department is None:
        raise web.HTTPNotFound()
    return department


@allow("editor", "manager")
async def new_department_form(request: web.Request) -> web.StreamResponse:
    """An empty form for a new department (editors and managers)."""
    return _render_form(request, department_id="", values={}, existing=None)


@allow("officer", "editor", "manager")
async def edit_department_form(request: web.Request) -> web.StreamResponse:
    """A department's form, filled from departments.toml (officers: their own only)."""
    services = request.app[SERVICES]
    department = _existing(request)
    if not editor_of(request[VIEWER]).may_edit(department.id):
        raise await refuse(request)
    content = services.departments.current_content(department.id)
    if content is None:
        raise web.HTTPNotFound()
    return _render_form(
        request, department_id=department.id, values=form_values(content), existing=department
    )


async def _submit(request: web.Request, existing: Department | None) -> web.StreamResponse:
    services = request.app[SERVICES]
    values = await _form_input(request)
    department_id = existing.id if existing else values.get("id", "").strip()[:200]
    current = services.departments.current_content(existing.id) if existing else None
    content = department_from_form(values, department_id, current)
    checked = check_department_draft(
        content, services.knowledge.kb, existing_id=existing.id if existing else None
    )
    if values.get("action", "preview") != "propose" or not checked.ok:
        return _render_form(
            request,
            department_id=department_id,
            values=values,
            existing=existing,
            checked=checked,
            status=200 if checked.ok else 400,
        )
    try:
        change_id = await services.departments.propose(
            editor_of(request[VIEWER]),
            action="edit" if existing else "create",
            department_id=department_id,
            content=content,
            note=values.get("note", "")[:1000].strip(),
            ip=client_ip(request),
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        return _render_form(
            request,
            department_id=department_id,
            values=values,
            existing=existing,
            checked=checked,
            status=400,
            error=error_text(error.code, request[LANGUAGE]),
        )
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, "kb_proposed")


@allow("editor", "manager")
async def new_department_submit(request: web.Request) -> web.StreamResponse:
    return await _submit(request, None)


@allow("officer", "editor", "manager")
async def edit_department_submit(request: web.Request) -> web.StreamResponse:
    department = _existing(request)
    if not editor_of(request[VIEWER]).may_edit(department.id):
        raise await refuse(request)
    return await _submit(request, department)


@allow("editor", "manager")
async def retire_department(request: web.Request) -> web.StreamResponse:
    """Propose to take a department out; refused, naming them, while anything depends on it."""
    services = request.app[SERVICES]
    department = _existing(request)
    posted = await request.post()
    try:
        change_id = await services.departments.propose(
            editor_of(request[VIEWER]),
            action="retire",
            department_id=department.id,
            content=None,
            note=form_text(posted, "note", 1000),
            ip=client_ip(request),
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        if error.code != "in_use":
            raise web.HTTPBadRequest() from error
        blockers = await services.departments.in_use(department.id)
        return render(
            request,
            "knowledge_department_in_use.html",
            {"department": department, "in_use": blockers},
            status=409,
        )
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, "kb_proposed")


# -- versions ------------------------------------------------------------------------------------


@allow("officer", "editor", "manager")
async def department_version_page(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    department_id = _department_id(request)
    number = positive_int(request.match_info["number"]) or 0
    version = await services.departments.version(department_id, number)
    if version is None:
        raise web.HTTPNotFound()
    previous = (
        await services.departments.version(department_id, number - 1) if number > 1 else None
    )
    current = services.departments.current_content(department_id)
    editor = editor_of(request[VIEWER])
    present = department_id in services.knowledge.kb.departments
    return render(
        request,
        "knowledge_department_version.html",
        {
            "department_id": department_id,
            "version": version,
            "changes": field_changes(previous.content if previous else None, version.content),
            "against_current": field_changes(current, version.content),
            "diff": text_diff(previous.toml if previous else "", version.toml, department_id),
            # Bringing a retired department back, or retiring one, is for reviewers.
            "may_restore": editor.may_edit(department_id)
            and (editor.may_review or (present and version.content is not None)),
            "labels": DEPARTMENT_LABELS,
        },
    )


@allow("officer", "editor", "manager")
async def restore_department_version(request: web.Request) -> web.StreamResponse:
    """Propose an earlier version as the department's next one."""
    services = request.app[SERVICES]
    department_id = _department_id(request)
    number = positive_int(request.match_info["number"]) or 0
    try:
        change_id = await services.departments.restore(
            editor_of(request[VIEWER]), department_id, number, ip=client_ip(request)
        )
    except EditError as error:
        if error.code == "forbidden":
            raise await refuse(request) from error
        if error.code == "not_found":
            raise web.HTTPNotFound() from error
        if error.code == "in_use":
            department = services.knowledge.kb.departments.get(department_id)
            if department is not None:
                return render(
                    request,
                    "knowledge_department_in_use.html",
                    {
                        "department": department,
                        "in_use": await services.departments.in_use(department_id),
                    },
                    status=409,
                )
        raise redirect_with(
            request, "knowledge_department", {"department_id": department_id}, "kb_invalid"
        ) from error
    raise redirect_with(request, "knowledge_change", {"change_id": str(change_id)}, "kb_proposed")


# -- one proposed change (the review queue's page, views/knowledge.py) ---------------------------


async def department_change_page(
    request: web.Request, change: KnowledgeChange, error: str
) -> web.Response:
    """A proposed or decided change of a department: its fields before and after, the lines of
    departments.toml it changes, and the answer card before and after."""
    services = request.app[SERVICES]
    desk = services.departments
    kb = services.knowledge.kb
    department_id = change.department_id
    existing = kb.departments.get(department_id)
    checked = (
        check_department_draft(change.content, kb, existing_id=department_id if existing else None)
        if change.content is not None
        else None
    )
    preview = None
    in_use = None
    writing_old_phone = []
    if change.status == "proposed":
        original = desk.read_file()
        before_content = desk.current_content(department_id)
        before_text = department_table_text(original, department_id)
        after_text = ""
        if change.content is not None and original is not None:
            try:
                after_text = department_table_text(
                    render_departments_file(original, department_id, change.content),
                    department_id,
                )
            except ValueError:
                after_text = ""
        if existing is not None and checked is not None and checked.ok:
            preview = card_preview(kb, department_id, checked.department)
            assert checked.department is not None
            if checked.department.phone != existing.phone:
                writing_old_phone = items_writing(kb, department_id, existing.phone)
        if change.content is None:
            in_use = await desk.in_use(department_id)
    else:
        made = await desk.version(department_id, change.version) if change.version else None
        previous = (
            await desk.version(department_id, change.version - 1)
            if change.version and change.version > 1
            else None
        )
        before_content = previous.content if previous else None
        before_text = previous.toml if previous else ""
        after_text = made.toml if made else ""
    language = request[LANGUAGE]
    name = (
        existing.display_name(language)
        if existing
        else str((change.content or {}).get("name") or department_id)
    )
    return render(
        request,
        "knowledge_department_change.html",
        {
            "change": change,
            "department_name": name,
            "changes": field_changes(before_content, change.content),
            "diff": text_diff(before_text, after_text, "departments.toml"),
            "warnings": [problem_text(p, language) for p in (checked.warnings if checked else ())],
            "preview": preview,
            "writing_old_phone": writing_old_phone,
            "in_use": in_use,
            "may_review": editor_of(request[VIEWER]).may_review,
            "labels": DEPARTMENT_LABELS,
            "error": error,
        },
    )
