"""The `python -m bot` command line: every subcommand and its arguments are defined here.

One subcommand per job (README.md lists them; `python -m bot --help` too), each importing only
what it needs; the work itself is done in its domain (bot/runner.py runs the bot, bot/workers.py
the ticket workers, bot/console the web console). Commands that use the database open it through
bot/services.py.

Passwords never go on the command line (where `ps` and shell history would keep them): `user add`
asks for one at a prompt, or reads one line from standard input when that is not a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import getpass
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot.core.config import ConfigError, Settings, load_settings
from bot.core.logs import LOG_FORMATS, chosen_format, setup_logging

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Command = Callable[[argparse.Namespace, Settings], int]
T = TypeVar("T")
log = logging.getLogger(__name__)

# The role a command's process plays, as logs and metrics name it.
PROCESS_ROLES = {"run": "bot", "web": "web", "worker": "worker"}
# `ask` prints what the chat replies to messages that are not questions (keys of bot.core.i18n).
_CHAT_REPLIES = {
    "small_talk": "small_talk",
    "venting": "venting",
    "asks_person": "person_prompt",
    "empty": "empty_question",
}


def _lines(stream: Iterable[str]) -> Iterable[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def _knowledge_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.knowledge) if args.knowledge else settings.knowledge_dir


def command_ask(args: argparse.Namespace, settings: Settings) -> int:
    """Answer questions from the arguments or from standard input, one per line."""
    from bot.answering.cards import build_card, render_plain
    from bot.answering.knowledge_base import KnowledgeBaseError
    from bot.answering.store import build_knowledge, signals_from, thresholds_from
    from bot.core.i18n import t

    signals = signals_from(settings)
    try:
        loaded = build_knowledge(
            _knowledge_dir(args, settings), thresholds_from(settings), signals
        )
    except KnowledgeBaseError as error:
        print(error, file=sys.stderr)
        return 2
    semantic = signals.embedder().describe()
    questions: Iterable[str] = args.questions if args.questions else _lines(sys.stdin)
    for question in questions:
        result = loaded.matcher.match(question)
        language = result.language
        if args.json:
            best = result.best
            record = {
                "question": question,
                "decision": result.decision,
                "intent": result.intent,
                "reason": result.reason,
                "item_id": best.item.id if best else None,
                "score": round(result.score, 4),
                "candidates": [
                    {
                        "id": c.item.id,
                        "title": c.item.get_text("title", language),
                        "score": round(c.score, 4),
                    }
                    for c in result.candidates
                ],
                "semantic": semantic,
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
            continue
        print(f"> {question}")
        # Someone in difficulty: whom to call comes first in the chat, before anything else.
        in_difficulty = result.in_difficulty()
        if in_difficulty:
            print(
                f"If anyone is in danger, call {settings.emergency_numbers_en} at once; the "
                "chat offers to file it as a help request."
                if language == "en"
                else f"如有人正处在危险中，请马上拨打 {settings.emergency_numbers}；"
                "在聊天中可以直接提交为求助工单。"
            )
        if result.decision == "answer" and result.best:
            print(render_plain(build_card(result.best.item, loaded.kb, language)))
            print(f"({'score' if language == 'en' else '置信度'} {result.score:.2f})")
        elif result.decision == "suggest":
            print("Did you mean:" if language == "en" else "您是不是想问：")
            for number, candidate in enumerate(
                result.suggestions(settings.matching.max_suggestions), start=1
            ):
                title = candidate.item.get_text("title", language)
                print(f"  {number}. {title}  ({candidate.score:.2f})")
        elif result.decision == "report":
            if not in_difficulty:
                print(
                    "This sounds like a problem to report: the chat offers to file it as a ticket."
                    if language == "en"
                    else "这像是需要反映的问题：在聊天中可以直接提交为工单。"
                )
        elif result.reason in _CHAT_REPLIES:
            # What the chat says to small talk, venting, "转人工" and a message with nothing to
            # read (plain text, no markup).
            print(t(_CHAT_REPLIES[result.reason], language))
        elif result.decision == "decline":
            print(
                "This is outside what the city's public-service bot can help with."
                if language == "en"
                else "这个问题不在政务服务的范围内。"
            )
        else:
            print(
                "A member of staff will answer this question."
                if language == "en"
                else "这个问题需要工作人员解答，我们会尽快回复您。"
            )
        print(flush=True)
    return 0


def command_kb_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate a knowledge base and list every problem with its file and field."""
    from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base

    directory = _knowledge_dir(args, settings)
    try:
        kb = load_knowledge_base(directory)
    except KnowledgeBaseError as error:
        print(error, file=sys.stderr)
        return 2
    for warning in kb.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for department in settings.unknown_departments(kb.departments):
        print(
            f"{settings.source}: [departments.{department}]: 知识库中没有此部门 / not a "
            f"department of this knowledge base (see departments.toml)",
            file=sys.stderr,
        )
    if settings.unknown_departments(kb.departments):
        return 2
    guides = sum(1 for i in kb.items.values() if i.kind == "guide")
    guide_categories = {i.category for i in kb.items.values() if i.kind == "guide"}
    disclosure_categories = {i.category for i in kb.items.values() if i.kind != "guide"}
    print(
        f"{directory}: {len(kb.items)} items ({guides} guides, {len(kb.items) - guides} "
        f"disclosure items) in {len(kb.categories())} categories ({len(guide_categories)} of "
        f"guides, {len(disclosure_categories)} of disclosure items), {len(kb.departments)} "
        f"departments, {len(kb.synonyms)} synonym groups: OK"
    )
    from bot.answering.lexicon import general_lexicon
    from bot.answering.store import signals_from

    signals = signals_from(settings)
    lexicon = f"{len(general_lexicon())} groups" if signals.general_lexicon else "off"
    print(f"semantic matching: {signals.embedder().describe()}; general lexicon: {lexicon}")
    return 0


def command_kb_publish(args: argparse.Namespace, settings: Settings) -> int:
    """Publish this host's knowledge files the database has not seen (edited by hand, or never
    published) to every host, as one new published version."""
    from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base
    from bot.answering.replication import FolderPublished, KnowledgeReplica
    from bot.services import open_database

    directory = settings.knowledge_dir
    try:
        load_knowledge_base(directory)
    except KnowledgeBaseError as error:
        print(error, file=sys.stderr)
        print(
            "未发布 / nothing published: fix the files first (python -m bot kb check)",
            file=sys.stderr,
        )
        return 2

    async def publish() -> FolderPublished:
        async with open_database(settings, migrate=True) as sessions:
            return await KnowledgeReplica(directory, sessions).publish_folder()

    result = asyncio.run(publish())
    for path in result.behind:
        print(
            f"{path}: 比已发布的版本旧，未发布 / older than the published text, not published "
            "(the bot brings it up to date)",
            file=sys.stderr,
        )
    if result.version is None:
        print(
            f"{directory}: 没有需要发布的文件 / nothing to publish: the database holds these files"
        )
        return 0
    print(
        f"{directory}: 已发布版本 {result.version} / published version {result.version}: "
        f"{len(result.published)} files"
    )
    for path in result.published:
        print(f"  {path}")
    return 0


def command_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the matcher against an evaluation set and print the figures."""
    import tomllib

    from bot.answering.evaluation import (
        EvaluationSetError,
        evaluate,
        format_report,
        load_evaluation_set,
        new_city_base,
    )
    from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base
    from bot.answering.store import build_matcher, signals_from, thresholds_from

    try:
        cases = load_evaluation_set(Path(args.set))
        kb = load_knowledge_base(_knowledge_dir(args, settings))
        if args.new_city:
            kb = new_city_base(kb)
        matcher = build_matcher(kb, thresholds_from(settings), signals_from(settings))
        report = evaluate(matcher, cases)
    except (KnowledgeBaseError, EvaluationSetError) as error:
        print(error, file=sys.stderr)
        return 2
    except (OSError, tomllib.TOMLDecodeError) as error:
        print(f"{args.set}: cannot read the evaluation set: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_report(report, show_failures=args.failures))
    return 0


def command_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """Fit the matcher's score model on the knowledge base's own questions."""
    from bot.answering.calibration import (
        calibrate,
        held_out_scores,
        lowest_worthwhile_suggest_threshold,
        metric_held_out_answers,
        model_as_dict,
        suggest_threshold_bands,
        write_weights,
    )
    from bot.answering.knowledge_base import load_knowledge_base
    from bot.answering.semantic import cache_for
    from bot.answering.store import signals_from

    kb = load_knowledge_base(_knowledge_dir(args, settings))
    signals = signals_from(settings)
    status = signals.embedder()
    semantic = cache_for(signals.embedding_cache, status.embedder) if status.embedder else None
    if args.held_out:
        if semantic is None:
            print(f"--held-out needs the semantic signal: {status.reason}", file=sys.stderr)
            return 2
        answers = metric_held_out_answers(kb, semantic, with_metric=args.held_out == "metric")
        bands = suggest_threshold_bands(answers)
        figures: dict[str, object] = dataclasses.asdict(held_out_scores(answers))
        figures["suggest_threshold_bands"] = [
            dataclasses.asdict(band) | {"share": round(band.share, 4)} for band in bands
        ]
        figures["lowest_worthwhile_suggest_threshold"] = lowest_worthwhile_suggest_threshold(bands)
        print(json.dumps(figures, indent=2))
        return 0
    model = calibrate(kb, semantic)
    print(json.dumps(model_as_dict(model), ensure_ascii=False, indent=2))
    if args.write:
        write_weights(model)
        print("written to bot/answering/calibration/weights.json", file=sys.stderr)
    return 0


def command_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the bot and everything else in one process."""
    from bot.runner import run

    try:
        asyncio.run(run(settings))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        # Most often a second copy of the bot, or another program on the same port.
        log.error("%s", error)
        print(
            f"{error.strerror or error}. Another copy of the bot may be running: stop it, or "
            "choose other ports in config.toml ([telegram] tryout_port, [web] port, "
            "[callbacks] port, [telegram] webhook_port).\n"
            "端口已被占用：可能已有一个机器人在运行。请先停止它，或在 config.toml 中改用其他端口。",
            file=sys.stderr,
        )
        return 1
    return 0


def command_web(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the web console alone, without the Telegram bot."""
    from bot.console.app import run_standalone

    host = args.host or settings.web.host
    port = args.port or settings.web.port
    print(f"web console on http://{host}:{port}/ (Ctrl+C stops it)", flush=True)
    run_standalone(settings, host, port)
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password / 密码: ")
        if getpass.getpass("Again / 再次输入: ") != first:
            raise ValueError("the two passwords differ / 两次输入不一致")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _with_session(
    settings: Settings, work: Callable[..., Awaitable[T]], *arguments: object
) -> T:
    """Run `work(session, departments, *arguments)` in one committed transaction."""
    from bot.answering.knowledge_base import load_knowledge_base
    from bot.services import open_database

    departments = set(load_knowledge_base(settings.knowledge_dir).departments)
    async with open_database(settings, migrate=True) as sessions, sessions() as session:
        result = await work(session, departments, *arguments)
        await session.commit()
        return result


def command_user(args: argparse.Namespace, settings: Settings) -> int:
    """Add, disable, enable or list console accounts, or reset a password."""
    from sqlalchemy import select

    from bot.answering.knowledge_base import KnowledgeBaseError
    from bot.console.accounts import (
        AccountError,
        create_user,
        find_user,
        one_time_password,
        reset_password,
        set_disabled,
    )
    from bot.core.models import User

    async def add(session: AsyncSession, departments: set[str], password: str) -> str:
        user = await create_user(
            session,
            username=args.username,
            password=password,
            role=args.role,
            departments=departments,
            department_id=args.department,
            display_name=args.name or "",
            must_change_password=args.one_time,
        )
        return f"created {user.username} ({user.role}{', ' + user.department_id if user.department_id else ''})"

    async def existing(session: AsyncSession) -> User:
        user = await find_user(session, args.username)
        if user is None:
            raise AccountError(f"没有账号 {args.username}", f"no account {args.username!r}")
        return user

    async def disable(session: AsyncSession, _: set[str]) -> str:
        user = await existing(session)
        await set_disabled(session, user, not args.enable)
        return f"{'enabled' if args.enable else 'disabled'} {user.username}"

    async def reset(session: AsyncSession, _: set[str]) -> str:
        user = await existing(session)
        password = await reset_password(session, user)
        return (
            f"one-time password for {user.username} (shown once; it must be changed at the next "
            f"login):\n{password}"
        )

    async def listing(session: AsyncSession, _: set[str]) -> str:
        users = (await session.execute(select(User).order_by(User.username))).scalars()
        return "\n".join(
            f"{u.username:<24} {u.role:<8} {u.department_id or '-':<24} "
            f"{'disabled' if u.disabled else 'active'}"
            for u in users
        )

    try:
        if args.user_command == "add":
            password = one_time_password() if args.one_time else _read_password()
            message = asyncio.run(_with_session(settings, add, password))
            if args.one_time:
                message += f"\none-time password (shown once; change at first login):\n{password}"
        elif args.user_command == "disable":
            message = asyncio.run(_with_session(settings, disable))
        elif args.user_command == "reset-password":
            message = asyncio.run(_with_session(settings, reset))
        else:
            message = asyncio.run(_with_session(settings, listing))
    except AccountError as error:
        print(f"{error.chinese} / {error.english}", file=sys.stderr)
        return 2
    except (ValueError, KnowledgeBaseError) as error:
        print(error, file=sys.stderr)
        return 2
    print(message)
    return 0


def command_report(args: argparse.Namespace, settings: Settings) -> int:
    """Print the figures of one month, per department and in total."""
    from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base
    from bot.core import audit_chain
    from bot.services import open_database
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
        # Reading only: a database the bot never created is "no data yet", and is not created.
        async with (
            open_database(settings, migrate=False, require_data=True) as sessions,
            sessions() as session,
        ):
            figures = await figures_for_month(
                session, month, args.department, timezone=settings.timezone
            )
            # The chains' heads as of printing: kept with the report, outside the database, they
            # show later whether the records up to here were changed (docs/security.md).
            chain_heads = await audit_chain.heads(session)
        if args.json:
            data = figures.as_dict() | {
                "audit_chain_heads": {
                    c: {"seq": n, "hash": h} for c, (n, h) in chain_heads.items()
                }
            }
            return json.dumps(data, ensure_ascii=False, indent=2)
        names = {d.id: d.name for d in kb.departments.values()}
        heads_text = "\n".join(
            f"  {audit_chain.format_head(c, n, h)}" for c, (n, h) in chain_heads.items()
        )
        return (
            f"{format_report(figures, names)}\n\n"
            f"Audit chain heads 审计链头 (check with python -m bot audit verify):\n{heads_text}"
        )

    print(asyncio.run(read()))
    return 0


def command_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the audit chains, export a ticket's proof, or check a proof."""
    from bot.core import audit_chain

    if args.audit_command == "check-proof":
        return _check_proof(args)
    from bot.core.audit import record_audit
    from bot.services import open_database
    from bot.tickets.reads import ticket_by_number

    async def verify() -> int:
        async with (
            open_database(settings, migrate=False, require_data=True) as sessions,
            sessions() as session,
        ):
            reports = await audit_chain.verify_all(session)
        for report in reports:
            if not report.ok:
                print(f"TAMPERED {report.chain}: {report.problem}")
                return 1
        print(
            "OK "
            + "; ".join(
                f"{r.chain}: {r.count} rows, head {r.head_seq}:{r.head_hash}" for r in reports
            )
        )
        return 0

    async def ticket() -> str | None:
        async with (
            open_database(settings, migrate=False, require_data=True) as sessions,
            sessions() as session,
        ):
            found = await ticket_by_number(session, number)
            if found is None:
                return None
            proof = await audit_chain.ticket_proof(session, found)
            await record_audit(
                session,
                user_id=None,
                action="ticket.export_proof",
                target_type="ticket",
                target_id=number,
                detail={"head_seq": proof["head"]["seq"], "via": "cli"},
            )
            await session.commit()
        return json.dumps(proof, ensure_ascii=False, indent=1)

    if args.audit_command == "verify":
        return asyncio.run(verify())
    number = args.number.strip().upper()[:32]
    text = asyncio.run(ticket())
    if text is None:
        print(f"no ticket {number}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def _check_proof(args: argparse.Namespace) -> int:
    from bot.core.audit_chain import ChainError, check_proof

    published: list[tuple[int, str]] = []
    for head in args.head or []:
        seq, _, hash_ = head.rpartition(" ")[2].partition(":")
        if not seq.isdigit() or len(hash_) != 64:
            print(f"--head wants SEQ:HASH as the report prints it, not {head!r}", file=sys.stderr)
            return 2
        published.append((int(seq), hash_.lower()))
    try:
        proof = json.loads(Path(args.file).read_text(encoding="utf-8"))
        if not isinstance(proof, dict):
            raise ChainError("not a ticket proof")
        result = check_proof(proof, published)
    except (OSError, ValueError, ChainError) as error:
        print(f"PROOF FAILS: {error}")
        return 1
    print(
        f"OK {result.ticket}: {result.events} events chained up to ticket_events head "
        f"{result.head_seq}:{result.head_hash}"
        + (f"; matches {len(published)} published head(s)" if published else "")
    )
    return 0


def command_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver tickets, keep their deadlines and take department callbacks until interrupted."""
    from bot.workers import run_worker_process

    return asyncio.run(run_worker_process(settings, once=args.once))


def command_privacy(args: argparse.Namespace, settings: Settings) -> int:
    """Erase personal data past its retention period now ([privacy] in config.toml)."""
    from bot.services import open_database
    from bot.tickets.privacy import PrivacyDesk

    async def sweep() -> dict[str, int]:
        async with open_database(settings, migrate=True) as sessions:
            report = await PrivacyDesk(settings, sessions).sweep()
        return report.as_dict()

    counts = asyncio.run(sweep())
    if args.json:
        print(json.dumps(counts))
    else:
        print(
            "erased: {tickets} tickets' personal data, {questions} questions' texts, "
            "{residents} idle residents; pseudonymised: {pseudonymised} anonymous "
            "reports".format(**counts)
        )
    return 0


def command_db(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate the database (`db upgrade`) or tell whether its schema is the latest (`db check`)."""
    from bot.services import check_schema, upgrade_schema

    if args.db_command == "upgrade":
        revision = asyncio.run(upgrade_schema(settings))
        print(f"the database schema is at {revision}")
        return 0
    problem = asyncio.run(check_schema(settings))
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    print("the database schema is the latest")
    return 0


def _add_knowledge_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--knowledge",
        metavar="DIR",
        help="knowledge-base folder (default: [knowledge] dir of the config)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="The public-service bot.")
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default: $BOT_CONFIG or config.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text, or json (one object a line); default: $BOT_LOG_FORMAT or [logging] format",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = commands.add_parser("ask", help="answer questions from the knowledge base")
    _add_knowledge_option(ask)
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.add_argument(
        "questions",
        nargs="*",
        metavar="QUESTION",
        help="questions (default: one per line from standard input)",
    )
    ask.set_defaults(handler=command_ask)

    kb = commands.add_parser("kb", help="knowledge-base tools")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True, metavar="KB_COMMAND")
    check = kb_commands.add_parser("check", help="validate the knowledge base")
    _add_knowledge_option(check)
    check.set_defaults(handler=command_kb_check)
    publishing = kb_commands.add_parser(
        "publish",
        help="publish this host's files edited by hand to every host (through the database)",
    )
    publishing.set_defaults(handler=command_kb_publish)

    evaluation = commands.add_parser("evaluate", help="measure matching on an evaluation set")
    _add_knowledge_option(evaluation)
    evaluation.add_argument(
        "--set",
        default="tests/data/evaluation.toml",
        help="evaluation set (default: tests/data/evaluation.toml)",
    )
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluation.add_argument("--failures", action="store_true", help="list every miss")
    evaluation.add_argument(
        "--new-city",
        action="store_true",
        help="strip the knowledge base to what a new city writes first: three Chinese "
        "questions an item, nothing in English, no synonyms file",
    )
    evaluation.set_defaults(handler=command_evaluate)

    calibration = commands.add_parser(
        "calibrate", help="fit the matcher's score on the knowledge base"
    )
    _add_knowledge_option(calibration)
    calibration.add_argument(
        "--write",
        action="store_true",
        help="store the weights in bot/answering/calibration/weights.json",
    )
    calibration.add_argument(
        "--held-out",
        nargs="?",
        const="metric",
        choices=("metric", "plain"),
        help="fit nothing; ask each practice base of models (and a metric) fitted without it "
        "and print the scores (slow: minutes); 'plain' measures without the metric",
    )
    calibration.set_defaults(handler=command_calibrate)

    run = commands.add_parser(
        "run",
        help="run the bot (and the web console); without TELEGRAM_BOT_TOKEN, the local try-out",
    )
    run.set_defaults(handler=command_run)

    report = commands.add_parser(
        "report", help="print a month's figures (response, on time, rating, satisfaction)"
    )
    report.add_argument("--month", required=True, help="the month, e.g. 2026-11")
    report.add_argument("--department", help="one department id (default: each and all)")
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    report.set_defaults(handler=command_report)

    audit = commands.add_parser(
        "audit", help="the tamper-evident audit chains (see docs/security.md)"
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_commands.add_parser(
        "verify", help="walk the audit log and ticket events chains; exit 1 if tampered"
    )
    proof = audit_commands.add_parser(
        "ticket", help="export a ticket's events with their hashes and the chain head (JSON)"
    )
    proof.add_argument("number", help="the ticket number, e.g. TS-2026-000123")
    proof.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    checking = audit_commands.add_parser(
        "check-proof", help="check a ticket's proof file without the database"
    )
    checking.add_argument("file", help="the proof (from the console or `audit ticket`)")
    checking.add_argument(
        "--head",
        action="append",
        metavar="SEQ:HASH",
        help="a ticket_events head published in a monthly report, which the proof must contain",
    )
    audit.set_defaults(handler=command_audit)

    worker = commands.add_parser(
        "worker",
        help="deliver tickets and run their clock without the Telegram bot (extra processes)",
    )
    worker.add_argument(
        "--once", action="store_true", help="deliver what is due, sweep deadlines once, and exit"
    )
    worker.set_defaults(handler=command_worker)

    database = commands.add_parser(
        "db", help="the database schema: upgrade it, or check that it is the latest"
    )
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    db_commands.add_parser(
        "upgrade", help="apply the migrations (safe while other processes start or run)"
    )
    db_commands.add_parser(
        "check", help="exit 1 with one line when the schema is behind the code, else 0"
    )
    database.set_defaults(handler=command_db)

    web = commands.add_parser("web", help="serve the web console alone (see docs/console.md)")
    web.add_argument("--host", help="address to listen on (default: [web] host)")
    web.add_argument("--port", type=int, help="port (default: [web] port)")
    web.set_defaults(handler=command_web)

    user = commands.add_parser("user", help="console accounts: add, disable, reset-password, list")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add an account; the password is asked for (or read from standard input)"
    )
    add.add_argument("username")
    add.add_argument(
        "--role", required=True, choices=("staff", "officer", "editor", "manager", "admin")
    )
    add.add_argument("--department", help="department id (officers only)")
    add.add_argument("--name", help="display name")
    add.add_argument(
        "--one-time",
        action="store_true",
        help="generate a one-time password instead of asking; it must be changed at first login",
    )
    disable = actions.add_parser("disable", help="disable an account (its sessions end at once)")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    reset = actions.add_parser(
        "reset-password", help="print a one-time password; it must be changed at next login"
    )
    reset.add_argument("username")
    actions.add_parser("list", help="list the accounts")
    user.set_defaults(handler=command_user)

    privacy = commands.add_parser("privacy", help="residents' personal data (README)")
    privacy_commands = privacy.add_subparsers(
        dest="privacy_command", required=True, metavar="PRIVACY_COMMAND"
    )
    sweep = privacy_commands.add_parser(
        "sweep", help="erase personal data past its retention period ([privacy]) now"
    )
    sweep.add_argument("--json", action="store_true", help="print the counts as JSON")
    privacy.set_defaults(handler=command_privacy)
    return parser


def _start_failure(error: Exception) -> int | None:
    """Print what stopped a command from starting, in a line, and return its exit status.

    Return None for anything else (a bug, whose traceback is wanted). A config error or a broken
    knowledge base is 2, like a wrong argument; a database that cannot be reached, or that has no
    data yet, is 1.
    """
    from bot.answering.knowledge_base import KnowledgeBaseError
    from bot.services import StartError

    if isinstance(error, ConfigError):
        print(error, file=sys.stderr)
        return 2
    if isinstance(error, KnowledgeBaseError):
        print(f"知识库无法加载 / {error}", file=sys.stderr)
        print("(python -m bot kb check lists the problems / 可用此命令检查)", file=sys.stderr)
        return 2
    if isinstance(error, StartError):
        print(error, file=sys.stderr)
        return 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every command logs the same way, with secrets redacted (bot/core/logs.py).
    role = PROCESS_ROLES.get(args.command, args.command)
    setup_logging(verbose=args.verbose, log_format=chosen_format(args.log_format), role=role)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    log_format = chosen_format(args.log_format, settings.logging.format)
    setup_logging(verbose=args.verbose, log_format=log_format, role=role)
    handler: Command = args.handler
    try:
        return handler(args, settings)
    except Exception as error:
        status = _start_failure(error)
        if status is None:
            raise
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): not an error of ours.
        sys.stderr.close()
        return 0
