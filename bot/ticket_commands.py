"""Ticket subcommands of `python -m bot`: `report` (the figures of a month) and `worker` (delivery,
deadlines and department callbacks in a process of their own)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.core.config import Settings


def command_report(args: argparse.Namespace, settings: Settings) -> int:
    """Print the figures of one month, per department and in total."""
    from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base
    from bot.core.services import open_database
    from bot.tickets.figures import Month, figures_for_month, format_report

    try:
        month = Month.parse(args.month)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        kb = load_knowledge_base(settings.knowledge_dir)
    except KnowledgeBaseError as error:
        print(error, file=sys.stderr)
        return 2
    if args.department and args.department not in kb.departments:
        print(f"unknown department {args.department!r} (see departments.toml)", file=sys.stderr)
        return 2

    async def read() -> str:
        async with open_database(settings, migrate=False) as sessions, sessions() as session:
            figures = await figures_for_month(
                session, month, args.department, timezone=settings.tickets.timezone
            )
        if args.json:
            return json.dumps(figures.as_dict(), ensure_ascii=False, indent=2)
        names = {d.id: d.name for d in kb.departments.values()}
        return format_report(figures, names)

    print(asyncio.run(read()))
    return 0


def command_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver tickets, keep their deadlines and take department callbacks until interrupted."""
    from bot.workers import run_worker_process

    return asyncio.run(run_worker_process(settings, once=args.once))


def add_ticket_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `report` and `worker` to the command line."""
    report = commands.add_parser(
        "report", help="print a month's figures (response, on time, rating, satisfaction)"
    )
    report.add_argument("--month", required=True, help="the month, e.g. 2026-11")
    report.add_argument("--department", help="one department id (default: each and all)")
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.set_defaults(handler=command_report)

    worker = commands.add_parser(
        "worker",
        help="deliver tickets and run their clock without the Telegram bot (extra processes)",
    )
    worker.add_argument(
        "--once", action="store_true", help="deliver what is due, sweep deadlines once, and exit"
    )
    worker.set_defaults(handler=command_worker)
