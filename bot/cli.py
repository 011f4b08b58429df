"""The `python -m bot` command line: one subcommand per job, each importing only what it needs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bot.core.config import ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], int]


def _lines(stream: Iterable[str]) -> Iterable[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def _knowledge_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.knowledge) if args.knowledge else settings.knowledge_dir


def command_ask(args: argparse.Namespace, settings: Settings) -> int:
    """Answer questions from the arguments or from standard input, one per line."""
    from bot.answering.cards import build_card, render_plain
    from bot.answering.knowledge_base import KnowledgeBaseError
    from bot.answering.store import build_knowledge, thresholds_from

    try:
        loaded = build_knowledge(_knowledge_dir(args, settings), thresholds_from(settings))
    except KnowledgeBaseError as error:
        print(error, file=sys.stderr)
        return 2
    questions: Iterable[str] = args.questions if args.questions else _lines(sys.stdin)
    for question in questions:
        result = loaded.matcher.match(question)
        language = result.language
        if args.json:
            best = result.best
            record = {
                "question": question,
                "decision": result.decision,
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
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
            continue
        print(f"> {question}")
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
    guides = sum(1 for i in kb.items.values() if i.kind == "guide")
    print(
        f"{directory}: {len(kb.items)} items ({guides} guides, {len(kb.items) - guides} "
        f"disclosure items) in {len(kb.categories())} categories, {len(kb.departments)} "
        f"departments, {len(kb.synonyms)} synonym groups: OK"
    )
    return 0


def command_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the matcher against an evaluation set and print the figures."""
    import tomllib

    from bot.answering.evaluation import (
        EvaluationSetError,
        evaluate,
        format_report,
        load_evaluation_set,
    )
    from bot.answering.knowledge_base import KnowledgeBaseError
    from bot.answering.store import build_knowledge, thresholds_from

    try:
        cases = load_evaluation_set(Path(args.set))
        loaded = build_knowledge(_knowledge_dir(args, settings), thresholds_from(settings))
        report = evaluate(loaded.matcher, cases)
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
    from bot.answering.calibration import calibrate, model_as_dict, write_weights
    from bot.answering.knowledge_base import load_knowledge_base
    from bot.answering.semantic import cache_for
    from bot.answering.store import signals_from

    kb = load_knowledge_base(_knowledge_dir(args, settings))
    signals = signals_from(settings)
    status = signals.embedder()
    semantic = cache_for(signals.embedding_cache, status.embedder) if status.embedder else None
    model = calibrate(kb, semantic)
    print(json.dumps(model_as_dict(model), ensure_ascii=False, indent=2))
    if args.write:
        write_weights(model)
        print("written to bot/answering/calibration/weights.json", file=sys.stderr)
    return 0


def _add_knowledge_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--knowledge",
        metavar="DIR",
        help="knowledge-base folder (default: [knowledge] dir of the config)",
    )


def build_parser(
    extra: Sequence[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = (),
) -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="The public-service bot.")
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default: $BOT_CONFIG or config.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
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

    evaluation = commands.add_parser("evaluate", help="measure matching on an evaluation set")
    _add_knowledge_option(evaluation)
    evaluation.add_argument(
        "--set",
        default="tests/data/evaluation.toml",
        help="evaluation set (default: tests/data/evaluation.toml)",
    )
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluation.add_argument("--failures", action="store_true", help="list every miss")
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
    calibration.set_defaults(handler=command_calibrate)

    for add in extra:
        add(commands)
    return parser


def _service_commands() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
]:
    """Return the adders of the subcommands that run services (bot, web, reports)."""
    from bot.console_cli import add_console_commands
    from bot.runner import add_run_command
    from bot.ticket_commands import add_ticket_commands

    return [add_run_command, add_ticket_commands, add_console_commands]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    parser = build_parser(_service_commands())
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic announces each of its plugins at start; the migrations it runs are still logged.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    handler: Command = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): not an error of ours.
        sys.stderr.close()
        return 0
