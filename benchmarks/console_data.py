"""Bulk tickets for the console benchmark: a million plausible tickets in a few minutes.

Rows are made in Python from a seeded random generator and loaded with COPY (PostgreSQL) or
executemany in batches inside one transaction (SQLite), into a database of their own.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bot.answering.knowledge_base import load_knowledge_base
from bot.core.models import Ticket

REPO_ROOT = Path(__file__).resolve().parent.parent
BATCH = 20_000

TYPES = (("complaint", 45), ("report", 10), ("suggestion", 15), ("help", 20), ("disclosure", 10))
PLACES = (
    "幸福小区",
    "人民路",
    "中山路与长江路交叉口",
    "滨江花园",
    "城东菜市场",
    "第二实验小学门口",
    "高新区创业大厦",
    "老城区胡同",
    "火车站广场",
    "市民公园",
    "和平里社区",
    "光明街道",
)
PROBLEMS = (
    "夜间施工噪音扰民，严重影响休息",
    "垃圾清运不及时，气味很大",
    "路灯损坏多日无人维修",
    "占道经营，行人无法通行",
    "违章停车堵住消防通道",
    "公交站台广告牌松动有安全隐患",
    "小区供暖温度不达标",
    "自来水浑浊发黄",
    "井盖缺失，晚上很危险",
    "餐馆油烟直排居民楼",
    "共享单车乱停乱放",
    "公司拖欠工资三个月",
    "社保缴费记录缺失",
    "申请公开本区旧城改造补偿标准",
    "建议增加社区养老服务点",
    "希望延长政务大厅周末办理时间",
    "下水道堵塞污水外溢",
    "广场舞音响声音过大",
)
DETAILS = (
    "已经反映过多次没有结果。",
    "请有关部门尽快处理。",
    "附近老人孩子很多，希望重视。",
    "时间从上个月开始一直持续。",
    "物业说不归他们管。",
    "打过热线电话但没有回音。",
    "",
)
OUTCOMES = ("disclosed", "partly_disclosed", "not_disclosed", "not_held", "not_ours", "withdrawn")


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def ticket_rows(count: int, *, now: dt.datetime, seed: int = 20261126) -> Iterator[dict[str, Any]]:
    """Yield `count` ticket rows spread over the two years before `now`, oldest first."""
    rng = random.Random(seed)
    kb = load_knowledge_base(REPO_ROOT / "knowledge")
    routes = [
        (department.id, category)
        for department in kb.departments.values()
        for category in department.complaint_categories
    ]
    span = dt.timedelta(days=730).total_seconds()
    start = now - dt.timedelta(days=730)
    for index in range(count):
        created = start + dt.timedelta(seconds=span * index / count + rng.random())
        kind = _weighted(rng, TYPES)
        department, category = rng.choice(routes)
        description = f"{rng.choice(PLACES)}{rng.choice(PROBLEMS)}，{rng.choice(DETAILS)}"
        roll = rng.random()
        row: dict[str, Any] = {
            "id": index + 1,
            "number": f"TS-{created.year}-{index + 1:06d}",
            "type": kind,
            "category": category,
            "department_id": department,
            "status": "closed",
            "language": "zh" if rng.random() < 0.95 else "en",
            "description": description,
            "created_at": created,
            "updated_at": created,
        }
        age = (now - created).days
        if roll < 0.02:
            row.update(status="received", department_id=None)
        elif roll < 0.035:
            row.update(status="rejected")
        else:
            assigned = created + dt.timedelta(minutes=rng.randint(1, 600))
            reply_days = 20 if kind == "disclosure" else 15
            row.update(
                status="assigned",
                assigned_at=assigned,
                ack_deadline=assigned + dt.timedelta(days=1),
                reply_deadline=assigned + dt.timedelta(days=reply_days),
            )
            if roll < 0.05:
                row["status"] = "returned"
            elif age > 1 or rng.random() < 0.5:
                acknowledged = assigned + dt.timedelta(hours=rng.choice((1, 3, 8, 20, 30, 50)))
                row.update(status="acknowledged", acknowledged_at=acknowledged)
                row["ack_overdue"] = acknowledged > row["ack_deadline"]
                if age > 20 or rng.random() < 0.4:
                    wait = rng.choices((1, 3, 7, 12, 18, 25), weights=(20, 30, 25, 15, 6, 4))[0]
                    replied = acknowledged + dt.timedelta(days=wait)
                    overdue = replied > row["reply_deadline"]
                    row.update(status="replied", replied_at=replied, overdue=overdue)
                    if kind == "disclosure":
                        row["outcome"] = rng.choice(OUTCOMES)
                        row["extended"] = rng.random() < 0.1
                    if rng.random() < 0.6:
                        rating = rng.choices((5, 4, 3, 2, 1), weights=(50, 25, 10, 7, 8))[0]
                        row.update(
                            rating=rating,
                            rated_at=replied + dt.timedelta(days=1),
                            solved=rating >= 3,
                        )
                    if age > 30:
                        row.update(status="closed", closed_at=replied + dt.timedelta(days=7))
            if row["status"] in ("assigned", "acknowledged", "returned") and (
                row["reply_deadline"] < now
            ):
                row["overdue"] = True
        yield row


def _columns() -> list[str]:
    return [column.name for column in Ticket.__table__.columns]


def _defaults() -> dict[str, Any]:
    return {
        "status": "received",
        "language": "zh",
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


def _naive(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # The format SQLAlchemy writes, so that string comparison orders times.
        return _naive(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


async def load_postgresql(dsn: str, count: int, now: dt.datetime) -> None:
    """COPY `count` tickets into an empty, migrated PostgreSQL database, then ANALYZE."""
    columns = _columns()
    defaults = _defaults()
    connection = await asyncpg.connect(dsn)
    try:
        # Building the indexes once after loading is many times faster than keeping them up.
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'tickets' AND indexname NOT IN ('pk_tickets', 'uq_tickets_number')"
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        batch: list[tuple[Any, ...]] = []
        for row in ticket_rows(count, now=now):
            full = defaults | row
            batch.append(tuple(_naive(full.get(name)) for name in columns))
            if len(batch) >= BATCH:
                await connection.copy_records_to_table("tickets", records=batch, columns=columns)
                batch.clear()
        if batch:
            await connection.copy_records_to_table("tickets", records=batch, columns=columns)
        await connection.execute("SET maintenance_work_mem = '512MB'")
        for index in indexes:
            await connection.execute(index["indexdef"])
        # What autovacuum does in production: statistics, and the visibility map that lets the
        # figures read their indexes without visiting the table.
        await connection.execute("VACUUM (ANALYZE) tickets")
    finally:
        await connection.close()


def load_sqlite(path: Path, count: int, now: dt.datetime) -> None:
    """Insert `count` tickets into an empty, migrated SQLite file, then ANALYZE."""
    columns = _columns()
    defaults = _defaults()
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO tickets ({', '.join(columns)}) VALUES ({placeholders})"
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' "
            "AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        batch: list[tuple[Any, ...]] = []
        with connection:
            for row in ticket_rows(count, now=now):
                full = defaults | row
                batch.append(tuple(_sqlite_value(full.get(name)) for name in columns))
                if len(batch) >= BATCH:
                    connection.executemany(statement, batch)
                    batch.clear()
            if batch:
                connection.executemany(statement, batch)
            for _, sql in indexes:
                connection.execute(sql)
        connection.execute("ANALYZE")
    finally:
        connection.close()
