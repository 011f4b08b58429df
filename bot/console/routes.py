"""Every URL of the console, named; who may open each is declared on its handler."""

from __future__ import annotations

from aiohttp import web

from bot.console.views import admin, auth, figures, inbox, reports, tickets


def setup_routes(app: web.Application) -> None:
    """Add the console's routes to the application."""
    router = app.router
    # Everyone
    router.add_get("/", auth.home, name="home")
    router.add_get("/login", auth.login_page, name="login")
    router.add_post("/login", auth.login, name="login_post")
    router.add_post("/logout", auth.logout, name="logout")
    router.add_get("/password", auth.password_page, name="password")
    router.add_post("/password", auth.password_change, name="password_post")
    router.add_get("/lang/{language}", auth.switch_language, name="language")
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
        "/tickets/{number}/proof.json", tickets.ticket_proof_download, name="ticket_proof"
    )
    router.add_post("/tickets/{number}/acknowledge", tickets.acknowledge, name="acknowledge")
    router.add_post("/tickets/{number}/reply", tickets.reply, name="reply")
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
    # Admins: accounts and the audit log
    router.add_get("/admin/users", admin.users, name="users")
    router.add_post("/admin/users", admin.add_user, name="add_user")
    router.add_get(r"/admin/users/{user_id:\d+}", admin.user_page, name="user")
    router.add_post(r"/admin/users/{user_id:\d+}", admin.update_user, name="update_user")
    router.add_get("/admin/audit", admin.audit_log, name="audit")
