"""Residents, questions, escalations and PTB persistence in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.core.models import BotState, Escalation, Question, Resident, utcnow
from bot.services import Services
from bot.telegram.persistence import DatabasePersistence


async def _ask(services: Services, text: str, user_id: int = 1001) -> int:
    resident = await services.residents.touch(user_id, user_id, display_name="Test Resident")
    result = services.knowledge.matcher.match(text)
    return await services.questions.record(
        resident_id=resident.id,
        chat_id=user_id,
        message_id=7,
        language=resident.language,
        result=result,
    )


async def test_a_resident_is_created_once_and_keeps_the_language_they_chose(
    services: Services,
) -> None:
    first = await services.residents.touch(42, 42, display_name="李雷", language_hint="zh-hans")
    assert first.language == "zh"
    await services.residents.set_language(42, "en")
    services.residents.forget_cache()
    again = await services.residents.touch(42, 42, display_name="李雷")
    assert again.id == first.id
    assert again.language == "en"
    async with services.sessions() as session:
        assert len((await session.scalars(select(Resident))).all()) == 1


async def test_an_english_telegram_client_starts_in_english(services: Services) -> None:
    resident = await services.residents.touch(43, 43, language_hint="en-GB")
    assert resident.language == "en"


async def test_two_first_messages_at_once_make_one_resident(services: Services) -> None:
    profiles = await asyncio.gather(*(services.residents.touch(77, 77) for _ in range(4)))
    assert len({p.id for p in profiles}) == 1


async def test_a_burst_of_newcomers_each_get_their_own_resident(services: Services) -> None:
    # Written together (one statement per burst); each resident still gets their own profile.
    profiles = await asyncio.gather(
        *(
            services.residents.touch(5000 + n, 9000 + n, display_name=f"居民{n}")
            for n in range(60)
        ),
        services.residents.touch(5001, 9001),
    )
    assert len({p.id for p in profiles}) == 60
    assert [p.chat_id for p in profiles[:60]] == [9000 + n for n in range(60)]
    assert profiles[60].id == profiles[1].id
    async with services.sessions() as session:
        stored = {
            r.telegram_user_id: r
            for r in await session.scalars(
                select(Resident).where(Resident.telegram_user_id >= 5000)
            )
        }
    assert len(stored) == 60
    # A message without a name (none given) keeps the name already known.
    assert stored[5001].display_name == "居民1"


async def test_a_resident_seen_again_in_another_chat_is_found_there(services: Services) -> None:
    first = await services.residents.touch(88, 88, display_name="韩梅梅")
    await services.residents.mark_blocked(88, True)
    again = await services.residents.touch(88, 8800)
    assert again.id == first.id
    assert again.chat_id == 8800
    assert not again.blocked_bot


async def test_every_question_is_stored_with_its_normal_form_decision_score_and_item(
    services: Services,
) -> None:
    question_id = await _ask(services, "身份證丟了怎麼補辦？")
    async with services.sessions() as session:
        row = await session.get(Question, question_id)
    assert row is not None
    assert row.text == "身份證丟了怎麼補辦？"
    assert "身份证" in row.normalized
    assert row.decision == "answer"
    assert row.item_id == "id-card-replacement"
    assert row.score > 0.6
    assert row.candidates[0]["id"] == "id-card-replacement"


async def test_the_first_feedback_counts_and_only_the_asker_can_give_it(
    services: Services,
) -> None:
    question_id = await _ask(services, "结婚登记需要什么材料")
    stranger = await services.residents.touch(2002, 2002)
    owner = (await services.questions.get(question_id)).resident_id  # type: ignore[union-attr]
    assert await services.questions.record_feedback(question_id, stranger.id, "helpful") == (
        "not_found"
    )
    assert await services.questions.record_feedback(question_id, owner, "not_helpful") == (
        "recorded"
    )
    assert await services.questions.record_feedback(question_id, owner, "helpful") == "already"
    record = await services.questions.get(question_id)
    assert record is not None
    assert record.feedback == "not_helpful"


async def test_questions_asked_at_once_are_each_stored_as_asked(services: Services) -> None:
    resident = await services.residents.touch(3003, 3003)
    matcher = services.knowledge.matcher

    async def ask(text: str, person: bool) -> int:
        record = services.questions.record_for_person if person else services.questions.record
        return await record(
            resident_id=resident.id,
            chat_id=3003,
            message_id=None,
            language="zh",
            result=matcher.match(text),
        )

    texts = ["结婚登记需要什么材料", "犬只免疫证明怎么开", "我要找人工", "护照怎么办"] * 5
    ids = await asyncio.gather(*(ask(text, n % 3 == 2) for n, text in enumerate(texts)))
    assert len(set(ids)) == len(texts)
    for number, (question_id, text) in enumerate(zip(ids, texts, strict=True)):
        stored = await services.questions.get(question_id)
        assert stored is not None
        assert stored.text == text
        assert stored.escalated == (number % 3 == 2)
        assert (stored.reason == "person") == (number % 3 == 2)


async def test_a_question_is_escalated_only_once(services: Services) -> None:
    question_id = await _ask(services, "犬只免疫证明怎么开")
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    assert opened.status == "open"
    assert await services.escalations.open(question_id, "person") is None
    record = await services.questions.get(question_id)
    assert record is not None
    assert record.escalated


async def test_when_two_staff_answer_at_once_only_the_first_answer_counts(
    services: Services,
) -> None:
    question_id = await _ask(services, "犬只免疫证明怎么开")
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    outcomes = await asyncio.gather(
        services.escalations.answer_escalation(opened.id, "晴天。", "王芳", "telegram"),
        services.escalations.answer_escalation(opened.id, "多云。", "张伟", "console"),
    )
    # No bot is attached here, so the winner is recorded but cannot be delivered.
    assert sorted(o.status for o in outcomes) == ["already_answered", "undeliverable"]
    async with services.sessions() as session:
        row = (await session.scalars(select(Escalation))).one()
    winner = next(o for o in outcomes if o.status == "undeliverable")
    assert row.status == "answered"
    assert winner.escalation is not None
    assert row.answered_by == winner.escalation.answered_by
    assert row.answer_text in ("晴天。", "多云。")


async def test_an_empty_or_huge_staff_answer_is_refused(services: Services) -> None:
    question_id = await _ask(services, "犬只免疫证明怎么开")
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    empty = await services.escalations.answer_escalation(opened.id, "  \n ", "王芳", "console")
    huge = await services.escalations.answer_escalation(opened.id, "答" * 5000, "王芳", "console")
    assert (empty.status, empty.problem) == ("invalid", "empty")
    assert (huge.status, huge.problem) == ("invalid", "too_long")
    assert (await services.escalations.get(opened.id)).status == "open"  # type: ignore[union-attr]


async def test_an_answer_to_an_unknown_escalation_is_not_found(services: Services) -> None:
    outcome = await services.escalations.answer_escalation(999, "好的", "王芳", "console")
    assert outcome.status == "not_found"


async def test_the_staff_post_escapes_the_residents_question(services: Services) -> None:
    question_id = await _ask(services, "<b>你好</b> & <script>alert(1)</script> 天气")
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    post = services.escalations.render_post(opened)
    assert "<script>" not in post
    assert "&lt;script&gt;" in post
    assert "&lt;b&gt;你好&lt;/b&gt; &amp;" in post


async def test_persistence_keeps_conversations_and_user_data(services: Services) -> None:
    persistence = DatabasePersistence(services.sessions)
    await persistence.update_conversation("complaint", (5, 5), "DESCRIBE")
    await persistence.update_conversation("complaint", (6, 6), "PHOTO")
    await persistence.update_conversation("complaint", (6, 6), None)
    await persistence.update_user_data(5, {"draft": {"category": "噪音", "photos": ["a", "b"]}})
    await persistence.update_chat_data(-5, {"seen": 3})

    reopened = DatabasePersistence(services.sessions)
    assert await reopened.get_conversations("complaint") == {(5, 5): "DESCRIBE"}
    assert await reopened.get_user_data() == {
        5: {"draft": {"category": "噪音", "photos": ["a", "b"]}}
    }
    assert await reopened.get_chat_data() == {-5: {"seen": 3}}

    await reopened.drop_user_data(5)
    async with services.sessions() as session:
        kinds = sorted((await session.scalars(select(BotState.kind))).all())
    assert kinds == ["chat_data", "conversation:complaint"]


async def test_persistence_does_not_write_unchanged_data_again(services: Services) -> None:
    persistence = DatabasePersistence(services.sessions)
    await persistence.update_user_data(9, {"a": 1})
    async with services.sessions() as session:
        first = (await session.scalars(select(BotState.updated_at))).one()
    await asyncio.sleep(0.01)
    await persistence.update_user_data(9, {"a": 1})
    async with services.sessions() as session:
        second = (await session.scalars(select(BotState.updated_at))).one()
    assert first == second


async def test_unanswered_escalations_are_due_again_after_the_repost_time(
    services: Services,
) -> None:
    question_id = await _ask(services, "犬只免疫证明怎么开")
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    # Nothing is attached to send with: nothing is posted, nothing breaks.
    assert await services.escalations.repost_due() == 0
    async with services.sessions() as session:
        row = await session.get(Escalation, opened.id)
        assert row is not None
        row.posted_at = utcnow() - dt.timedelta(hours=2)
        await session.commit()
    assert [e.id for e in await services.escalations.open_escalations()] == [opened.id]


async def test_questions_asked_at_once_are_written_together_each_under_its_own_id(
    services: Services,
) -> None:
    texts = [f"第{n}个问题：身份证怎么办" for n in range(40)]
    resident = await services.residents.touch(3003, 3003)
    matcher = services.knowledge.matcher
    ids = await asyncio.gather(
        *(
            services.questions.record(
                resident_id=resident.id,
                chat_id=3003,
                message_id=n,
                language="zh",
                result=matcher.match(text),
            )
            for n, text in enumerate(texts)
        )
    )
    assert len(set(ids)) == len(texts)
    for question_id, text in zip(ids, texts, strict=True):
        record = await services.questions.get(question_id)
        assert record is not None
        assert record.text == text


# U+0000 (NUL): PostgreSQL cannot store it in text, so residents' and staff's words keep all but it.
NUL = "\u0000"


async def test_a_question_with_a_nul_character_is_stored_without_it(services: Services) -> None:
    question_id = await _ask(services, f"身份证{NUL}丢了怎么补办")
    stored = await services.questions.get(question_id)
    assert stored is not None
    assert stored.text == "身份证丢了怎么补办"


async def test_a_question_for_a_person_with_a_nul_character_is_stored_without_it(
    services: Services,
) -> None:
    resident = await services.residents.touch(3004, 3004)
    question_id = await services.questions.record_for_person(
        resident_id=resident.id,
        chat_id=3004,
        message_id=None,
        language="zh",
        result=services.knowledge.matcher.match(f"我要找{NUL}人工"),
    )
    stored = await services.questions.get(question_id)
    assert stored is not None
    assert stored.text == "我要找人工"


async def test_a_residents_name_with_a_nul_character_is_stored_without_it(
    services: Services,
) -> None:
    await services.residents.touch(3005, 3005, display_name=f"李{NUL}雷")
    async with services.sessions() as session:
        resident = (await session.scalars(select(Resident))).one()
    assert resident.display_name == "李雷"


async def test_a_staff_answer_with_a_nul_character_is_stored_without_it(
    services: Services,
) -> None:
    question_id = await _ask(services, "犬只免疫证明怎么开")
    opened = await services.escalations.open(question_id, "escalate")
    assert opened is not None
    outcome = await services.escalations.answer_escalation(
        opened.id, f"晴{NUL}天。", f"王{NUL}芳", "console"
    )
    assert outcome.escalation is not None
    assert (outcome.escalation.answer_text, outcome.escalation.answered_by) == ("晴天。", "王芳")
