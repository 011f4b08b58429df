"""The local try-out's departments: a department that works in a Telegram group, a supervisor's
group, and a pretend department *system* that receives signed webhooks and answers through the
signed callback endpoint, so a newcomer can watch a ticket's whole round trip in a browser.

    http://127.0.0.1:8090/demo/departments/ecology-environment      the pretend system's page
                                          …/webhook                 where the bot posts tickets
                                          …/act                     its buttons (signed callback)

Only the try-out uses this (`python -m bot run` without a token); the secret is made up at start
and lives in the process environment only.
"""

from __future__ import annotations

import html
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.api.callbacks import CALLBACK_PATH
from bot.api.signatures import verified_body
from bot.core.config import CallbackSettings, DepartmentChannels, Settings
from bot.tickets.signatures import IDEMPOTENCY_HEADER, SignatureError, signed_headers

log = logging.getLogger(__name__)

DEMO_DEPARTMENT = "ecology-environment"
TELEGRAM_DEPARTMENT = "urban-management"
# The name of the environment variable, not a secret.
SECRET_ENV = "TRYOUT_DEPARTMENT_SECRET"  # noqa: S105
_ACTIONS = ("acknowledge", "reply", "ask_resident", "hand_back")


def demo_base_url(callbacks: CallbackSettings) -> str:
    """Return the pretend department system's address (on the callback listener)."""
    return f"http://{callbacks.host}:{callbacks.port}/demo/departments/{DEMO_DEPARTMENT}"


def _free_port() -> int:
    """Return a port nobody listens on now (for [callbacks] port = 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tryout_ticket_settings(api: Any, settings: Settings) -> Settings:
    """Add the try-out's department chat, supervisor chat and pretend department system.

    `api` is the try-out's LocalBotApi: the groups are added to its page.
    """
    department = api.add_tryout_group(
        "department",
        "城管局工单群 Department",
        "城市管理局工单群 Urban management",
        {"城管刘科员": "creator", "城管陈科员": "member"},
    )
    supervisor = api.add_tryout_group(
        "supervisor", "督办群 Supervisor", "督办群 Supervisor", {"督查赵主任": "creator"}
    )
    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(32))
    port = settings.callbacks.port or _free_port()
    callbacks = settings.callbacks.model_copy(
        update={"enabled": True, "host": "127.0.0.1", "port": port}
    )
    departments = dict(settings.departments)
    departments[TELEGRAM_DEPARTMENT] = DepartmentChannels(
        channels=("telegram", "console"), telegram_chat_id=department.id
    )
    departments[DEMO_DEPARTMENT] = DepartmentChannels(
        channels=("webhook", "console"),
        webhook_url=demo_base_url(callbacks) + "/webhook",
        secret_env=SECRET_ENV,
    )
    return settings.model_copy(
        update={
            "callbacks": callbacks,
            "departments": departments,
            "telegram": settings.telegram.model_copy(update={"supervisor_chat_id": supervisor.id}),
        }
    )


@dataclass
class DemoDepartment:
    """A department's system as the try-out pretends it: it keeps what the bot sent."""

    department_id: str
    secret: bytes
    callback_url: str
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            body = await verified_body(request, self.secret)
        except SignatureError as error:
            return web.json_response({"ok": False, "error": str(error)}, status=401)
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        # De-duplicated by the idempotency key, as a department's system should.
        self.received.setdefault(key, json.loads(body))
        return web.json_response({"ok": True})

    async def act(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="cross-site request refused")
        form = await request.post()
        action = str(form.get("action", ""))
        ticket = str(form.get("ticket", ""))[:32]
        text = str(form.get("text", ""))[:3000]
        if action not in _ACTIONS:
            raise web.HTTPBadRequest(text="unknown action")
        body = json.dumps(
            {
                "nonce": secrets.token_hex(16),
                "ticket": ticket,
                "action": action,
                "text": text,
                "officer": "系统对接演示",
            },
            ensure_ascii=False,
        ).encode()
        headers = signed_headers(self.secret, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as client,
            client.post(self.callback_url, data=body, headers=headers) as response,
        ):
            answer = await response.text()
        self.notes.append(f"{ticket} {action}: HTTP {response.status} {answer[:200]}")
        raise web.HTTPSeeOther(request.path.rsplit("/", 1)[0])

    async def page(self, request: web.Request) -> web.Response:
        rows = []
        for key, payload in reversed(list(self.received.items())):
            event = payload.get("event", {})
            ticket = payload.get("ticket", {})
            number = html.escape(str(ticket.get("number", "")))
            forms = "".join(
                f'<form method="post" action="{html.escape(request.path)}/act">'
                f'<input type="hidden" name="ticket" value="{number}">'
                f'<input type="hidden" name="action" value="{action}">'
                + (
                    f'<input name="text" placeholder="{_ACTION_HINTS[action]}" required>'
                    if action != "acknowledge"
                    else ""
                )
                + f"<button>{_ACTION_LABELS[action]}</button></form>"
                for action in _ACTIONS
            )
            rows.append(
                f"<tr><td><b>{number}</b><br><small>{html.escape(key)}</small></td>"
                f"<td>{html.escape(str(event.get('kind', '')))}</td>"
                f"<td>{html.escape(str(ticket.get('description', ''))[:300])}</td>"
                f"<td>{resident_label(ticket)}</td>"
                f'<td class="act">{forms}</td></tr>'
            )
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in reversed(self.notes[-10:]))
        empty = (
            '<tr><td colspan="5" class="empty">还没有工单：在试用聊天里以居民身份提交一件'
            "“生态环境”类的事项。<br>No tickets yet: file one in the “生态环境” category "
            "as the resident in the try-out chat.</td></tr>"
        )
        text = (
            "<!doctype html><html lang=zh-CN><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<meta http-equiv=refresh content=5>"
            f"<title>部门业务系统（演示）· {html.escape(self.department_id)}</title>"
            f"<style>{_STYLE}</style>"
            "<header><h1>部门业务系统（演示）<small>Department system demo · "
            f"{html.escape(self.department_id)}</small></h1>"
            "<p>机器人通过签名 webhook 推送的工单（每个幂等键一行）；下面的按钮通过机器人的签名"
            "回调接口办理。<br>Tickets the bot delivered by signed webhook (one row per "
            "idempotency key). The buttons answer through the bot's signed callback "
            "endpoint. The page refreshes every 5 seconds.</p></header>"
            + (
                f'<section class="notes"><h2>最近操作 Recent calls</h2><ul>{notes}</ul></section>'
                if notes
                else ""
            )
            + "<table><thead><tr><th>工单 Ticket</th><th>事件 Event</th>"
            "<th>内容 Description</th><th>诉求人 Resident</th><th>办理 Act</th></tr></thead>"
            f"<tbody>{''.join(rows) or empty}</tbody></table>"
        )
        return web.Response(
            text=text, content_type="text/html", headers={"Cache-Control": "no-store"}
        )


_ACTION_LABELS = {
    "acknowledge": "签收 Acknowledge",
    "reply": "答复 Reply",
    "ask_resident": "请居民补充 Ask",
    "hand_back": "退单 Hand back",
}
_ACTION_HINTS = {
    "reply": "答复内容 Reply",
    "ask_resident": "要补充的问题 Question",
    "hand_back": "退单理由 Reason",
}
_STYLE = (
    "body{font:15px/1.5 system-ui,'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif;"
    "margin:0;background:#f4f6f8;color:#1f2933}"
    "header{background:#1f4e79;color:#fff;padding:16px 24px}"
    "header h1{margin:0;font-size:22px}header h1 small{font-weight:normal;font-size:15px;"
    "opacity:.85;margin-left:8px}header p{margin:6px 0 0;opacity:.9;font-size:13px}"
    ".notes{margin:16px 24px;background:#fff;border:1px solid #d9e2ec;border-radius:6px;"
    "padding:8px 16px}.notes h2{font-size:14px;margin:4px 0}.notes ul{margin:0;"
    "padding-left:18px;font:12px/1.6 ui-monospace,monospace;color:#52606d}"
    "table{border-collapse:collapse;margin:16px 24px;width:calc(100% - 48px);background:#fff;"
    "border:1px solid #d9e2ec;border-radius:6px}"
    "th{background:#e4ebf2;text-align:left;font-size:13px;padding:8px}"
    "td{border-top:1px solid #e4e7eb;padding:8px;vertical-align:top}"
    "td small{color:#7b8794;word-break:break-all}td.empty{color:#7b8794;text-align:center;"
    "padding:24px}.anonymous{color:#7b8794;font-style:italic}"
    ".act form{display:flex;gap:6px;margin:0 0 6px}"
    ".act input{flex:1;min-width:8em;padding:4px 6px;border:1px solid #bcccdc;border-radius:4px}"
    ".act button{padding:4px 10px;border:0;border-radius:4px;background:#1f4e79;color:#fff;"
    "cursor:pointer;white-space:nowrap}.act button:hover{background:#163a5a}"
)


def resident_label(ticket: dict[str, Any]) -> str:
    """Return who filed a ticket as the department may see it, as HTML: the name and phone the
    resident shared, or a word saying they are anonymous or did not share them."""
    resident = ticket.get("resident")
    if isinstance(resident, dict) and (resident.get("name") or resident.get("phone")):
        name = html.escape(str(resident.get("name") or ""))
        phone = html.escape(str(resident.get("phone") or ""))
        return f"{name}<br><small>{phone}</small>"
    if ticket.get("anonymous"):
        return '<span class="anonymous">匿名举报 Anonymous report</span>'
    return '<span class="anonymous">未同意提供身份 Identity not shared</span>'


def setup_demo_routes(app: web.Application, settings: Settings) -> DemoDepartment | None:
    """Serve the pretend department system on the callback listener (`app`).

    Nothing is served unless `tryout_ticket_settings` gave the department its secret.
    """
    callbacks = settings.callbacks
    config = settings.departments.get(DEMO_DEPARTMENT)
    secret = config.secret() if config else None
    if secret is None:
        return None
    base = f"/demo/departments/{DEMO_DEPARTMENT}"
    callback_url = f"http://{callbacks.host}:{callbacks.port}" + CALLBACK_PATH.format(
        department_id=DEMO_DEPARTMENT
    )
    demo = DemoDepartment(DEMO_DEPARTMENT, secret, callback_url)
    app.router.add_get(base, demo.page)
    app.router.add_post(base + "/webhook", demo.webhook)
    app.router.add_post(base + "/act", demo.act)
    log.info("try-out department system on %s", demo_base_url(callbacks))
    return demo
