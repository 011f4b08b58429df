"""Questions handed to staff: the policy that decides when, and the staff answers, which reach the
resident through the outbox with its retries (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.escalations import route_question, staff_answer_notice
from bot.answering.store import LoadedKnowledge
from bot.core.db import downgrade_database, session_factory, upgrade_database
from bot.core.models import OutboxMessage, Resident, utcnow
from bot.services import Services
from bot.telegram.escalation_posts import answer_messages
from bot.tickets.delivery import Delivery, DeliveryWorker
from bot.tickets.outbox import ESCALATION_ANSWER, escalation_answer_message
from bot.workers import TelegramChannel
from tests.fixtures_conversation import REPO_ROOT, BotHarness, conversation_settings
from tryout.local_bot_api import methods as local_methods
from tryout.local_bot_api.errors import ApiError

SETTINGS = conversation_settings("sqlite+aiosqlite://")


# -- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "wants_person", "reply", "cause"),
    [
        ("社保卡丢了怎么办", False, "answer", None),
        ("社保卡丢了怎么办", True, "staff", "person"),
        ("你好", False, "small_talk", None),
        ("😀", False, "empty", None),
        ("还在吗", False, "small_talk", None),
        ("犬只免疫证明怎么开", False, "staff", "escalate"),
        ("我家楼下的路灯坏了", False, "report", None),
        ("昨晚的足球赛谁赢了", False, "out_of_scope", None),
        ("今天天气怎么样", False, "out_of_scope", None),
        ("今天天气怎么样", True, "staff", "person"),
    ],
)
def test_what_becomes_of_a_question(
    bundled: LoadedKnowledge, question: str, wants_person: bool, reply: str, cause: str | None
) -> None:
    result = bundled.matcher.match(question)
    route = route_question(result, wants_person=wants_person, settings=SETTINGS, language="zh")
    assert (route.reply, route.cause, route.preface) == (reply, cause, None)


def test_a_question_about_another_city_goes_to_staff_with_a_word_first(
    bundled: LoadedKnowledge,
) -> None:
    result = bundled.matcher.match("北京的公积金怎么提取")
    route = route_question(result, wants_person=False, settings=SETTINGS, language="en")
    assert (route.reply, route.cause) == ("staff", "escalate")
    assert (
        route.preface == "Your question seems to be about 北京; I only know Shili City's services."
    )


def test_a_choice_is_offered_when_the_matcher_is_unsure(bundled: LoadedKnowledge) -> None:
    unsure = dataclasses.replace(bundled.matcher.match("社保卡丢了怎么办"), decision="suggest")
    route = route_question(unsure, wants_person=False, settings=SETTINGS, language="zh")
    assert (route.reply, route.cause) == ("suggest", None)


def test_a_problem_to_report_is_offered_as_a_ticket_beside_a_card_or_a_choice(
    bundled: LoadedKnowledge,
) -> None:
    # Built from one real result, so that the policy, not the knowledge base's phrasings, is
    # what is tested.
    base = bundled.matcher.match("社保卡丢了怎么办")
    routes = {
        (decision, intent): route_question(
            dataclasses.replace(base, decision=decision, intent=intent, reason="x"),
            wants_person=False,
            settings=SETTINGS,
            language="zh",
        )
        for decision in ("answer", "suggest", "report")
        for intent in ("question", "report")
    }
    assert {key: (r.reply, r.offer_ticket, r.cause) for key, r in routes.items()} == {
        ("answer", "question"): ("answer", False, None),
        ("answer", "report"): ("answer", True, None),
        ("suggest", "question"): ("suggest", False, None),
        ("suggest", "report"): ("suggest", True, None),
        ("report", "question"): ("report", True, None),
        ("report", "report"): ("report", True, None),
    }


@pytest.mark.parametrize(
    ("reason", "intent", "reply"),
    [
        ("small_talk", "small_talk", "small_talk"),
        ("out_of_scope", "out_of_scope", "out_of_scope"),
    ],
)
def test_a_declined_message_never_goes_to_staff_unless_the_resident_asks(
    bundled: LoadedKnowledge, reason: str, intent: str, reply: str
) -> None:
    declined = dataclasses.replace(
        bundled.matcher.match("社保卡丢了怎么办"), decision="decline", reason=reason, intent=intent
    )
    route = route_question(declined, wants_person=False, settings=SETTINGS, language="zh")
    assert (route.reply, route.cause, route.offer_ticket) == (reply, None, False)
    asked = route_question(declined, wants_person=True, settings=SETTINGS, language="zh")
    assert (asked.reply, asked.cause) == ("staff", "person")


def test_the_resident_is_told_when_staff_will_answer() -> None:
    settings = conversation_settings("sqlite+aiosqlite://", staff_hours="09:00-17:30")
    tuesday_morning = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
    friday_evening = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # 20:00 in Shanghai
    assert staff_answer_notice(settings, "zh", now=tuesday_morning) == (
        "这个问题我暂时答不了，已经转给工作人员，通常会在 2 小时内在这里答复您。"
    )
    assert "start on 2026-11-30 09:00" in staff_answer_notice(settings, "en", now=friday_evening)


def test_the_answering_domain_knows_nothing_of_telegram() -> None:
    source = (REPO_ROOT / "bot" / "answering" / "escalations.py").read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {
        name
        for name in imported
        if name.split(".")[0] == "telegram"
        or name.startswith("aiohttp.web")
        or name.startswith("bot.telegram")
    }


# -- the outbox row -------------------------------------------------------------------------------


async def _escalated_question(services: Services, chat_id: int = 5151) -> int:
    resident = await services.residents.touch(chat_id, chat_id)
    result = services.knowledge.matcher.match("犬只免疫证明怎么开")
    question_id = await services.questions.record(
        resident_id=resident.id, chat_id=chat_id, message_id=1, language="zh", result=result
    )
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    return opened.id


class RecordingChannel:
    """A resident channel that keeps what it was given."""

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []

    async def deliver(self, item: Delivery) -> None:
        self.delivered.append(item)


async def test_an_answer_is_written_to_the_outbox_with_the_answer_and_waits_for_a_worker(
    services: Services,
) -> None:
    escalation_id = await _escalated_question(services)
    # No bot in this process: the answer is recorded and waits in the outbox.
    outcome = await services.escalations.answer_escalation(
        escalation_id, "请不要带宠物进大厅。", "王芳", "console"
    )
    assert outcome.status == "undeliverable"
    async with services.sessions() as session:
        row = (await session.scalars(select(OutboxMessage))).one()
    assert (row.channel, row.status, row.ticket_id, row.event_id) == (
        "resident",
        "pending",
        None,
        None,
    )
    assert row.claim_token is None
    assert row.idempotency_key == f"escalation:{escalation_id}:answer"
    assert row.payload["kind"] == ESCALATION_ANSWER
    assert (row.payload["question"], row.payload["answer"]) == (
        "犬只免疫证明怎么开",
        "请不要带宠物进大厅。",
    )

    channel = RecordingChannel()
    worker = DeliveryWorker(services.tickets, {"resident": channel})
    assert await worker.run_until_idle() == 1
    assert [item.payload["answer"] for item in channel.delivered] == ["请不要带宠物进大厅。"]
    async with services.sessions() as session:
        assert (await session.get(OutboxMessage, row.id)).status == "sent"  # type: ignore[union-attr]
    # A second answer is refused and adds nothing to the outbox.
    again = await services.escalations.answer_escalation(
        escalation_id, "可以。", "张伟", "console"
    )
    assert again.status == "already_answered"
    async with services.sessions() as session:
        assert len((await session.scalars(select(OutboxMessage))).all()) == 1


async def test_an_answer_that_finally_fails_is_logged_and_alerts_no_ticket(
    services: Services,
) -> None:
    escalation_id = await _escalated_question(services)
    await services.escalations.answer_escalation(
        escalation_id, "请不要带宠物进大厅。", "王芳", "console"
    )

    class Broken:
        async def deliver(self, item: Delivery) -> None:
            from bot.tickets.delivery import DeliveryFailed

            raise DeliveryFailed("Telegram: chat is gone", permanent=True)

    worker = DeliveryWorker(services.tickets, {"resident": Broken()})
    assert await worker.run_until_idle() == 1
    async with services.sessions() as session:
        row = (await session.scalars(select(OutboxMessage))).one()
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "Telegram: chat is gone")


def test_an_answer_is_rendered_as_the_resident_reads_it() -> None:
    row = escalation_answer_message(
        escalation_id=3,
        resident_id=4,
        language="en",
        question="<b>问</b>" * 200,
        answer="Yes & no\n<script>",
        now=utcnow(),
    )
    (message,) = answer_messages(row.payload)
    assert message.startswith("👩\u200d💼 <b>Answer from a member of staff</b>\nYou asked: <i>")
    assert "&lt;b&gt;问&lt;/b&gt;" in message
    assert message.endswith("</i>\n\nYes &amp; no\n&lt;script&gt;")
    long = answer_messages({**row.payload, "answer": "答" * 3000 + "\n" + "复" * 3000})
    assert len(long) == 2


# -- end to end: staff answer, the outbox delivers ------------------------------------------------


async def _outbox(bot: BotHarness) -> list[OutboxMessage]:
    async with bot.services.sessions() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def test_a_staff_answer_reaches_the_resident_through_the_outbox(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    replies = await bot.staff_room().reply(
        bot.latest_staff_post(), "请不要带宠物进大厅。", expect=3
    )
    assert replies.text == "✅ 答复已发送给居民。"
    assert replies.elsewhere[0].text.endswith("请不要带宠物进大厅。")
    (row,) = await _outbox(bot)
    assert (row.channel, row.status, row.attempts, row.ticket_id) == ("resident", "sent", 1, None)
    assert row.payload["resident_id"] is not None


async def test_a_failed_first_send_is_retried_by_the_outbox(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    send_message = local_methods.METHODS["sendmessage"]
    refused: list[str] = []

    async def down_once(world: Any, params: Any) -> Any:
        if params.text("chat_id") == str(chat.chat.id) and not refused:
            refused.append(params.text("text"))
            raise ApiError(502, "Bad Gateway")
        return await send_message(world, params)

    monkeypatch.setitem(local_methods.METHODS, "sendmessage", down_once)
    staff = bot.api.group_chat(bot.staff_group, bot.staff, raise_on_refused=False)
    post = bot.latest_staff_post()
    replies = await staff.reply(post, "请不要带宠物进大厅。", expect=3)
    assert replies.text == "⏳ 答复已记录，暂时没能发给居民，系统会自动重试。"
    assert [call.status for call in replies.refused] == [502]
    assert not [m for m in chat.bot_messages if "工作人员答复" in m.text]
    assert "✅ 已由 王芳 答复" in post.text
    (row,) = await _outbox(bot)
    assert (row.status, row.attempts, row.claim_token) == ("pending", 1, None)
    assert row.next_attempt_at > utcnow()

    # The delivery worker of a running bot takes it up once it is due.
    tickets = bot.services.tickets
    worker = DeliveryWorker(
        tickets,
        {"resident": TelegramChannel(tickets, bot.app.bot)},
        clock=lambda: utcnow() + dt.timedelta(minutes=1),
    )
    assert await worker.run_until_idle() == 1
    assert chat.last_bot_message is not None
    assert (
        chat.last_bot_message.text
        == "👩\u200d💼 工作人员答复\n您的问题：犬只免疫证明怎么开\n\n请不要带宠物进大厅。"
    )
    (row,) = await _outbox(bot)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_resident_who_blocked_the_bot_is_dropped_from_the_outbox(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    bot.api.block_bot(chat.user)
    staff = bot.api.group_chat(bot.staff_group, bot.staff, raise_on_refused=False)
    replies = await staff.reply(bot.latest_staff_post(), "不可以。", expect=3)
    assert replies.text == "⚠️ 答复已记录，但没能发给居民（对方可能已停用机器人）。"
    (row,) = await _outbox(bot)
    assert (row.status, row.attempts) == ("dropped", 1)
    async with bot.services.sessions() as session:
        resident = await session.get(Resident, row.payload["resident_id"])
    assert resident is not None
    assert resident.blocked_bot


# -- the migration --------------------------------------------------------------------------------


async def _nullable(engine: AsyncEngine) -> dict[str, bool]:
    async with engine.connect() as connection:
        columns = await connection.run_sync(lambda c: inspect(c).get_columns("outbox"))
    return {c["name"]: c["nullable"] for c in columns if c["name"] in ("ticket_id", "event_id")}


async def test_the_outbox_migration_goes_down_and_up_again(engine: AsyncEngine) -> None:
    assert await _nullable(engine) == {"ticket_id": True, "event_id": True}
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add(
            escalation_answer_message(
                escalation_id=1,
                resident_id=1,
                language="zh",
                question="犬只免疫证明怎么开",
                answer="不可以。",
                now=utcnow(),
            )
        )
        await session.commit()
    await downgrade_database(engine, "0004_console")
    assert await _nullable(engine) == {"ticket_id": False, "event_id": False}
    await upgrade_database(engine)
    assert await _nullable(engine) == {"ticket_id": True, "event_id": True}
    async with sessions() as session:
        # Rows that belong to no ticket cannot live in the older schema: they went.
        assert (await session.scalars(select(OutboxMessage))).all() == []
