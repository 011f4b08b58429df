"""The console's /healthz, /readyz and /metrics, for a load balancer in front of the console.

/healthz and /readyz are open to everyone and say nothing personal (bot/ops/health.py);
/metrics answers only `Authorization: Bearer <token>` with the token of the environment variable
[metrics] console_token_env (BOT_METRICS_TOKEN), and is a 404 while that variable is unset.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.console.security import public
from bot.console.state import SERVICES
from bot.ops.health import (
    Readiness,
    bearer_token_matches,
    console_metrics_token,
    metrics_body,
)

CONSOLE_READINESS = web.AppKey("console_readiness", Readiness)


def setup_health(app: web.Application) -> None:
    """Give the console its own readiness over the services it was built with."""
    services = app[SERVICES]
    readiness = Readiness(services.settings, "web")
    readiness.attach(sessions=services.sessions, knowledge=lambda: services.knowledge.kb)
    app[CONSOLE_READINESS] = readiness


@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"alive": True, "role": "web"})


@public
async def readyz(request: web.Request) -> web.Response:
    checks = await request.app[CONSOLE_READINESS].checks()
    ready = all(c.ok for c in checks)
    return web.json_response(
        {"ready": ready, "checks": {c.name: c.detail for c in checks}},
        status=200 if ready else 503,
    )


@public
async def metrics(request: web.Request) -> web.Response:
    token = console_metrics_token(request.app[SERVICES].settings)
    if not token:
        raise web.HTTPNotFound()
    if not bearer_token_matches(request.headers.get("Authorization"), token):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = await metrics_body(request.app[CONSOLE_READINESS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
