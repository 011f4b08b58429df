"""The tamper-evident chains over the audit log and the ticket events (bot/core/audit_chain.py),
on SQLite and PostgreSQL: rows changed, added or removed by SQL past the application are found,
two engines appending at once keep one chain, the migration hashes rows already there as the
application would, and a ticket's proof downloaded from the console checks out.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import audit_chain
from bot.core.audit import record_audit
from bot.core.audit_chain import AUDIT, EVENTS, ChainError, check_proof, verify_all, verify_chain
from bot.core.db import create_engine, downgrade_database, session_factory, upgrade_database
from bot.core.models import AuditEntry, TicketEvent, utcnow
from bot.tickets.desk import Actor, TicketDesk
from tests.fixtures_console import Console, LoginAs, SampleWork
from tests.fixtures_tickets import REPO_ROOT, add_resident, draft

Sessions = async_sessionmaker[AsyncSession]


async def run_bot(*arguments: str, database_url: str) -> tuple[int, str, str]:
    """Run `python -m bot ...` in a process of its own; return its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *arguments,
        cwd=REPO_ROOT,
        env=os.environ | {"DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def some_work(desk: TicketDesk, sessions: Sessions) -> list[str]:
    """File two tickets (one acknowledged) and write four audit rows with awkward content."""
    resident = await add_resident(sessions, 770001)
    first = await desk.file(draft(resident))
    second = await desk.file(draft(resident, description="路灯不亮 💡 <b>三天</b> **了**"))
    await desk.acknowledge(first.id, Actor.department("urban-management", "7", "李科长"))
    details: list[dict[str, Any]] = [
        {"fields": ["name", "phone"]},
        {"nested": {"b": [1, 2.5, None], "a": "中文 ✓"}, "1": True},
        {},
        {"quote": "\"'<>&", "emoji": "👩‍👩‍👧"},
    ]
    for number, detail in enumerate(details):
        async with sessions() as session:
            await record_audit(
                session,
                user_id=None,
                action="ticket.view_personal_data",
                target_type="ticket",
                target_id=first.number,
                detail=detail,
                ip=f"10.0.0.{number}",
            )
            await session.commit()
    return [first.number, second.number]


async def report_of(sessions: Sessions, chain: str) -> audit_chain.ChainReport:
    async with sessions() as session:
        return await verify_chain(session, chain)


async def ids_of(sessions: Sessions, model: type[AuditEntry] | type[TicketEvent]) -> list[int]:
    async with sessions() as session:
        return list(await session.scalars(select(model.id).order_by(model.chain_seq)))


async def sql(engine: AsyncEngine, statement: str, **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(statement), values)


async def test_appends_make_two_chains_that_verify(desk: TicketDesk, sessions: Sessions) -> None:
    await some_work(desk, sessions)
    async with sessions() as session:
        reports = await verify_all(session)
        heads = await audit_chain.heads(session)
        events = await session.scalar(select(func.count()).select_from(TicketEvent))
        seqs = list(await session.scalars(select(AuditEntry.chain_seq).order_by(AuditEntry.id)))
    assert [r.problem for r in reports] == [None, None]
    audit, timeline = reports
    assert (audit.count, timeline.count) == (4, events)
    assert seqs == [1, 2, 3, 4]
    assert heads == {AUDIT: (4, audit.head_hash), EVENTS: (events, timeline.head_hash)}
    assert audit.head_hash != timeline.head_hash


async def test_a_row_edited_in_the_database_is_reported(
    desk: TicketDesk, sessions: Sessions, engine: AsyncEngine, database_url: str
) -> None:
    await some_work(desk, sessions)
    code, out, _ = await run_bot("audit", "verify", database_url=database_url)
    assert (code, out.startswith("OK audit_log: 4 rows, head 4:")) == (0, True), out
    events = await ids_of(sessions, TicketEvent)
    await sql(
        engine, "UPDATE ticket_events SET body = 'nothing happened' WHERE id = :id", id=events[1]
    )
    report = await report_of(sessions, EVENTS)
    assert report.problem == (
        f"row id {events[1]} (seq 2) edited: its content does not match its hash"
    )
    audits = await ids_of(sessions, AuditEntry)
    await sql(engine, "UPDATE audit_log SET ip = '6.6.6.6' WHERE id = :id", id=audits[2])
    code, out, _ = await run_bot("audit", "verify", database_url=database_url)
    assert code == 1
    assert out == (
        f"TAMPERED audit_log: row id {audits[2]} (seq 3) edited: its content does not match "
        "its hash\n"
    )


async def test_an_edit_with_the_hash_recomputed_breaks_the_next_link(
    desk: TicketDesk, sessions: Sessions, engine: AsyncEngine
) -> None:
    await some_work(desk, sessions)
    audits = await ids_of(sessions, AuditEntry)
    async with sessions() as session:
        row = await session.get_one(AuditEntry, audits[1])
        values = {name: getattr(row, name) for name in audit_chain.FIELDS[AUDIT]}
    values["ip"] = "6.6.6.6"
    forged = audit_chain.sha256(audit_chain.canonical(AUDIT, 2, values))
    await sql(
        engine,
        "UPDATE audit_log SET ip = '6.6.6.6', content_hash = :h WHERE id = :id",
        h=forged,
        id=audits[1],
    )
    report = await report_of(sessions, AUDIT)
    assert report.problem is not None
    assert report.problem.startswith(f"row id {audits[1]} (seq 2) does not follow seq 1")


async def test_rows_inserted_in_the_database_are_reported(
    desk: TicketDesk, sessions: Sessions, engine: AsyncEngine
) -> None:
    await some_work(desk, sessions)
    await sql(
        engine,
        "INSERT INTO audit_log (user_id, action, target_type, target_id, detail, ip, created_at) "
        "VALUES (NULL, 'login', '', '', '{}', '', :at)",
        at=utcnow().replace(tzinfo=None),
    )
    added = max(await ids_of(sessions, AuditEntry))
    report = await report_of(sessions, AUDIT)
    assert report.problem == f"row id {added} is not in the chain: inserted past the application"
    await sql(engine, "DELETE FROM audit_log WHERE id = :id", id=added)
    assert (await report_of(sessions, AUDIT)).ok
    # A row with a well-made link after the head, the head left alone.
    report = await report_of(sessions, AUDIT)
    values = {
        "user_id": None,
        "action": "login",
        "target_type": "",
        "target_id": "",
        "detail": {},
        "ip": "",
        "created_at": utcnow(),
    }
    link = audit_chain.next_link(AUDIT, 5, report.head_hash, values)
    await sql(
        engine,
        "INSERT INTO audit_log (user_id, action, target_type, target_id, detail, ip, created_at, "
        "chain_seq, content_hash, chain_hash) VALUES (NULL, 'login', '', '', '{}', '', :at, 5, "
        ":c, :h)",
        at=values["created_at"].replace(tzinfo=None),
        c=link.content_hash,
        h=link.chain_hash,
    )
    assert (await report_of(sessions, AUDIT)).problem == (
        "seq 5 past the chain head: rows inserted"
    )


async def test_rows_deleted_in_the_database_are_reported(
    desk: TicketDesk, sessions: Sessions, engine: AsyncEngine, database_url: str
) -> None:
    await some_work(desk, sessions)
    audits = await ids_of(sessions, AuditEntry)
    await sql(engine, "DELETE FROM audit_log WHERE id = :id", id=audits[1])
    deleted = f"seq 2 missing before row id {audits[2]} (seq 3): rows deleted"
    assert (await report_of(sessions, AUDIT)).problem == deleted
    code, out, _ = await run_bot("audit", "verify", database_url=database_url)
    assert (code, out) == (1, f"TAMPERED audit_log: {deleted}\n")
    events = await ids_of(sessions, TicketEvent)
    for event_id in events[-2:]:
        await sql(engine, "DELETE FROM outbox WHERE event_id = :id", id=event_id)
        await sql(engine, "DELETE FROM ticket_events WHERE id = :id", id=event_id)
    count = len(events)
    assert (await report_of(sessions, EVENTS)).problem == (
        f"seq {count - 1}..{count} missing at the end: rows deleted"
    )


async def test_two_engines_appending_at_once_keep_one_chain(
    desk: TicketDesk, sessions: Sessions, database_url: str
) -> None:
    ticket = await desk.file(draft(await add_resident(sessions, 770002)))
    engines = [create_engine(database_url), create_engine(database_url)]
    factories = [session_factory(e) for e in engines]
    rounds = 25

    async def append(factory: Sessions, n: int) -> None:
        async with factory() as session:
            session.add(
                TicketEvent(ticket_id=ticket.id, kind="note", actor_type="system", body=f"{n}")
            )
            await record_audit(session, user_id=None, action="test.append", target_id=str(n))
            await session.commit()

    try:
        await asyncio.gather(
            *(append(factories[n % 2], n) for n in range(2 * rounds)),
        )
    finally:
        for engine in engines:
            await engine.dispose()
    async with sessions() as session:
        audit, timeline = await verify_all(session)
        events = await session.scalar(select(func.count()).select_from(TicketEvent))
        bodies = set(
            await session.scalars(select(TicketEvent.body).where(TicketEvent.kind == "note"))
        )
    assert (audit.problem, timeline.problem) == (None, None)
    assert (audit.count, timeline.count) == (2 * rounds, events)
    assert bodies == {str(n) for n in range(2 * rounds)}


async def test_the_migration_hashes_rows_already_there_as_the_application_does(
    desk: TicketDesk, sessions: Sessions, engine: AsyncEngine
) -> None:
    await some_work(desk, sessions)
    async with sessions() as session:
        before = await audit_chain.heads(session)
    await downgrade_database(engine, "0009_privacy")  # the revision before the chain
    await upgrade_database(engine)
    async with sessions() as session:
        reports = await verify_all(session)
        after = await audit_chain.heads(session)
    assert [r.problem for r in reports] == [None, None]
    assert after == before
    assert after[AUDIT][0] == 4


async def test_the_monthly_report_prints_the_chain_heads(
    desk: TicketDesk, sessions: Sessions, database_url: str
) -> None:
    await some_work(desk, sessions)
    async with sessions() as session:
        heads = await audit_chain.heads(session)
    code, out, _ = await run_bot("report", "--month", "2026-11", database_url=database_url)
    assert code == 0
    for chain, (seq, hash_) in heads.items():
        assert f"  {chain} {seq}:{hash_}\n" in out + "\n"
    code, out, _ = await run_bot(
        "report", "--month", "2026-11", "--json", database_url=database_url
    )
    assert json.loads(out)["audit_chain_heads"][EVENTS] == {
        "seq": heads[EVENTS][0],
        "hash": heads[EVENTS][1],
    }


# -- a ticket's proof ---------------------------------------------------------------------------


async def test_a_ticket_proof_from_the_console_checks_out_and_edits_to_it_do_not(
    console: Console, work: SampleWork, login_as: LoginAs, tmp_path: Path, database_url: str
) -> None:
    services = console.services
    async with services.sessions() as session:
        published = (await audit_chain.heads(session))[EVENTS]
    # Events of other tickets after the urban ticket's: the proof links over them.
    await console.desk.acknowledge(
        (await console.desk.get(work.urban)).id, Actor.department("urban-management", "1", "李")
    )
    manager = await login_as("manager")
    async with manager.http.get(f"/tickets/{work.urban}/proof.json") as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        raw = await response.read()
    proof = json.loads(raw)
    timeline = await console.desk.timeline(work.urban)
    result = check_proof(proof, [published])
    assert (result.ticket, result.events) == (work.urban, len(timeline))
    shown = [json.loads(link["canonical"]) for link in proof["links"] if "canonical" in link]
    assert [e["kind"] for e in shown] == [e.kind for e in timeline]
    assert len(proof["links"]) > len(timeline)  # other tickets' events, as hashes only
    assert all(
        set(link) == {"seq", "content_hash"} for link in proof["links"] if "hash" not in link
    )
    async with services.sessions() as session:
        verified = (await verify_all(session))[1]
        exported = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "ticket.export_proof", AuditEntry.target_id == work.urban)
        )
    assert (proof["head"]["seq"], proof["head"]["hash"]) == (verified.head_seq, verified.head_hash)
    assert exported == 1
    # Checked from the file by the command line, with the head the monthly report printed.
    path = tmp_path / "proof.json"
    path.write_bytes(raw)
    head = f"{published[0]}:{published[1]}"
    code, out, _ = await run_bot(
        "audit", "check-proof", str(path), "--head", head, database_url=database_url
    )
    assert code == 0, out
    assert out.startswith(f"OK {work.urban}: {len(timeline)} events chained up to")
    # A changed event, even with its content hash recomputed, does not check out.
    own = next(link for link in proof["links"] if "canonical" in link)
    own["canonical"] = own["canonical"].replace('"kind":"', '"kind":"x')
    with pytest.raises(ChainError, match="does not match its content hash"):
        check_proof(proof)
    own["content_hash"] = audit_chain.sha256(own["canonical"])
    with pytest.raises(ChainError, match="does not follow"):
        check_proof(proof)
    path.write_text(json.dumps(proof), encoding="utf-8")
    code, out, _ = await run_bot("audit", "check-proof", str(path), database_url=database_url)
    assert (code, out.startswith("PROOF FAILS:")) == (1, True)
    # Another department's officer gets the ticket page's 404.
    other = await login_as("other_officer")
    async with other.http.get(f"/tickets/{work.urban}/proof.json") as response:
        assert response.status == 404


async def test_the_command_line_exports_the_same_proof(
    desk: TicketDesk, sessions: Sessions, database_url: str, tmp_path: Path
) -> None:
    numbers = await some_work(desk, sessions)
    path = tmp_path / "p.json"
    code, _, _ = await run_bot(
        "audit", "ticket", numbers[0].lower(), "-o", str(path), database_url=database_url
    )
    assert code == 0
    proof = json.loads(path.read_text(encoding="utf-8"))
    timeline = await desk.timeline(numbers[0])
    result = check_proof(proof)
    assert (result.ticket, result.events) == (numbers[0], len(timeline))
    code, _, error = await run_bot("audit", "ticket", "TS-2099-000001", database_url=database_url)
    assert (code, error) == (2, "no ticket TS-2099-000001\n")
