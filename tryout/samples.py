"""Sample tickets for the try-out, so the console's figures and charts have something to show.

    python -m tryout.samples add       # a few hundred made-up tickets over the past six months
    python -m tryout.samples remove    # every sample ticket and its timeline, nothing else

(`make samples` and `make samples-remove` run the same.) The tickets are made up: every one is
marked `sample` in the database (the console labels it and shows a banner while any exist, the
ticket clock leaves it alone), its number starts with SAMPLE-, and its text with 【示例】. They
have all five types, every status, on-time and late acknowledgements and replies, overdue open
tickets, disclosure outcomes, ratings and comments, spread over the departments the knowledge
base routes to. No message is sent for them: no outbox row is written.

Only the try-out's database is touched: the command refuses to run when TELEGRAM_BOT_TOKEN is set
(a real deployment), and otherwise opens the database the try-out uses (data/tryout.sqlite3
unless DATABASE_URL or [database] url say otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings, load_settings
from bot.core.models import (
    OutboxMessage,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketSupporter,
    utcnow,
)
from bot.core.vocabulary import DisclosureOutcome, EventKind, TicketStatus, TicketType
from bot.services import Services, open_services
from bot.tickets.routing import route_ticket

SAMPLE_PREFIX = "SAMPLE-"
SAMPLE_MARK = "【示例】"
DEFAULT_COUNT = 360
DEFAULT_MONTHS = 6

# (type, category, what a resident wrote); the category routes it to its department.
_STORIES: tuple[tuple[TicketType, str, str], ...] = (
    (TicketType.COMPLAINT, "市容环境", "幸福小区东门外的垃圾堆了好几天没人清理，气味很大。"),
    (TicketType.COMPLAINT, "市容环境", "人民路夜市散场后满地垃圾，第二天中午还没人扫。"),
    (TicketType.REPORT, "占道与违建", "光明街12号一楼商户私自搭建彩钢棚，占了人行道。"),
    (TicketType.COMPLAINT, "占道与违建", "菜市场门口流动摊贩占道经营，早高峰车辆无法通行。"),
    (TicketType.REPORT, "生态环境", "河边那家化工厂夜里偷偷排污，河水发黑发臭。"),
    (TicketType.COMPLAINT, "生态环境", "工地晚上十一点以后还在施工，噪音吵得睡不着。"),
    (TicketType.COMPLAINT, "公共交通", "8路公交车早高峰经常二十分钟一班，车上非常拥挤。"),
    (TicketType.SUGGESTION, "公共交通", "建议在火车站北广场增加一个公交站台，方便换乘。"),
    (TicketType.COMPLAINT, "道路交通秩序", "学校门口接送孩子的车辆乱停，经常堵到主路。"),
    (TicketType.SUGGESTION, "道路交通秩序", "建议在滨江路和新华路路口增加左转信号灯。"),
    (TicketType.COMPLAINT, "住房与物业", "小区电梯坏了两个星期，物业一直说在等配件。"),
    (TicketType.HELP, "住房与物业", "楼顶漏水，雨天家里墙面全湿，物业不管，请帮忙协调。"),
    (TicketType.COMPLAINT, "消费维权", "健身房突然关门，预付的年卡费用没人退。"),
    (TicketType.REPORT, "食品药品安全", "学校附近一家小吃店后厨卫生很差，还有过期食材。"),
    (TicketType.COMPLAINT, "社会保险", "社保转移接续申请提交一个多月了，一直显示审核中。"),
    (TicketType.HELP, "劳动权益", "在工地干了三个月，老板拖欠工资不给，想请求帮助。"),
    (TicketType.HELP, "社会救助", "家里老人生病住院，医疗费负担很重，想了解能申请哪些救助。"),
    (TicketType.SUGGESTION, "养老服务", "建议社区老年食堂周末也开放，很多老人周末没人做饭。"),
    (TicketType.COMPLAINT, "医疗卫生", "市第二医院挂号排队时间太长，自助机经常故障。"),
    (TicketType.SUGGESTION, "教育入学", "希望幼儿园报名能在网上办理，不用家长现场排队。"),
    (TicketType.COMPLAINT, "户籍与身份证", "办理身份证换领等了四十天还没拿到，电话也打不通。"),
    (TicketType.COMPLAINT, "住房公积金", "公积金提取材料齐全，却被要求反复补交同样的证明。"),
    (TicketType.COMPLAINT, "政务服务", "政务服务中心周六只开半天，上班族很难办事。"),
    (TicketType.SUGGESTION, "政务服务", "建议政务服务中心增加晚间延时服务窗口。"),
    (TicketType.HELP, "残疾人服务", "申请残疾人两项补贴，不清楚需要准备哪些材料。"),
    (TicketType.COMPLAINT, "其他", "小区里的垃圾和油烟问题一直没人管，不知道找哪个部门。"),
    (TicketType.DISCLOSURE, "依申请公开", "申请公开2026年老旧小区改造项目的资金安排和实施名单。"),
    (TicketType.DISCLOSURE, "依申请公开", "申请公开本市2025年度城市道路养护经费的使用情况。"),
    (TicketType.DISCLOSURE, "政务公开", "申请公开滨江公园改造工程的招标文件和中标结果。"),
)
_REPLIES = (
    "已安排工作人员现场核查，问题已处理完毕，并将该处列入日常巡查。",
    "经核实，情况属实，已责令相关单位限期整改，整改结果已复查。",
    "已与相关单位协调，将在本月内完成整改，届时请您监督。",
    "已答复并告知办理途径和所需材料，如有疑问可拨打咨询电话。",
    "经调查，反映的问题不属实，已向您说明情况。",
)
_COMMENTS = ("处理得很快，谢谢！", "问题解决了，态度很好。", "还有一部分没处理好。", "等了太久。")
_RETURN_REASONS = ("该事项不属于本部门职责，请转交属地街道办理。",)
_REJECT_REASONS = ("反映内容不具体，无法核实，请补充地点和时间后重新提交。",)


@dataclass(frozen=True, slots=True)
class SampleReport:
    added: int
    removed: int


def refuse_in_production() -> None:
    """Stop when a real bot token is set: samples belong to the try-out alone."""
    if os.environ.get("TELEGRAM_BOT_TOKEN"):
        raise SystemExit(
            "TELEGRAM_BOT_TOKEN is set: sample tickets are for the local try-out only "
            "(python -m bot run without a token). Nothing was changed."
        )


def tryout_database_settings(settings: Settings) -> Settings:
    """Return the settings with the try-out's database, as tryout/runner.py chooses it."""
    database = settings.database
    if not (os.environ.get("DATABASE_URL") or database.url):
        database = database.model_copy(update={"path": database.path.with_name("tryout.sqlite3")})
    return settings.model_copy(update={"database": database})


async def count_samples(session: AsyncSession) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.sample)) or 0
    )


async def remove_samples(services: Services) -> int:
    """Delete every sample ticket with its events, attachments, supporters and deliveries."""
    async with services.sessions() as session, session.begin():
        ids = select(Ticket.id).where(Ticket.sample).scalar_subquery()
        removed = await count_samples(session)
        for table in (OutboxMessage, TicketSupporter, TicketAttachment, TicketEvent):
            await session.execute(delete(table).where(table.ticket_id.in_(ids)))
        await session.execute(delete(Ticket).where(Ticket.sample))
    return removed


def _pick_status(rng: random.Random, age_days: float, routed: bool) -> str:
    """Return a plausible status for a ticket this old (older ones are mostly finished)."""
    if not routed:
        return rng.choices(
            [TicketStatus.RECEIVED, TicketStatus.REJECTED, TicketStatus.CLOSED], [5, 2, 3]
        )[0]
    if age_days > 30:
        weights = {"closed": 80, "replied": 5, "rejected": 3, "returned": 2, "acknowledged": 6,
                   "assigned": 4}  # fmt: skip
    elif age_days > 7:
        weights = {"closed": 45, "replied": 20, "acknowledged": 20, "assigned": 8,
                   "returned": 4, "rejected": 3}  # fmt: skip
    else:
        weights = {"closed": 10, "replied": 15, "acknowledged": 30, "assigned": 35,
                   "returned": 5, "rejected": 5}  # fmt: skip
    return rng.choices(list(weights), list(weights.values()))[0]


async def add_samples(
    services: Services,
    *,
    count: int = DEFAULT_COUNT,
    months: int = DEFAULT_MONTHS,
    seed: int = 2026,
    now: dt.datetime | None = None,
) -> int:
    """Add `count` sample tickets created over the past `months` months; return how many."""
    rng = random.Random(seed)  # the same samples every time: reproducible figures
    desk = services.tickets
    kb = desk.knowledge()
    settings = services.settings.tickets
    categories = set(desk.categories())
    stories = [story for story in _STORIES if story[1] in categories]
    now = now or utcnow()
    span = dt.timedelta(days=30 * months)
    async with services.sessions() as session, session.begin():
        start = await count_samples(session)
        for index in range(count):
            ticket_type, category, text = rng.choice(stories)
            # More tickets in recent months, as a service that is being used more.
            created = now - span * (1 - rng.random() ** 0.7)
            created = created.replace(microsecond=0)
            routing = route_ticket(
                kb,
                category,
                text,
                min_confidence=settings.routing_min_confidence,
                generic_categories=settings.generic_categories,
            )
            department = routing.department_id
            age_days = (now - created).total_seconds() / 86400
            status = _pick_status(rng, age_days, department is not None)
            deadlines = desk.policy.deadlines(ticket_type, category, created)
            anonymous = ticket_type == TicketType.REPORT and rng.random() < 0.5
            shares = ticket_type == TicketType.DISCLOSURE or (
                not anonymous and rng.random() < 0.35
            )
            ticket = Ticket(
                number=f"{SAMPLE_PREFIX}{created.year}-{start + index + 1:05d}",
                type=ticket_type,
                category=category,
                department_id=department,
                status=TicketStatus.RECEIVED,
                resident_id=None,
                language="zh" if rng.random() < 0.9 else "en",
                description=SAMPLE_MARK + text,
                contact_name="示例居民" if shares else None,
                contact_phone="+8613800138000" if shares else None,
                share_identity=shares,
                anonymous=anonymous,
                routing_confidence=routing.confidence,
                ack_deadline=deadlines.ack,
                reply_deadline=deadlines.reply,
                supporters=rng.choice((0, 0, 0, 0, 1, 2, 5)),
                sample=True,
                created_at=created,
                updated_at=created,
            )
            session.add(ticket)
            await session.flush()
            events: list[TicketEvent] = []

            def event(
                kind: EventKind,
                at: dt.datetime,
                actor: str,
                body: str = "",
                ticket: Ticket = ticket,
                events: list[TicketEvent] = events,
                **data: object,
            ) -> None:
                events.append(
                    TicketEvent(
                        ticket_id=ticket.id,
                        kind=kind,
                        actor_type=actor,
                        actor_id="sample",
                        body=body,
                        data=dict(data),
                        created_at=min(at, now),
                    )
                )
                ticket.updated_at = min(at, now)

            event(EventKind.RECEIVED, created, "resident")
            if department is None:
                event(EventKind.TRIAGE, created, "system", reason=routing.reason)
            else:
                ticket.assigned_at = created
                event(EventKind.ASSIGNED, created, "system", department_id=department)
            await _unfold(rng, ticket, status, now, event)
            session.add_all(events)
            ticket.overdue = ticket.overdue or bool(
                ticket.reply_deadline
                and ticket.status in (TicketStatus.ASSIGNED, TicketStatus.ACKNOWLEDGED)
                and now > ticket.reply_deadline
            )
            ticket.ack_overdue = ticket.ack_overdue or bool(
                ticket.ack_deadline
                and ticket.status == TicketStatus.ASSIGNED
                and now > ticket.ack_deadline
            )
    return count


async def _unfold(
    rng: random.Random, ticket: Ticket, status: str, now: dt.datetime, event: Any
) -> None:
    """Walk a sample ticket from assignment to `status`, with plausible times."""
    created = ticket.created_at
    ack_deadline = ticket.ack_deadline or created
    reply_deadline = ticket.reply_deadline or created
    if status == TicketStatus.RECEIVED:
        return
    if status == TicketStatus.REJECTED:
        ticket.status = TicketStatus.REJECTED
        ticket.closed_at = min(created + dt.timedelta(hours=rng.uniform(2, 30)), now)
        event(EventKind.REJECTED, ticket.closed_at, "staff", rng.choice(_REJECT_REASONS))
        return
    if ticket.department_id is None:
        # Closed from triage: withdrawn by phone, as staff record it.
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = min(created + dt.timedelta(days=rng.uniform(1, 5)), now)
        event(EventKind.CLOSED, ticket.closed_at, "staff", "居民电话告知已自行解决，撤回。")
        return
    ticket.status = TicketStatus.ASSIGNED
    if status == TicketStatus.ASSIGNED:
        return
    # 签收: mostly in time, one in eight late.
    late_ack = rng.random() < 0.125
    acknowledged = (
        ack_deadline + dt.timedelta(hours=rng.uniform(2, 48))
        if late_ack
        else created + (ack_deadline - created) * rng.uniform(0.05, 0.9)
    )
    if acknowledged > now:
        return
    ticket.acknowledged_at = acknowledged
    ticket.ack_overdue = late_ack
    ticket.status = TicketStatus.ACKNOWLEDGED
    event(EventKind.ACKNOWLEDGED, acknowledged, "department")
    if status == TicketStatus.ACKNOWLEDGED:
        return
    if status == TicketStatus.RETURNED:
        returned = min(acknowledged + dt.timedelta(hours=rng.uniform(1, 24)), now)
        ticket.status = TicketStatus.RETURNED
        ticket.department_id = None
        ticket.acknowledged_at = None
        event(EventKind.RETURNED, returned, "department", rng.choice(_RETURN_REASONS))
        return
    # 答复: most in time, about one in six late.
    late_reply = rng.random() < 0.17
    replied = (
        reply_deadline + dt.timedelta(days=rng.uniform(0.5, 6))
        if late_reply
        else acknowledged + (reply_deadline - acknowledged) * rng.uniform(0.1, 0.95)
    )
    if replied > now:
        return
    ticket.replied_at = replied
    ticket.overdue = late_reply
    ticket.status = TicketStatus.REPLIED
    outcome = None
    if ticket.type == TicketType.DISCLOSURE:
        outcome = rng.choices(list(DisclosureOutcome), [45, 20, 10, 15, 5, 5])[0]
        ticket.outcome = outcome
    event(
        EventKind.REPLIED,
        replied,
        "department",
        rng.choice(_REPLIES),
        outcome=outcome,
        on_time=not late_reply,
    )
    if status == TicketStatus.REPLIED:
        return
    closed = min(replied + dt.timedelta(days=rng.uniform(0.2, 6)), now)
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = closed
    if rng.random() < 0.8:
        rating = rng.choices([5, 4, 3, 2, 1], [45, 25, 12, 8, 10])[0]
        if late_reply:
            rating = max(1, rating - 1)
        ticket.rating = rating
        ticket.solved = rating >= 3 or rng.random() < 0.2
        ticket.rated_at = closed
        event(EventKind.RATED, closed, "resident", rating=rating, solved=ticket.solved)
        if rng.random() < 0.3:
            ticket.rating_comment = _COMMENTS[0 if rating >= 4 else (2 if rating == 3 else 3)]
            event(EventKind.RATING_COMMENT, closed, "resident", ticket.rating_comment)
    event(EventKind.CLOSED, closed, "system")


async def _run(action: str, count: int, settings: Settings) -> SampleReport:
    async with open_services(tryout_database_settings(settings)) as services:
        if action == "remove":
            return SampleReport(added=0, removed=await remove_samples(services))
        return SampleReport(added=await add_samples(services, count=count), removed=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tryout.samples",
        description="Add or remove the try-out's sample tickets (never in a real deployment).",
    )
    parser.add_argument("action", choices=("add", "remove"))
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="tickets to add")
    parser.add_argument("--config", type=Path, default=Path("config.toml"))
    args = parser.parse_args(argv)
    refuse_in_production()
    if not 1 <= args.count <= 5000:
        parser.error("--count must be 1 to 5000")
    report = asyncio.run(_run(args.action, args.count, load_settings(args.config)))
    if args.action == "remove":
        print(f"removed {report.removed} sample tickets 已删除示例工单 {report.removed} 件")
    else:
        print(
            f"added {report.added} sample tickets 已添加示例工单 {report.added} 件 "
            "(python -m tryout.samples remove takes them away)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
