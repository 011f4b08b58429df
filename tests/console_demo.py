"""Demo work for the console: two years of tickets, live tickets with timelines, escalated and
unanswered questions. Used by the screenshots script and the browser tests of the figures.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import insert

from benchmarks.console_data import ticket_rows
from bot.core.models import Question, Ticket, utcnow
from bot.services import Services
from bot.tickets.desk import Actor, TicketDesk
from tests.fixtures_console import URBAN, add_escalation, add_resident, complaint

UNANSWERED = (
    ("公积金怎么提取出来", 6),
    ("提取公积金需要带什么材料", 4),
    ("公积金提取要什么材料", 3),
    ("小区里的流浪猫谁来管", 5),
    ("流浪猫很多找哪个部门", 2),
    ("游泳馆几点开门", 3),
    ("市图书馆周一开放吗", 2),
    ("Where can I renew my residence permit?", 2),
    ("养老院怎么申请入住", 2),
)


async def add_history(services: Services, count: int, *, first_id: int = 100_000) -> None:
    """Bulk-insert `count` finished tickets spread over the last two years."""
    rows = []
    for row in ticket_rows(count, now=utcnow()):
        row["id"] += first_id
        row["number"] = f"TS-{row['created_at'].year}-{row['id']:06d}"
        rows.append(row)
    defaults = {
        "share_identity": False,
        "anonymous": False,
        "routing_confidence": 0.9,
        "extended": False,
        "overdue": False,
        "ack_overdue": False,
        "awaiting_resident": False,
        "supervised": False,
        "supporters": 0,
    }
    async with services.sessions() as session, session.begin():
        for start in range(0, len(rows), 500):
            await session.execute(
                insert(Ticket), [defaults | row for row in rows[start : start + 500]]
            )


async def add_questions(services: Services, resident_id: int) -> None:
    """Store questions the bot could not answer, several wordings of each, over the last weeks."""
    rng = random.Random(7)
    now = utcnow()
    async with services.sessions() as session, session.begin():
        for text, times in UNANSWERED:
            for _ in range(times):
                session.add(
                    Question(
                        resident_id=resident_id,
                        chat_id=resident_id,
                        text=text,
                        normalized=text.lower(),
                        language="en" if text.isascii() else "zh",
                        decision="escalate",
                        reason="no_match",
                        created_at=now
                        - dt.timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 23)),
                    )
                )


async def add_demo_work(
    services: Services, desk: TicketDesk, *, history: int = 4000
) -> dict[str, str]:
    """Fill the console with work to look at; return the numbers of the live tickets by role."""
    await add_history(services, history)
    resident = await add_resident(services, 990001, "韩梅梅")
    await add_questions(services, resident)
    officer = Actor.department(URBAN, "officer", "城管李科长")
    live = {}
    live["replied"] = (await desk.file(complaint(resident))).number
    await desk.acknowledge(live["replied"], officer)
    await desk.ask_resident(live["replied"], officer, "请问垃圾堆放的具体位置在东门哪一侧？")
    await desk.reply(live["replied"], officer, "已安排环卫队今日清运，并在东门增设垃圾桶。")
    live["waiting"] = (
        await desk.file(
            complaint(
                resident,
                description="人民路夜间施工噪音扰民，晚上十一点以后还在打桩，严重影响休息。",
            )
        )
    ).number
    live["acknowledged"] = (
        await desk.file(
            complaint(
                resident,
                description="滨江花园门口共享单车乱停乱放，盲道被占用。",
                share_identity=False,
            )
        )
    ).number
    await desk.acknowledge(live["acknowledged"], officer)
    live["triage"] = (
        await desk.file(
            complaint(
                resident, category="其他", description="不知道该找哪个部门：楼上漏水到我家。"
            )
        )
    ).number
    for question in (
        "犬只免疫证明怎么开",
        "我家的狗走丢了能帮忙找吗",
        "犬只免疫证明怎么开",
    ):
        await add_escalation(services, resident, question)
    return live
