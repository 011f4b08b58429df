"""`python -m tryout.local_bot_api`: run the local Bot API and its try-out page until Ctrl+C.

Point a bot at it with TELEGRAM_API_BASE_URL and TELEGRAM_BOT_TOKEN as printed, then open the
try-out page in a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from tryout.local_bot_api.server import DEFAULT_TOKEN, LocalBotApi


async def serve(port: int, token: str, staff_group_id: int | None) -> None:
    """Serve until cancelled."""
    async with LocalBotApi(token=token, port=port) as api:
        tryout = api.setup_tryout(staff_group_id=staff_group_id)
        print(f"Try-out page 试用页面:   {api.tryout_url}")
        print(f"TELEGRAM_API_BASE_URL={api.base_url}")
        print(f"TELEGRAM_BOT_TOKEN={api.token}")
        print(f"File URL (base_file_url): {api.base_file_url}")
        print(f"Staff group chat id 工作人员群: {tryout.staff_group.id}")
        await asyncio.Event().wait()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m tryout.local_bot_api", description=__doc__)
    parser.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token to accept")
    parser.add_argument(
        "--staff-group-id", type=int, default=None, help="chat id of the staff group"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.token, args.staff_group_id))


if __name__ == "__main__":
    main()
