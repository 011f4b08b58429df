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
                    '<input name="text" placeholder="text / 内容" required>'
                    if action != "acknowledge"
                    else ""
                )
                + f"<button>{action}</button></form>"
                for action in _ACTIONS
            )
            rows.append(
                f"<tr><td><code>{html.escape(key)}</code></td><td>{number}</td>"
                f"<td>{html.escape(str(event.get('kind', '')))}</td>"
                f"<td>{html.escape(str(ticket.get('description', ''))[:300])}</td>"
                f"<td>{html.escape(json.dumps(ticket.get('resident'), ensure_ascii=False))}</td>"
                f"<td>{forms}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in reversed(self.notes[-10:]))
        text = (
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
            f"<title>{html.escape(self.department_id)}</title>"
            "<style>body{font-family:sans-serif}td{border-top:1px solid #ccc;padding:4px;"
            "vertical-align:top}form{display:inline}</style>"
            f"<h1>部门业务系统（演示）Department system demo: {html.escape(self.department_id)}</h1>"
            "<p>Tickets the bot delivered by signed webhook (one row per idempotency key). "
            "The buttons answer through the bot's signed callback endpoint.</p>"
            f"<ul>{notes}</ul><table><tr><th>key</th><th>ticket</th><th>event</th>"
            f"<th>description</th><th>resident</th><th>act</th></tr>{''.join(rows)}</table>"
        )
        return web.Response(
            text=text, content_type="text/html", headers={"Cache-Control": "no-store"}
        )


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
