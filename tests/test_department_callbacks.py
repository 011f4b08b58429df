"""A department's system posts status changes over HTTP on 127.0.0.1: signed ones are applied;
forged, replayed, stale and malformed ones are refused with a 4xx and logged; a body is read
whole however it arrives (in pieces, chunked).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import OutboxMessage
from bot.tickets.desk import Actor, FiledTicket, TicketDesk
from bot.tickets.signatures import signed_headers
from tests.fixtures_tickets import WEBHOOK_SECRET, add_resident, draft

PATH = "/api/departments/ecology-environment/callback"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def pollution(desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]) -> FiledTicket:
    resident = await add_resident(sessions, 4001)
    return await desk.file(
        draft(resident, category="生态环境", description="河边工厂夜里排污，河道发黑有臭味。")
    )


def signed(
    fields: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"nonce": secrets.token_hex(16)} | fields, ensure_ascii=False).encode()
    headers = signed_headers(secret.encode(), int(at or time.time()), body)
    return body, headers | {"Content-Type": "application/json"}


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_a_signed_acknowledgement_then_reply_move_the_ticket_and_tell_the_resident(
    desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    callback_url: str,
    pollution: FiledTicket,
) -> None:
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed({"ticket": pollution.number, "action": "acknowledge", "officer": "李科员"}),
    )
    assert (status, answer) == (
        200,
        {"ok": True, "ticket": pollution.number, "status": "acknowledged"},
    )
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed(
            {"ticket": pollution.number, "action": "reply", "text": "已立案调查，责令停产整改。"}
        ),
    )
    assert answer["status"] == "replied"
    timeline = await desk.timeline(pollution.number)
    acknowledged = next(e for e in timeline if e.kind == "acknowledged")
    assert (acknowledged.actor_type, acknowledged.data["actor_name"]) == ("department", "李科员")
    async with sessions() as session:
        notices = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.channel == "resident")
                )
            )
            .scalars()
            .all()
        )
    assert [n.payload["event"]["kind"] for n in notices] == ["acknowledged", "replied"]


async def test_a_forged_signature_is_refused_logged_and_changes_nothing(
    desk: TicketDesk,
    http: aiohttp.ClientSession,
    callback_url: str,
    pollution: FiledTicket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.api.callbacks"):
        status, answer = await post(
            http,
            callback_url + PATH,
            *signed({"ticket": pollution.number, "action": "acknowledge"}, secret="guessed"),
        )
    assert (status, answer["error"]) == (401, "the signature does not match")
    assert "refused (401" in caplog.text
    assert (await desk.get(pollution.number)).status == "assigned"


async def test_a_replayed_callback_is_refused(
    http: aiohttp.ClientSession, callback_url: str, pollution: FiledTicket
) -> None:
    body, headers = signed({"ticket": pollution.number, "action": "acknowledge"})
    assert (await post(http, callback_url + PATH, body, headers))[0] == 200
    status, answer = await post(http, callback_url + PATH, body, headers)
    assert (status, answer["error"]) == (409, "nonce already used (replay)")


async def test_a_stale_or_unsigned_callback_is_refused(
    http: aiohttp.ClientSession, callback_url: str, pollution: FiledTicket
) -> None:
    body, headers = signed(
        {"ticket": pollution.number, "action": "acknowledge"}, at=time.time() - 3600
    )
    assert await post(http, callback_url + PATH, body, headers) == (
        401,
        {"ok": False, "error": "X-Timestamp is outside the accepted window"},
    )
    status, _ = await post(http, callback_url + PATH, body, {"Content-Type": "application/json"})
    assert status == 401


MALFORMED = [
    (b"not json at all", "the body is not JSON"),
    (b"\xff\xfe", "the body is not JSON"),
    (
        json.dumps({"ticket": "TS-2026-000001", "action": "acknowledge"}).encode(),
        "invalid fields: nonce",
    ),
    (
        json.dumps({"nonce": "n" * 20, "ticket": "TS-2026-000001", "action": "delete"}).encode(),
        "invalid fields: action",
    ),
    (
        json.dumps(
            {"nonce": "n" * 20, "ticket": "TS-2026-000001", "action": "extend", "days": "20"}
        ).encode(),
        "invalid fields: days",
    ),
    (
        json.dumps(
            {"nonce": "n" * 20, "ticket": "TS-2026-000001", "action": "reply", "admin": True}
        ).encode(),
        "invalid fields: admin",
    ),
    (
        json.dumps({"nonce": "n" * 20, "ticket": "1 OR 1=1", "action": "reply"}).encode(),
        "invalid fields: ticket",
    ),
]


async def test_a_malformed_callback_is_refused_with_what_is_wrong(
    http: aiohttp.ClientSession, callback_url: str
) -> None:
    for raw, error in MALFORMED:
        headers = signed_headers(WEBHOOK_SECRET.encode(), int(time.time()), raw)
        assert await post(http, callback_url + PATH, raw, headers) == (
            400,
            {"ok": False, "error": error},
        ), raw


async def test_a_department_cannot_touch_another_departments_ticket(
    desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    callback_url: str,
) -> None:
    resident = await add_resident(sessions, 4002)
    rubbish = await desk.file(draft(resident))  # urban management's
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed({"ticket": rubbish.number, "action": "reply", "text": "x"}),
    )
    assert (status, answer["error"]) == (403, "the ticket is not with this department")
    status, _ = await post(
        http, callback_url + PATH, *signed({"ticket": "TS-2026-999999", "action": "acknowledge"})
    )
    assert status == 404


async def test_actions_the_ticket_does_not_allow_are_conflicts(
    http: aiohttp.ClientSession, callback_url: str, pollution: FiledTicket
) -> None:
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed({"ticket": pollution.number, "action": "extend", "days": 5, "text": "需要时间"}),
    )
    assert status == 409
    assert "disclosure" in answer["error"]
    status, _ = await post(
        http,
        callback_url + PATH,
        *signed({"ticket": pollution.number, "action": "reply", "text": " "}),
    )
    assert status == 422


async def test_departments_without_a_secret_have_no_endpoint_and_huge_bodies_are_refused(
    http: aiohttp.ClientSession, callback_url: str, pollution: FiledTicket
) -> None:
    body, headers = signed({"ticket": pollution.number, "action": "acknowledge"})
    status, _ = await post(
        http, callback_url + "/api/departments/urban-management/callback", body, headers
    )
    assert status == 404
    huge = b"{" + b" " * 70_000 + b"}"
    status, answer = await post(
        http,
        callback_url + PATH,
        huge,
        signed_headers(WEBHOOK_SECRET.encode(), int(time.time()), huge),
    )
    assert (status, answer["error"]) == (413, "body too large")


# -- bodies that arrive in pieces --------------------------------------------------------------


async def raw_exchange(url: str, head: bytes, pieces: list[bytes]) -> tuple[int, dict[str, Any]]:
    """Send a request over a plain TCP connection, its body in pieces 0.2 s apart."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        for piece in pieces:
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(piece)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def request_head(headers: dict[str, str], **extra: str) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers | extra).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_signed_body_sent_in_two_writes_is_read_whole_and_applied(
    desk: TicketDesk, callback_url: str, pollution: FiledTicket
) -> None:
    body, headers = signed({"ticket": pollution.number, "action": "acknowledge"})
    head = request_head(headers, **{"Content-Length": str(len(body))})
    status, answer = await raw_exchange(callback_url, head, [body[:20], body[20:]])
    assert (status, answer.get("status")) == (200, "acknowledged"), answer
    assert (await desk.get(pollution.number)).status == "acknowledged"


def chunked(pieces: list[bytes]) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]


async def test_a_chunked_body_without_a_length_is_read_whole(
    callback_url: str, pollution: FiledTicket
) -> None:
    body, headers = signed({"ticket": pollution.number, "action": "acknowledge"})
    head = request_head(headers, **{"Transfer-Encoding": "chunked"})
    status, answer = await raw_exchange(callback_url, head, chunked([body[:20], body[20:]]))
    assert (status, answer.get("status")) == (200, "acknowledged"), answer


async def test_a_chunked_body_over_the_limit_is_too_large_not_forged(
    desk: TicketDesk, callback_url: str, pollution: FiledTicket
) -> None:
    limit = desk.settings.callbacks.max_body_bytes
    body, headers = signed(
        {"ticket": pollution.number, "action": "reply", "text": "长" * (limit // 3)}
    )
    assert len(body) > limit
    head = request_head(headers, **{"Transfer-Encoding": "chunked"})
    pieces = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    status, answer = await raw_exchange(callback_url, head, chunked(pieces))
    assert (status, answer) == (413, {"ok": False, "error": "body too large"})
    assert (await desk.get(pollution.number)).status == "assigned"


async def test_a_nul_character_in_any_text_field_is_refused_by_name_and_changes_nothing(
    desk: TicketDesk, http: aiohttp.ClientSession, callback_url: str, pollution: FiledTicket
) -> None:
    # PostgreSQL cannot store U+0000 in text: without the check this was a 500 there.
    for fields, name in [
        ({"action": "acknowledge", "officer": "李\u0000科员"}, "officer"),
        ({"action": "reply", "text": "已处理\u0000。"}, "text"),
        ({"action": "reply", "text": "已处理。", "outcome": "other\u0000"}, "outcome"),
    ]:
        status, answer = await post(
            http, callback_url + PATH, *signed({"ticket": pollution.number} | fields)
        )
        assert (status, answer) == (400, {"ok": False, "error": f"invalid fields: {name}"})
    assert (await desk.get(pollution.number)).status == "assigned"


async def test_an_empty_or_long_text_is_refused_naming_the_field_and_its_limit(
    http: aiohttp.ClientSession, callback_url: str, pollution: FiledTicket, desk: TicketDesk
) -> None:
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed({"ticket": pollution.number, "action": "reply", "text": "\u200b "}),
    )
    assert status == 422
    assert (answer["code"], answer["field"], answer["limit"]) == ("empty", "text", 3000)
    assert answer["error"] == "the reply is empty (1 to 3000 characters)"
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed({"ticket": pollution.number, "action": "hand_back", "text": "理" * 1001}),
    )
    assert status == 422
    assert (answer["code"], answer["field"], answer["limit"]) == ("too_long", "text", 1000)
    assert "the reason" in answer["error"]
    assert (await desk.get(pollution.number)).status == "assigned"


@pytest.fixture
async def application(desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]) -> str:
    """A disclosure application that staff passed to the department with the callback API."""
    resident = await add_resident(sessions, 4002)
    filed = await desk.file(
        draft(
            resident,
            type="disclosure",
            category="政务公开",
            description="申请公开本市2026年重点排污单位名录及其监测数据。",
            contact_name="测试申请人",
            contact_phone="13800138000",
            share_identity=True,
        )
    )
    await desk.reassign(filed.number, Actor.staff("staff-1"), "ecology-environment")
    return filed.number


async def test_a_disclosure_answer_without_its_reason_is_refused_naming_the_field(
    desk: TicketDesk, http: aiohttp.ClientSession, callback_url: str, application: str
) -> None:
    answer_fields = {"ticket": application, "action": "reply", "text": "部分公开。"}
    for extra in ({"outcome": "withheld"}, {"outcome": "partly_disclosed", "reason": "  "}):
        status, answer = await post(http, callback_url + PATH, *signed(answer_fields | extra))
        assert status == 422
        assert answer["error"].startswith("reason:")
    status, answer = await post(http, callback_url + PATH, *signed(answer_fields))
    assert status == 422
    assert answer["error"].startswith("outcome:")
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed(
            answer_fields
            | {"outcome": "partly_disclosed", "document_url": "javascript:alert(1)", "reason": "x"}
        ),
    )
    assert status == 422
    assert answer["error"].startswith("document_url:")
    assert (await desk.get(application)).status == "assigned"


async def test_a_disclosure_answer_carries_reason_and_link_to_the_applicant(
    desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    callback_url: str,
    application: str,
) -> None:
    link = "https://xxgk.ecology.example.gov.cn/answers/2026-0042.pdf"
    status, answer = await post(
        http,
        callback_url + PATH,
        *signed(
            {
                "ticket": application,
                "action": "reply",
                "text": "名录予以公开，监测原始数据部分公开。",
                "outcome": "partly_disclosed",
                "reason": "部分监测数据涉及企业商业秘密，依据条例第十五条不予公开。",
                "document_url": link,
                "officer": "李科员",
            }
        ),
    )
    assert (status, answer["status"]) == (200, "replied")
    ticket = await desk.get(application)
    assert ticket.outcome == "partly_disclosed"
    [document] = await desk.documents(application)
    assert document.url == link
    [replied] = [e for e in await desk.timeline(application) if e.kind == "replied"]
    assert replied.data["reason"].startswith("部分监测数据")
    assert replied.data["remedies"]["review_days"] == 60
    async with sessions() as session:
        rows = (
            await session.execute(
                select(OutboxMessage).where(
                    OutboxMessage.channel == "resident", OutboxMessage.event_id == replied.id
                )
            )
        ).scalars()
        [notice] = list(rows)  # a link travels in the notice; no file to send
    assert notice.payload["event"]["data"]["document"]["url"] == link


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
async def test_json_nested_past_the_parsers_depth_is_refused_not_a_server_error(
    desk: TicketDesk,
    http: aiohttp.ClientSession,
    callback_url: str,
    pollution: FiledTicket,
    opening: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    depth = 10_000  # inside the size limit, far past the JSON parser's recursion limit
    closing = b"]" if opening == b"[" else b"}"
    body = opening * depth + b"1" + closing * depth
    assert len(body) < desk.settings.callbacks.max_body_bytes
    headers = signed_headers(WEBHOOK_SECRET.encode(), int(time.time()), body)
    status, answer = await post(http, callback_url + PATH, body, headers)
    assert (status, answer) == (400, {"ok": False, "error": "the body is not JSON"})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (await desk.get(pollution.number)).status == "assigned"


async def test_a_body_cut_short_by_the_sender_going_away_is_no_server_error(
    desk: TicketDesk, callback_url: str, pollution: FiledTicket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body, headers = signed({"ticket": pollution.number, "action": "acknowledge"})
    head = request_head(headers, **{"Content-Length": str(len(body) + 100)})
    host, port = callback_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + body)
    await writer.drain()
    writer.close()  # gone before the rest of the announced body
    await writer.wait_closed()

    def seen() -> bool:
        return any(
            "cut short" in r.getMessage() or r.levelno >= logging.ERROR for r in caplog.records
        )

    for _ in range(100):  # until the endpoint has noticed, whatever it made of it
        if seen():
            break
        await asyncio.sleep(0.05)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("cut short" in r.getMessage() for r in caplog.records)
    assert (await desk.get(pollution.number)).status == "assigned"
