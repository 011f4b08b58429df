"""Load and validate the knowledge base: service guides, disclosure items, departments, synonyms.

The format is the contract of docs/knowledge-base.md. Loading collects every
problem (file, field, what is wrong) instead of stopping at the first, so that whoever edits the
files can fix them all in one pass.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.answering.yielding import checkpoint

ITEM_FOLDERS = {"guides": "guide", "disclosures": "disclosure"}
DISCLOSURE_MODES = ("proactive", "on_request", "exempt")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

REQUIRED_ITEM_FIELDS = (
    "id",
    "kind",
    "title",
    "category",
    "department",
    "questions",
    "keywords",
    "answer",
)
# Text fields every item may have; each may also come with an `_en` twin.
_TEXT_FIELDS = (
    "title",
    "answer",
    "category",
    "time_limit",
    "fee",
    "location",
    "hours",
    "phone",
    "url",
    "period",
    "published_in",
    "exempt_reason",
    "alternative",
)
_LIST_FIELDS = ("questions", "keywords", "materials", "steps", "legal_basis", "related")
_KNOWN_ITEM_FIELDS = frozenset(
    {"id", "kind", "department", "updated", "disclosure"}
    | set(_TEXT_FIELDS)
    | {f + "_en" for f in _TEXT_FIELDS}
    | set(_LIST_FIELDS)
    | {f + "_en" for f in _LIST_FIELDS}
)
_KNOWN_DEPARTMENT_FIELDS = frozenset(
    {
        "id",
        "name",
        "name_en",
        "phone",
        "address",
        "address_en",
        "hours",
        "hours_en",
        "url",
        "complaint_categories",
        "complaint_categories_en",
        "complaint_keywords",
        "complaint_category_keywords",
        "email",
    }
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the knowledge base, where it is, and what is wrong."""

    file: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: field '{self.field}'" if self.field else self.file
        return f"{where}: {self.message}"


class KnowledgeBaseError(Exception):
    """The knowledge base cannot be loaded; `problems` says every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the knowledge base has {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True, slots=True)
class Department:
    """A department that answers for items and receives tickets."""

    id: str
    name: str
    name_en: str = ""
    phone: str = ""
    address: str = ""
    address_en: str = ""
    hours: str = ""
    hours_en: str = ""
    url: str = ""
    complaint_categories: tuple[str, ...] = ()
    complaint_keywords: tuple[str, ...] = ()
    # English names of complaint_categories, in the same order (optional).
    complaint_categories_en: tuple[str, ...] = ()
    # Keywords of single complaint categories (`complaint_category_keywords`, one line a
    # category: "道路交通秩序: 红绿灯 信号灯"): they pick a report's category among the
    # department's, and count as the department's keywords too (bot/tickets/routing.py).
    category_keywords: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def routing_keywords(self) -> tuple[str, ...]:
        """Every keyword that points to this department: its own and its categories'."""
        words = (w for _, keywords in self.category_keywords for w in keywords)
        return tuple(dict.fromkeys((*self.complaint_keywords, *words)))

    def display_name(self, language: str) -> str:
        """Return the name in the resident's language, falling back to Chinese."""
        return self.name_en if language == "en" and self.name_en else self.name


@dataclass(frozen=True, slots=True)
class Item:
    """A service guide or a disclosure item."""

    id: str
    kind: str
    title: str
    category: str
    department: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    answer: str
    source: str
    text: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    updated: str = ""
    disclosure: str = ""

    def get_text(self, name: str, language: str = "zh") -> str:
        """Return a text field in the resident's language, falling back to Chinese."""
        if language == "en":
            english = self.text.get(name + "_en", "")
            if english:
                return english
        if name in ("title", "answer", "category"):
            return str(getattr(self, name))
        return self.text.get(name, "")

    def get_list(self, name: str, language: str = "zh") -> tuple[str, ...]:
        """Return a list field in the resident's language, falling back to Chinese."""
        if language == "en":
            english = self.lists.get(name + "_en", ())
            if english:
                return english
        if name in ("questions", "keywords"):
            return tuple(getattr(self, name))
        return self.lists.get(name, ())

    @property
    def title_en(self) -> str:
        return self.text.get("title_en", "")

    @property
    def questions_en(self) -> tuple[str, ...]:
        return self.lists.get("questions_en", ())

    @property
    def related(self) -> tuple[str, ...]:
        return self.lists.get("related", ())


@dataclass(frozen=True)
class KnowledgeBase:
    """A validated knowledge base, immutable once loaded."""

    directory: Path
    items: Mapping[str, Item]
    departments: Mapping[str, Department]
    synonyms: tuple[tuple[str, ...], ...]
    warnings: tuple[Problem, ...] = ()
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def categories(self, kind: str | None = None) -> list[str]:
        """Return the categories in the order they first appear (by file name)."""
        seen: dict[str, None] = {}
        for item in self.items.values():
            if kind is None or item.kind == kind:
                seen.setdefault(item.category, None)
        return list(seen)

    def items_in_category(self, category: str) -> list[Item]:
        """Return the items of one category, by title."""
        return [i for i in self.items.values() if i.category == category]

    def category_name(self, category: str, language: str) -> str:
        """Return a category's name in the resident's language."""
        if language == "en":
            for item in self.items.values():
                if item.category == category and item.text.get("category_en"):
                    return item.text["category_en"]
        return category

    def department_of(self, item: Item) -> Department:
        """Return the department answering for an item."""
        return self.departments[item.department]


def _read_toml(path: Path, root: Path, problems: list[Problem]) -> dict[str, Any] | None:
    name = path.relative_to(root).as_posix()
    try:
        content = path.read_bytes()
        # Reading let another thread take the interpreter lock; a build taking it back while a
        # question is matched waits here, before the parse (bot/answering/yielding.py).
        checkpoint()
        return tomllib.loads(content.decode())
    except tomllib.TOMLDecodeError as error:
        problems.append(Problem(name, None, f"bad TOML: {error}"))
    except UnicodeDecodeError:
        problems.append(Problem(name, None, "bad TOML: the file is not UTF-8 text"))
    except OSError as error:
        problems.append(Problem(name, None, f"cannot read the file: {error.strerror}"))
    return None


def _string(
    data: Mapping[str, Any], key: str, name: str, problems: list[Problem], *, required: bool
) -> str:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(Problem(name, key, "missing field"))
        return ""
    if not isinstance(value, str):
        problems.append(Problem(name, key, f"must be text, not {type(value).__name__}"))
        return ""
    if required and not value.strip():
        problems.append(Problem(name, key, "must not be empty"))
    return value.strip()


def _strings(
    data: Mapping[str, Any], key: str, name: str, problems: list[Problem], *, required: bool
) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(Problem(name, key, "missing field"))
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(name, key, "must be an array of text"))
        return ()
    return tuple(v.strip() for v in value if v.strip())


def _load_departments(
    root: Path, problems: list[Problem], warnings: list[Problem]
) -> dict[str, Department]:
    path = root / "departments.toml"
    if not path.is_file():
        problems.append(Problem("departments.toml", None, "missing file"))
        return {}
    data = _read_toml(path, root, problems)
    if data is None:
        return {}
    for key in sorted(set(data) - {"departments"}):
        warnings.append(
            Problem("departments.toml", key, "unknown field (misspelt?); it is ignored")
        )
    entries = data.get("departments")
    if not isinstance(entries, list) or not entries:
        problems.append(
            Problem(
                "departments.toml",
                "departments",
                "must be a non-empty array of tables [[departments]]",
            )
        )
        return {}
    departments: dict[str, Department] = {}
    for index, entry in enumerate(entries, start=1):
        name = f"departments.toml (department #{index})"
        if not isinstance(entry, dict):
            problems.append(Problem(name, None, "must be a table"))
            continue
        department = check_department_data(entry, name=name, problems=problems, warnings=warnings)
        if department is None:
            continue
        if department.id in departments:
            problems.append(Problem(name, "id", f"duplicate department id '{department.id}'"))
            continue
        departments[department.id] = department
    return departments


DEPARTMENT_TEXT_FIELDS = ("name_en", "phone", "address", "address_en", "hours", "hours_en", "url")


def check_department_data(
    entry: Mapping[str, Any],
    *,
    name: str,
    problems: list[Problem],
    warnings: list[Problem],
) -> Department | None:
    """Check one department's fields as `kb check` does; return it, or None after a problem.

    `name` is how problems name the department; the console's department editor checks a draft
    here before departments.toml is written.
    """
    before = len(problems)
    dept_id = _string(entry, "id", name, problems, required=True)
    title = _string(entry, "name", name, problems, required=True)
    for key in sorted(set(entry) - _KNOWN_DEPARTMENT_FIELDS):
        warnings.append(Problem(name, key, "unknown field (misspelt?); it is ignored"))
    text = {k: _string(entry, k, name, problems, required=False) for k in DEPARTMENT_TEXT_FIELDS}
    categories = _strings(entry, "complaint_categories", name, problems, required=False)
    keywords = _strings(entry, "complaint_keywords", name, problems, required=False)
    categories_en = _strings(entry, "complaint_categories_en", name, problems, required=False)
    if categories_en and len(categories_en) != len(categories):
        problems.append(
            Problem(
                name,
                "complaint_categories_en",
                "must name each of complaint_categories in English, in the same order",
            )
        )
    category_keywords = _category_keywords(entry, categories, name, problems)
    if len(problems) > before or not dept_id:
        return None
    return Department(
        id=dept_id,
        name=title,
        complaint_categories=categories,
        complaint_keywords=keywords,
        complaint_categories_en=categories_en,
        category_keywords=category_keywords,
        **text,
    )


# One line of complaint_category_keywords: a category, a colon, its keywords.
_CATEGORY_LINE = re.compile(r"\s*(?P<category>[^:：]+?)\s*[:：]\s*(?P<words>.*)")
_KEYWORD_SEPARATORS = re.compile(r"[\s,，、;；]+")


def _category_keywords(
    entry: Mapping[str, Any], categories: Sequence[str], name: str, problems: list[Problem]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Read complaint_category_keywords: "category: keyword keyword …", one category a line,
    each a category of complaint_categories (a category written twice has both lines' words)."""
    lines = _strings(entry, "complaint_category_keywords", name, problems, required=False)
    found: dict[str, list[str]] = {}
    for line in lines:
        match = _CATEGORY_LINE.fullmatch(line)
        words = [w for w in _KEYWORD_SEPARATORS.split(match["words"]) if w] if match else []
        if match is None or not words:
            problems.append(
                Problem(
                    name,
                    "complaint_category_keywords",
                    f"each line is a category, a colon and its keywords ({line!r})",
                )
            )
        elif match["category"] not in categories:
            problems.append(
                Problem(
                    name,
                    "complaint_category_keywords",
                    f"{match['category']!r} is not one of complaint_categories",
                )
            )
        else:
            found.setdefault(match["category"], []).extend(words)
    return tuple((c, tuple(dict.fromkeys(words))) for c, words in found.items())


def _load_synonyms(
    root: Path, problems: list[Problem], warnings: list[Problem]
) -> tuple[tuple[str, ...], ...]:
    path = root / "synonyms.toml"
    if not path.is_file():
        return ()
    data = _read_toml(path, root, problems)
    if data is None:
        return ()
    for key in sorted(set(data) - {"groups"}):
        warnings.append(Problem("synonyms.toml", key, "unknown field (misspelt?); it is ignored"))
    groups = data.get("groups", [])
    if not isinstance(groups, list):
        problems.append(Problem("synonyms.toml", "groups", "must be an array of arrays of words"))
        return ()
    result: list[tuple[str, ...]] = []
    for index, group in enumerate(groups, start=1):
        if not isinstance(group, list) or not all(isinstance(w, str) for w in group):
            problems.append(
                Problem("synonyms.toml", f"groups[{index}]", "must be an array of words")
            )
            continue
        words = tuple(w.strip() for w in group if w.strip())
        if len(words) >= 2:
            result.append(words)
    return tuple(result)


def _load_item(
    path: Path,
    root: Path,
    expected_kind: str,
    departments: Mapping[str, Department],
    problems: list[Problem],
    warnings: list[Problem],
) -> Item | None:
    name = path.relative_to(root).as_posix()
    data = _read_toml(path, root, problems)
    if data is None:
        return None
    return check_item_data(
        data,
        name=name,
        stem=path.stem,
        root=root,
        expected_kind=expected_kind,
        departments=departments,
        problems=problems,
        warnings=warnings,
    )


def check_item_data(
    data: Mapping[str, Any],
    *,
    name: str,
    stem: str,
    root: Path,
    expected_kind: str,
    departments: Mapping[str, Department],
    problems: list[Problem],
    warnings: list[Problem],
) -> Item | None:
    """Check one item's fields as `kb check` does; return the item, or None after a problem.

    `name` is the file as problems name it, `stem` the file name without `.toml` (the id it
    must carry); the console's editor checks a draft here before any file is written.
    """
    before = len(problems)
    item_id = _string(data, "id", name, problems, required=True)
    if item_id and not ID_PATTERN.match(item_id):
        problems.append(Problem(name, "id", f"'{item_id}' is not kebab-case ASCII (a-z, 0-9, -)"))
    elif item_id and item_id != stem:
        # A copied file keeps its original's id: say it is a duplicate, not only a misnaming.
        original = [
            f"{folder}/{item_id}.toml"
            for folder in ITEM_FOLDERS
            if (root / folder / f"{item_id}.toml").is_file()
        ]
        duplicate = f"duplicate id '{item_id}', also in {original[0]}; " if original else ""
        problems.append(
            Problem(name, "id", f"{duplicate}'{item_id}' does not match the file name '{stem}'")
        )
    kind = _string(data, "kind", name, problems, required=True)
    if kind and kind not in ITEM_FOLDERS.values():
        problems.append(Problem(name, "kind", f"'{kind}' is not 'guide' or 'disclosure'"))
    elif kind and kind != expected_kind:
        problems.append(
            Problem(name, "kind", f"'{kind}' item in the folder for '{expected_kind}' items")
        )
    title = _string(data, "title", name, problems, required=True)
    category = _string(data, "category", name, problems, required=True)
    department = _string(data, "department", name, problems, required=True)
    if department and departments and department not in departments:
        problems.append(
            Problem(
                name, "department", f"unknown department '{department}' (not in departments.toml)"
            )
        )
    questions = _strings(data, "questions", name, problems, required=True)
    if "questions" in data and isinstance(data["questions"], list) and not questions:
        problems.append(Problem(name, "questions", "must hold at least one question"))
    keywords = _strings(data, "keywords", name, problems, required=True)
    answer = _string(data, "answer", name, problems, required=True)

    text: dict[str, str] = {}
    for key in _TEXT_FIELDS:
        for variant in (key, key + "_en"):
            if variant in ("title", "answer", "category"):
                continue
            value = _string(data, variant, name, problems, required=False)
            if value:
                text[variant] = value
    lists: dict[str, tuple[str, ...]] = {}
    for key in _LIST_FIELDS:
        for variant in (key, key + "_en"):
            if variant in ("questions", "keywords"):
                continue
            values = _strings(data, variant, name, problems, required=False)
            if values:
                lists[variant] = values

    disclosure = _string(data, "disclosure", name, problems, required=False)
    if disclosure and disclosure not in DISCLOSURE_MODES:
        problems.append(
            Problem(
                name, "disclosure", f"'{disclosure}' is not one of " + ", ".join(DISCLOSURE_MODES)
            )
        )
    updated_raw = data.get("updated")
    updated = ""
    if isinstance(updated_raw, dt.date | dt.datetime):
        updated = updated_raw.isoformat()[:10]
    elif isinstance(updated_raw, str):
        updated = updated_raw.strip()
    elif updated_raw is not None:
        problems.append(Problem(name, "updated", "must be a date such as 2026-10-01"))

    for key in sorted(set(data) - _KNOWN_ITEM_FIELDS):
        warnings.append(Problem(name, key, "unknown field (misspelt?); it is ignored"))

    if len(problems) > before:
        return None
    return Item(
        id=item_id,
        kind=kind,
        title=title,
        category=category,
        department=department,
        questions=questions,
        keywords=keywords,
        answer=answer,
        source=name,
        text=text,
        lists=lists,
        updated=updated,
        disclosure=disclosure,
    )


def load_knowledge_base(directory: str | Path) -> KnowledgeBase:
    """Load and validate a knowledge base folder; raise KnowledgeBaseError naming every problem."""
    root = Path(directory)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not root.is_dir():
        raise KnowledgeBaseError([Problem(str(root), None, "not a folder")])
    departments = _load_departments(root, problems, warnings)
    synonyms = _load_synonyms(root, problems, warnings)

    items: dict[str, Item] = {}
    sources: dict[str, str] = {}
    for folder, kind in ITEM_FOLDERS.items():
        for path in sorted((root / folder).glob("*.toml")):
            checkpoint()
            item = _load_item(path, root, kind, departments, problems, warnings)
            if item is None:
                continue
            if item.id in items:
                problems.append(
                    Problem(
                        item.source, "id", f"duplicate id '{item.id}', also in {sources[item.id]}"
                    )
                )
                continue
            items[item.id] = item
            sources[item.id] = item.source
    if not items and not problems:
        problems.append(
            Problem(str(root), None, "no items: guides/ and disclosures/ hold no *.toml files")
        )
    for item in items.values():
        for related in item.related:
            if related not in items:
                warnings.append(
                    Problem(item.source, "related", f"unknown item '{related}'; it is not shown")
                )
    if problems:
        raise KnowledgeBaseError(problems)
    return KnowledgeBase(
        directory=root,
        items=items,
        departments=departments,
        synonyms=synonyms,
        warnings=tuple(warnings),
    )
