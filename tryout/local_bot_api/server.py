"""`LocalBotApi`: the simulated Telegram served over HTTP on 127.0.0.1, as the Bot API is.

    async with LocalBotApi() as api:
        app = Application.builder().token(api.token).base_url(api.base_url)
            .base_file_url(api.base_file_url).build()
        resident = api.create_user("小李")
        chat = api.private_chat(resident)
        ...

The same server shows the try-out page at `api.tryout_url`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tryout.chat import TryoutView, TryoutWorld, create_tryout_world, setup_routes
from tryout.local_bot_api.errors import ApiError
from tryout.local_bot_api.methods import METHODS, Described
from tryout.local_bot_api.model import JSONDict, SimChat, SimUser
from tryout.local_bot_api.params import Params
from tryout.local_bot_api.transcript import ChatTranscript
from tryout.local_bot_api.world import World

# Not a secret: the local server accepts this made-up token and no other.
DEFAULT_TOKEN = "123456:LOCAL-TRYOUT-TOKEN"  # noqa: S105
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

_LOGGER = logging.getLogger(__name__)
_dumps = partial(json.dumps, ensure_ascii=False)

# Called with a method's name and parameters before the method runs (tests: a process killed
# at an exact call). Raising an ApiError refuses the call; nothing of it is then recorded.
Interceptor = Callable[[str, JSONDict], Awaitable[None]]


def _api_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


class LocalBotApi(World):
    """A Telegram Bot API server on 127.0.0.1 for one bot, with a simulation API for tests."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "shili_service_bot",
        bot_first_name: str = "示例市政务服务",
        privacy_mode: bool = True,
        strict_html_entities: bool = True,
        time_zone: str = "Asia/Shanghai",
    ) -> None:
        # The try-out page shows every time in this zone (the deployment's), not the browser's.
        self.time_zone = time_zone
        super().__init__(
            token=token,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            privacy_mode=privacy_mode,
            strict_html_entities=strict_html_entities,
        )
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._tryout: TryoutWorld | None = None
        self.interceptor: Interceptor | None = None

    # -----------------------------------------------------------------------------------------
    # Lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start serving; with port 0 a free port is chosen."""
        if self._runner is not None:
            raise RuntimeError("LocalBotApi is running already")
        self.closing = False
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        setup_routes(app, self)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        _LOGGER.info("Local Bot API listening on %s", self.url)

    async def stop(self) -> None:
        """Stop serving; long polls return at once."""
        if self._runner is None:
            return
        self.closing = True
        self.changed()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    @property
    def url(self) -> str:
        """Return the server's root URL."""
        if self._runner is None:
            raise RuntimeError("LocalBotApi is not running; use `async with LocalBotApi()`")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the Bot API URL in python-telegram-bot's convention (the token is appended)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the file download URL in python-telegram-bot's convention."""
        return f"{self.url}/file/bot"

    @property
    def tryout_url(self) -> str:
        """Return the address of the try-out chat page."""
        return f"{self.url}/"

    # -----------------------------------------------------------------------------------------
    # HTTP

    async def _handle_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _api_response(ApiError(401, "Unauthorized").to_api(), 401)
        name = request.match_info["method"]
        method = METHODS.get(name.lower())
        if method is None:
            return _api_response(ApiError(404, "Not Found").to_api(), 404)
        # Long polls are not the bot "doing something": they stay out of the call log.
        tracked = name.lower() != "getupdates"
        if tracked:
            self.call_started()
        recorded: dict[str, Any] = {}
        status, description = 200, None
        try:
            params = await Params.from_request(request)
            recorded = params.recorded()
            if self.interceptor is not None:
                await self.interceptor(name, recorded)
            result = await method(self, params)
            body: dict[str, Any] = {"ok": True, "result": result}
            if isinstance(result, Described):
                body = {"ok": True, "result": result.result, "description": result.description}
        except ApiError as error:
            status, description = error.status, error.description
            body = error.to_api()
        except Exception as error:
            _LOGGER.exception("local Bot API failed in %s", name)
            status, description = 500, f"Internal Server Error: {error!r}"
            body = ApiError(status, description).to_api()
        finally:
            if tracked:
                self.call_finished(name, recorded, status, description)
        return _api_response(body, status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _api_response(ApiError(401, "Unauthorized").to_api(), 401)
        stored = self.file_by_path(request.match_info["path"])
        if stored is None or stored.data is None:
            return _api_response(ApiError(404, "Not Found").to_api(), 404)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # -----------------------------------------------------------------------------------------
    # Transcripts and the try-out

    def private_chat(
        self,
        user: SimUser,
        *,
        timeout: float = 5.0,
        settle: float = 0.1,
        raise_on_refused: bool = True,
    ) -> ChatTranscript:
        """Return a transcript of `user` talking to the bot privately."""
        return ChatTranscript(
            self,
            self.create_private_chat(user),
            user,
            timeout=timeout,
            settle=settle,
            raise_on_refused=raise_on_refused,
        )

    def group_chat(
        self,
        chat: SimChat,
        user: SimUser,
        *,
        timeout: float = 5.0,
        settle: float = 0.1,
        raise_on_refused: bool = True,
    ) -> ChatTranscript:
        """Return a transcript of `user` talking in a group."""
        if not chat.is_group:
            raise ValueError(f"chat {chat.id} is not a group")
        return ChatTranscript(
            self, chat, user, timeout=timeout, settle=settle, raise_on_refused=raise_on_refused
        )

    @property
    def tryout(self) -> TryoutWorld:
        """Return the try-out's resident and staff group, created with defaults on first use."""
        if self._tryout is None:
            self._tryout = create_tryout_world(self)
        return self._tryout

    def setup_tryout(
        self,
        *,
        resident_name: str = "市民小李",
        resident_language: str = "zh-hans",
        staff_names: tuple[str, ...] = ("王科长", "张专员"),
        staff_group_title: str = "工作人员群 Staff",
        staff_group_id: int | None = None,
    ) -> TryoutWorld:
        """Create the try-out's resident, staff and staff group (call before the page is used)."""
        if self._tryout is not None:
            raise RuntimeError("the try-out world exists already")
        self._tryout = create_tryout_world(
            self,
            resident_name=resident_name,
            resident_language=resident_language,
            staff_names=staff_names,
            staff_group_title=staff_group_title,
            staff_group_id=staff_group_id,
        )
        return self._tryout

    def add_tryout_group(
        self, key: str, label: str, title: str, members: Mapping[str, str]
    ) -> SimChat:
        """Add a group of new people (name -> status) with the bot as an administrator to the
        try-out page, e.g. a department's chat; return the group."""
        world = self.tryout
        people = {
            self.create_user(name, language_code="zh-hans"): status
            for name, status in members.items()
        }
        group = self.create_group(title, people, bot_status="administrator")
        view = TryoutView(key, label, group, tuple(people))
        self._tryout = replace(world, views=(*world.views, view))
        return group
