"""The index's caches on disk: the whole index, what each text is analysed into, and the
embeddings of texts and items.

Whatever the caches hold (nothing, everything, texts of another knowledge base, another city's
synonyms, a damaged or cut-short file), the index built with them is the index built without
them, to the last bit; a damaged file is said once in the log and written anew.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering import parsed_files, semantic
from bot.answering.cache_files import CacheFileError, read_arrays, write_arrays
from bot.answering.index_snapshot import FILE_NAME as SNAPSHOT
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.lexicon import general_lexicon
from bot.answering.matching import Matcher
from bot.answering.semantic import EmbeddingCache, cache_for, load_embedder
from bot.answering.text_analyses import FILE_NAME, AnalysisCache
from tests.fixtures_knowledge import KnowledgeFolder, best_id

QUESTIONS = (
    "养狗要去哪里登记",
    "Where do I get a licence for my dog?",
    "新买的车怎么上牌照",
    "护照丢了",
    "我想问一下第一次办护照需要带什么",
)


@pytest.fixture(scope="module")
def embedder() -> semantic.Embedder:
    status = load_embedder()
    assert status.embedder is not None, status.reason
    return status.embedder


def write_base(folder: KnowledgeFolder) -> None:
    folder.item(
        "dog-registration",
        title="养犬登记",
        category="城市管理",
        questions=["养犬登记怎么办理", "犬只免疫证明在哪里办"],
        keywords=["养犬", "犬只"],
        answer="在本市饲养犬只的，应当办理养犬登记，凭犬只免疫证明到住所地派出所办理。",
        title_en="Dog registration",
        questions_en=["How do I register my dog?"],
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
        questions=["第一次办护照", "护照怎么申请", "护照丢了怎么补办"],
        keywords=["护照"],
        answer="中国公民申领普通护照，可到出入境管理窗口办理。",
    )
    folder.synonyms(["机动车", "汽车", "小汽车"])


def build(
    folder: KnowledgeFolder, embedder: semantic.Embedder, cache: Path | None
) -> tuple[Matcher, AnalysisCache, EmbeddingCache]:
    """Build the index as a new process does: the caches read from `cache` (None: no caches)."""
    kb = load_knowledge_base(folder.root)
    analyses = AnalysisCache(cache)
    embeddings = EmbeddingCache(cache, embedder) if cache else cache_for(None, embedder)
    matcher = Matcher(
        kb, semantic=embeddings, lexicon=general_lexicon(english=False), analyses=analyses
    )
    return matcher, analyses, embeddings


_NOT_INDEX = {
    "kb",
    "semantic",
    "analyzer",
    "_recent",
    "places",
    "thresholds",
    "model",
    "items",
    "from_snapshot",
}


def index_state(matcher: Matcher) -> dict[str, Any]:
    """Everything the index keeps, in a form that compares equal only when it is the same."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return (value.dtype.str, value.shape, value.tobytes())
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if dataclasses.is_dataclass(value):  # one field's postings
            return [plain(getattr(value, f.name)) for f in dataclasses.fields(value)]
        if isinstance(value, dict):
            return list(value.items())
        return value

    return {name: plain(value) for name, value in vars(matcher).items() if name not in _NOT_INDEX}


def results(matcher: Matcher) -> list[tuple[str, str, list[tuple[str, float]]]]:
    return [
        (r.decision, r.reason, [(c.item.id, c.score) for c in r.candidates])
        for r in map(matcher.match, QUESTIONS)
    ]


def test_an_index_built_from_its_caches_is_the_index_built_without_them(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder, tmp_path: Path
) -> None:
    write_base(knowledge_folder)
    cache = tmp_path / "cache"
    without, _, _ = build(knowledge_folder, embedder, None)

    cold, cold_analyses, cold_embeddings = build(knowledge_folder, embedder, cache)
    # A start after the first reads the whole index back.
    warm, warm_analyses, warm_embeddings = build(knowledge_folder, embedder, cache)
    # Without the whole index (a reload after an edit), from each text's analysis and embedding.
    (cache / SNAPSHOT).unlink()
    rebuilt, rebuilt_analyses, rebuilt_embeddings = build(knowledge_folder, embedder, cache)

    assert not cold.from_snapshot
    assert cold_analyses.misses > 0
    assert cold_embeddings.misses > 0
    assert warm.from_snapshot
    assert warm_analyses.hits + warm_analyses.misses == 0
    assert warm_embeddings.misses == 0
    assert not rebuilt.from_snapshot
    assert rebuilt_analyses.misses == 0
    assert rebuilt_analyses.hits > 0
    assert rebuilt_embeddings.misses == 0
    for index in (cold, warm, rebuilt):
        assert index_state(index) == index_state(without)
    assert results(warm) == results(without)
    assert best_id(warm.match("Where do I get a licence for my dog?")) == "dog-registration"


def test_a_new_phrasing_is_the_only_text_analysed_and_encoded_again(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder, tmp_path: Path
) -> None:
    write_base(knowledge_folder)
    cache = tmp_path / "cache"
    build(knowledge_folder, embedder, cache)
    knowledge_folder.item(
        "passport-application",
        title="普通护照申领",
        category="出入境",
        questions=["第一次办护照", "护照怎么申请", "护照丢了怎么补办", "出国要办什么证件"],
        keywords=["护照"],
        answer="中国公民申领普通护照，可到出入境管理窗口办理。",
    )

    taught, analyses, embeddings = build(knowledge_folder, embedder, cache)

    assert not taught.from_snapshot
    assert analyses.misses == 1
    assert embeddings.misses == 1
    assert index_state(taught) == index_state(build(knowledge_folder, embedder, None)[0])


def test_changed_synonyms_or_keywords_analyse_every_text_afresh(
    knowledge_folder: KnowledgeFolder, embedder: semantic.Embedder, tmp_path: Path
) -> None:
    write_base(knowledge_folder)
    cache = tmp_path / "cache"
    before, _, _ = build(knowledge_folder, embedder, cache)
    assert best_id(before.match("养狗要去哪里登记")) == "dog-registration"

    # 犬只 now reads as 宠物 (the city's group before the lexicon's): texts are read otherwise.
    knowledge_folder.synonyms(["机动车", "汽车", "小汽车"], ["宠物", "犬只"])
    changed, analyses, embeddings = build(knowledge_folder, embedder, cache)

    assert not changed.from_snapshot
    assert analyses.hits == 0
    assert analyses.misses > 0
    assert embeddings.misses == 0  # the texts' embeddings do not depend on the synonyms
    assert changed.analyzer.canonical["犬只"] == "宠物"
    assert "w宠物" in changed._vocabulary
    assert "w宠物" not in before._vocabulary
    assert index_state(changed) == index_state(build(knowledge_folder, embedder, None)[0])

    # A new keyword is a new word for segmentation: the same.
    knowledge_folder.item(
        "vehicle-registration",
        title="机动车注册登记",
        category="交通出行",
        questions=["新车怎么上牌", "机动车注册登记需要什么材料"],
        keywords=["机动车", "牌照", "领牌"],
        answer="新购机动车应当在车管所办理注册登记，领取号牌和行驶证。",
    )
    rekeyed, analyses, _ = build(knowledge_folder, embedder, cache)

    assert analyses.hits == 0
    assert index_state(rekeyed) == index_state(build(knowledge_folder, embedder, None)[0])


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "cut short":
        path.write_bytes(bytes(data[: len(data) * 2 // 3]))
    elif how == "bytes changed":
        for at in range(len(data) // 2, len(data), max(1, len(data) // 50)):
            data[at] ^= 0x5A
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(b"not a cache file at all")


@pytest.mark.parametrize("how", ["cut short", "bytes changed", "garbage"])
@pytest.mark.parametrize("which", ["snapshot", "analyses", "items", "texts"])
def test_a_damaged_cache_file_is_rebuilt_and_said_once(
    knowledge_folder: KnowledgeFolder,
    embedder: semantic.Embedder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    which: str,
    how: str,
) -> None:
    write_base(knowledge_folder)
    cache = tmp_path / "cache"
    expected, _, embeddings = build(knowledge_folder, embedder, cache)
    assert embeddings.path is not None
    assert embeddings.items_path is not None
    path = {
        "snapshot": cache / SNAPSHOT,
        "analyses": cache / FILE_NAME,
        "items": embeddings.items_path,
        "texts": embeddings.path,
    }[which]
    damage(path, how)
    # Each file is read when those before it cannot serve: the whole index, then the items'
    # embeddings and the texts' analyses, then the texts' embeddings.
    if which in ("analyses", "texts"):
        (cache / SNAPSHOT).unlink()
    if which == "texts":
        embeddings.items_path.unlink()

    with caplog.at_level(logging.WARNING, logger="bot.answering"):
        rebuilt, _, _ = build(knowledge_folder, embedder, cache)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        again, analyses, again_embeddings = build(knowledge_folder, embedder, cache)

    assert index_state(rebuilt) == index_state(expected)
    assert len(warnings) == 1, caplog.text
    assert str(path) in warnings[0].getMessage()
    # Written anew: the next build reads it without a word and recomputes nothing.
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1, caplog.text
    assert analyses.misses == 0
    assert again_embeddings.misses == 0
    assert index_state(again) == index_state(expected)


def test_the_first_embedding_cache_format_is_read_once_and_replaced(
    embedder: semantic.Embedder, tmp_path: Path
) -> None:
    texts = ["社保卡怎么补办", "公积金提取", "养犬登记"]
    vectors = embedder.encode(texts).astype(np.float16)
    keys = np.frombuffer(
        b"".join(hashlib.sha1(t.encode(), usedforsecurity=False).digest() for t in texts),
        dtype=np.uint8,
    ).reshape(len(texts), 20)
    cache = EmbeddingCache(tmp_path, embedder)
    assert cache.legacy_path is not None
    assert cache.path is not None
    np.savez(cache.legacy_path, keys=keys, vectors=vectors)

    read = cache.embed(texts)

    assert cache.misses == 0
    wide = vectors.astype(np.float32)
    assert np.array_equal(read, wide / np.linalg.norm(wide, axis=1, keepdims=True))
    assert cache.path.is_file()
    assert not cache.legacy_path.exists()
    again = EmbeddingCache(tmp_path, embedder)
    assert np.array_equal(again.embed(texts), read)
    assert again.misses == 0


def test_a_cache_file_cut_short_or_changed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    arrays = {"numbers": np.arange(1000, dtype=np.int64), "empty": np.zeros(0, np.float32)}
    write_arrays(path, "test", arrays, {"count": 1000})
    read = read_arrays(path, "test")
    assert np.array_equal(read["numbers"], arrays["numbers"])
    assert read.meta == {"count": 1000}
    assert read["empty"].shape == (0,)
    with pytest.raises(CacheFileError, match="not 'other'"):
        read_arrays(path, "other")

    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(CacheFileError, match="cut short"):
        read_arrays(path, "test")
    changed = bytearray(data)
    changed[-100] ^= 1
    path.write_bytes(bytes(changed))
    with pytest.raises(CacheFileError, match="checksum"):
        read_arrays(path, "test")
    # A mapped file's large arrays may be left to their owner to check, row by row.
    assert read_arrays(path, "test", mapped=True, unchecked=("numbers",))["numbers"][987] != 987


def test_a_damaged_row_of_the_embedding_cache_is_encoded_again(
    embedder: semantic.Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = ["社保卡怎么补办", "公积金提取", "养犬登记"]
    expected = EmbeddingCache(tmp_path, embedder).embed(texts)
    cache = EmbeddingCache(tmp_path, embedder)
    assert cache.path is not None
    # The file's last bytes are the last text's normalised row, which a build reads without
    # a checksum of the whole array (it checks the rows it uses).
    data = bytearray(cache.path.read_bytes())
    data[-10] ^= 0xFF
    cache.path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="bot.answering.semantic"):
        read = cache.embed(texts)

    assert np.array_equal(read[:2], expected[:2])
    # Encoded again, alone rather than in a batch of three: the same to float16's precision.
    assert np.allclose(read[2], expected[2], atol=1e-2)
    assert cache.misses == 1
    assert "1 damaged rows" in caplog.text
    assert np.array_equal(EmbeddingCache(tmp_path, embedder).embed(texts), read)


def test_embeddings_kept_by_other_code_are_derived_again_not_encoded(
    embedder: semantic.Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["社保卡怎么补办", "公积金提取", "养犬登记"]
    expected = EmbeddingCache(tmp_path, embedder).embed(texts)
    monkeypatch.setattr(semantic, "_derivation", lambda: "another version of the code")

    again = EmbeddingCache(tmp_path, embedder)

    assert np.array_equal(again.embed(texts), expected)
    assert again.misses == 0


def test_item_files_are_parsed_only_when_their_bytes_are_new(
    knowledge_folder: KnowledgeFolder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_base(knowledge_folder)
    # A date, a nested table and an array of tables: kept and read back as TOML gave them.
    knowledge_folder.write(
        "guides/dated.toml",
        'id = "dated"\nkind = "guide"\ntitle = "居住证办理"\ncategory = "户籍"\n'
        'department = "public-security"\nquestions = ["居住证怎么办"]\nkeywords = ["居住证"]\n'
        'answer = "到派出所办理。"\nupdated = 2026-10-01\nmaterials = ["身份证", "照片"]\n',
    )
    cache = tmp_path / "cache"
    parses: list[str] = []
    parse = parsed_files.tomllib.loads

    def counting(text: str) -> dict[str, Any]:
        parses.append(text)
        return parse(text)

    plain = load_knowledge_base(knowledge_folder.root)
    monkeypatch.setattr(parsed_files.tomllib, "loads", counting)

    first = load_knowledge_base(knowledge_folder.root, cache=cache)
    parsed_first = len(parses)
    again = load_knowledge_base(knowledge_folder.root, cache=cache)
    parsed_again = len(parses) - parsed_first
    knowledge_folder.item("passport-application", title="普通护照申领（新）")
    edited = load_knowledge_base(knowledge_folder.root, cache=cache)

    assert parsed_first == 4
    assert parsed_again == 0
    assert len(parses) - parsed_first == 1
    assert first.items == plain.items
    assert again.items == plain.items
    assert again.items["dated"].updated == "2026-10-01"
    assert edited.items["passport-application"].title == "普通护照申领（新）"
    assert edited.items == load_knowledge_base(knowledge_folder.root).items

    damage(cache / parsed_files.FILE_NAME, "bytes changed")
    with caplog.at_level(logging.WARNING, logger="bot.answering"):
        after_damage = load_knowledge_base(knowledge_folder.root, cache=cache)
    assert after_damage.items == edited.items
    assert "unreadable" in caplog.text


def test_a_toml_value_json_cannot_hold_is_parsed_each_time(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text('"$date" = "not a date"\nwhen = 07:32:00\n', encoding="utf-8")
    files = parsed_files.ParsedFiles(tmp_path / "cache")

    assert files.load(path) == {"$date": "not a date", "when": dt.time(7, 32)}
    files.save()
    assert not (tmp_path / "cache" / parsed_files.FILE_NAME).exists()
