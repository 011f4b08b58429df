"""Knowledge-base fixtures: paths, hand-made knowledge bases, the bundled matcher."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.answering.matching import MatchingThresholds, MatchResult
from bot.answering.store import LoadedKnowledge, build_knowledge, thresholds_from
from bot.core.config import load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_KNOWLEDGE = REPO_ROOT / "knowledge"
TAIPEI_FAQ = REPO_ROOT / "benchmarks" / "data" / "taipei-faq"
EVALUATION_SETS = REPO_ROOT / "tests" / "data"
# Where the bundled config.toml keeps text embeddings ([matching] embedding_cache): a
# `python -m bot run` a test starts with a config of its own points there too, so it reads the
# knowledge base's embeddings instead of encoding them all again (seconds of CPU a process).
EMBEDDING_CACHE = REPO_ROOT / "data" / "embeddings"


def words_only_config(folder: Path) -> Path:
    """The bundled config.toml, written into `folder`, reading the bundled knowledge base and
    matching on words only (no embedding model)."""
    source = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    knowledge = BUNDLED_KNOWLEDGE.as_posix()
    source = source.replace('dir = "knowledge"', f'dir = "{knowledge}"', 1)
    source = source.replace('semantic_model = "usem3"', 'semantic_model = "off"', 1)
    path = folder / "config.toml"
    path.write_text(source, encoding="utf-8")
    return path


DEPARTMENTS = (
    {"id": "public-security", "name": "示例市公安局"},
    {"id": "human-resources", "name": "示例市人力资源和社会保障局"},
    {"id": "housing-fund", "name": "示例市住房公积金管理中心"},
    {"id": "civil-affairs", "name": "示例市民政局"},
)


def toml_value(value: Any) -> str:
    """Write one value as TOML (strings, numbers, booleans and arrays of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string without control characters is a TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_table(fields: Mapping[str, Any]) -> str:
    """Write key = value lines."""
    return "".join(f"{key} = {toml_value(value)}\n" for key, value in fields.items())


def minimal_item(item_id: str, kind: str = "guide") -> dict[str, Any]:
    """Return an item with only the required fields."""
    return {
        "id": item_id,
        "kind": kind,
        "title": "居民身份证换领",
        "category": "户籍与身份证",
        "department": "public-security",
        "questions": ["身份证快过期了怎么换"],
        "keywords": ["身份证"],
        "answer": "有效期满前三个月内可以申请换领。",
    }


def best_id(result: MatchResult) -> str | None:
    """Return the id of the best candidate, or None when there is none at all."""
    return result.best.item.id if result.best else None


class KnowledgeFolder:
    """A knowledge base written file by file into a temporary folder, as staff would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.departments(*DEPARTMENTS)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def departments(self, *entries: Mapping[str, Any]) -> Path:
        text = "\n".join("[[departments]]\n" + toml_table(entry) for entry in entries)
        return self.write("departments.toml", text)

    def synonyms(self, *groups: list[str]) -> Path:
        return self.write("synonyms.toml", f"groups = {toml_value(list(groups))}\n")

    def item(
        self, item_id: str, *, folder: str = "guides", file_stem: str | None = None, **fields: Any
    ) -> Path:
        """Write one item: the required fields, changed by `fields` (None leaves one out)."""
        kind = "disclosure" if folder == "disclosures" else "guide"
        data = minimal_item(item_id, kind) | fields
        present = {key: value for key, value in data.items() if value is not None}
        return self.write(f"{folder}/{file_stem or item_id}.toml", toml_table(present))


@pytest.fixture
def knowledge_folder(tmp_path: Path) -> KnowledgeFolder:
    """An empty knowledge base with four departments, ready for items."""
    return KnowledgeFolder(tmp_path / "knowledge")


@pytest.fixture(scope="session")
def thresholds() -> MatchingThresholds:
    """The thresholds of the bundled config.toml."""
    return thresholds_from(load_settings(REPO_ROOT / "config.toml"))


@pytest.fixture(scope="session")
def bundled(thresholds: MatchingThresholds) -> LoadedKnowledge:
    """The bundled knowledge base of 示例市 and its matcher, built once for the session."""
    return build_knowledge(BUNDLED_KNOWLEDGE, thresholds)
