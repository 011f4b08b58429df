"""Every URL of the console, named; who may open each is declared on its handler."""

from __future__ import annotations

from aiohttp import web

from bot.console.views import (
    admin,
    auth,
    departments,
    figures,
    health,
    inbox,
    knowledge,
    privacy,
    reports,
    tickets,
)


def setup_routes(app: web.Application) -> None:
    """Add the console's routes to the application."""
    router = app.router
    # Load balancers and Prometheus (views/health.py; /metrics wants a bearer token)
    router.add_get("/healthz", health.healthz, name="healthz")
    router.add_get("/readyz", health.readyz, name="readyz")
    router.add_get("/metrics", health.metrics, name="metrics")
    # Everyone
    router.add_get("/", auth.home, name="home")
    router.add_get("/login", auth.login_page, name="login")
    router.add_post("/login", auth.login, name="login_post")
    router.add_post("/logout", auth.logout, name="logout")
    router.add_get("/password", auth.password_page, name="password")
    router.add_post("/password", auth.password_change, name="password_post")
    router.add_get("/lang/{language}", auth.switch_language, name="language")
    # The full privacy text residents are linked to from the bot (no login).
    router.add_get("/privacy", privacy.privacy_page, name="privacy")
    # Staff: escalated questions and the triage queue
    router.add_get("/inbox", inbox.inbox, name="inbox")
    router.add_get(r"/inbox/{escalation_id:\d+}", inbox.escalation_page, name="escalation")
    router.add_post(r"/inbox/{escalation_id:\d+}/answer", inbox.answer, name="answer")
    router.add_post(r"/inbox/{escalation_id:\d+}/learn", inbox.learn, name="learn")
    router.add_get("/triage", tickets.triage, name="triage")
    # Officers: their department's tickets
    router.add_get("/department", tickets.department_queue, name="department")
    # One ticket (managers, the officers of its department, staff while it is in triage)
    router.add_get("/tickets/{number}", tickets.ticket_page, name="ticket")
    router.add_get(
        r"/tickets/{number}/photos/{attachment_id:\d{1,9}}", tickets.ticket_photo, name="photo"
    )
    router.add_get(
        "/tickets/{number}/proof.json", tickets.ticket_proof_download, name="ticket_proof"
    )
    router.add_post("/tickets/{number}/acknowledge", tickets.acknowledge, name="acknowledge")
    router.add_post("/tickets/{number}/reply", tickets.reply, name="reply")
    router.add_get(
        "/tickets/{number}/documents/{document_id}", tickets.ticket_document, name="document"
    )
    router.add_post("/tickets/{number}/hand-back", tickets.hand_back, name="hand_back")
    router.add_post("/tickets/{number}/ask", tickets.ask_resident, name="ask")
    router.add_post("/tickets/{number}/extend", tickets.extend, name="extend")
    router.add_post("/tickets/{number}/reassign", tickets.reassign, name="reassign")
    router.add_post("/tickets/{number}/reject", tickets.reject, name="reject")
    # Managers: the log, figures, unanswered questions, disclosure report, exports
    router.add_get("/log", reports.complaint_log, name="log")
    router.add_get("/log.{format:csv|xlsx}", reports.export_log, name="log_export")
    router.add_get("/figures", figures.figures_page, name="figures")
    router.add_get("/figures.{format:csv|xlsx}", figures.export_figures, name="figures_export")
    router.add_get("/unanswered", reports.unanswered, name="unanswered")
    router.add_get("/disclosure", reports.disclosure, name="disclosure")
    router.add_get(
        "/disclosure.{format:csv|xlsx}", reports.export_disclosure, name="disclosure_export"
    )
    # The knowledge base: officers propose for their department, editors and managers review
    item = r"/knowledge/items/{item_id:[a-z0-9-]{1,80}}"
    kind = "{kind:guide|disclosure}"
    router.add_get("/knowledge", knowledge.knowledge_list, name="knowledge")
    router.add_get(f"/knowledge/new/{kind}", knowledge.new_item_form, name="knowledge_new")
    router.add_post(f"/knowledge/new/{kind}", knowledge.new_item_submit, name="knowledge_create")
    router.add_get("/knowledge/synonyms", knowledge.synonyms_page, name="knowledge_synonyms")
    router.add_post(
        "/knowledge/synonyms", knowledge.synonyms_submit, name="knowledge_synonyms_post"
    )
    router.add_get("/knowledge/phrasings", knowledge.add_phrasings, name="knowledge_phrasings")
    # Departments: officers propose for their own, editors and managers for any, add and retire
    router.add_get(
        "/knowledge/departments", departments.departments_page, name="knowledge_departments"
    )
    router.add_get(
        "/knowledge/departments/new",
        departments.new_department_form,
        name="knowledge_department_new",
    )
    router.add_post(
        "/knowledge/departments/new",
        departments.new_department_submit,
        name="knowledge_department_create",
    )
    department = r"/knowledge/departments/{department_id:[A-Za-z0-9_-]{1,60}}"
    router.add_get(department, departments.department_page, name="knowledge_department")
    router.add_get(
        f"{department}/edit", departments.edit_department_form, name="knowledge_department_edit"
    )
    router.add_post(
        f"{department}/edit",
        departments.edit_department_submit,
        name="knowledge_department_edit_post",
    )
    router.add_post(
        f"{department}/retire", departments.retire_department, name="knowledge_department_retire"
    )
    department_version = department + r"/versions/{number:\d+}"
    router.add_get(
        department_version,
        departments.department_version_page,
        name="knowledge_department_version",
    )
    router.add_post(
        f"{department_version}/restore",
        departments.restore_department_version,
        name="knowledge_department_restore",
    )
    router.add_get(item, knowledge.item_page, name="knowledge_item")
    router.add_get(f"{item}/edit", knowledge.edit_item_form, name="knowledge_edit")
    router.add_post(f"{item}/edit", knowledge.edit_item_submit, name="knowledge_edit_post")
    router.add_post(f"{item}/retire", knowledge.retire_item, name="knowledge_retire")
    router.add_post(f"{item}/confirm", knowledge.confirm_item, name="knowledge_confirm")
    version = item + r"/versions/{number:\d+}"
    router.add_get(version, knowledge.version_page, name="knowledge_version")
    router.add_post(f"{version}/restore", knowledge.restore_version, name="knowledge_restore")
    router.add_get("/knowledge/changes", knowledge.changes_page, name="knowledge_changes")
    change = r"/knowledge/changes/{change_id:\d+}"
    router.add_get(change, knowledge.change_page, name="knowledge_change")
    router.add_post(f"{change}/decide", knowledge.decide_change, name="knowledge_decide")
    router.add_get("/knowledge/freshness", knowledge.freshness_page, name="knowledge_freshness")
    # Admins: accounts and the audit log
    router.add_get("/admin/users", admin.users, name="users")
    router.add_post("/admin/users", admin.add_user, name="add_user")
    router.add_get(r"/admin/users/{user_id:\d+}", admin.user_page, name="user")
    router.add_post(r"/admin/users/{user_id:\d+}", admin.update_user, name="update_user")
    router.add_get("/admin/audit", admin.audit_log, name="audit")
