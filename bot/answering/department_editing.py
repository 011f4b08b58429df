"""Editing one department of the knowledge base: its fields as a form, the checks of `kb check`
(and its phone against the numbering plan, bot/core/phones.py), departments.toml written with
tomlkit, and what an answer card says before and after.

Nothing here touches the database or the live knowledge base; bot/answering/department_desk.py
does. departments.toml stays the source of truth: an edit rewrites only the keys of the one
department whose values changed, so comments and every other department stay as written; a new
department is added at the end; a retired one is taken out with the comment written above it.

A department's delivery channels (Telegram chat, webhook) are deployment settings of
config.toml's [departments.<id>], not knowledge: they are not edited here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Comment, Table

from bot.answering.cards import Card, build_card
from bot.answering.editing import (
    MAX_LINE_CHARS,
    MAX_LINES,
    FieldSpec,
    _clean_line,
    _plain,
    update_keys,
)
from bot.answering.knowledge_base import (
    ID_PATTERN,
    Department,
    Item,
    KnowledgeBase,
    Problem,
    check_department_data,
)
from bot.core.phones import InvalidPhone, classify_phone

DEPARTMENT_KIND = "department"
# Versions and changes of a department are kept under this key, beside the items' ids.
KEY_PREFIX = "@department:"
DEPARTMENTS_FILE = "departments.toml"
MAX_DEPARTMENT_ID_CHARS = 50
# Ids a new department cannot take: the console's own paths.
RESERVED_IDS = frozenset({"new"})

# The form, in the order of docs/knowledge-base.md ("Departments"), which is also the order of
# a new department's table.
DEPARTMENT_FIELDS = (
    FieldSpec("name", "line", required=True),
    FieldSpec("phone", "line", twin=False),
    FieldSpec("address", "line"),
    FieldSpec("hours", "line"),
    FieldSpec("url", "line", twin=False),
    FieldSpec("complaint_categories", "lines"),
    FieldSpec("complaint_keywords", "lines", twin=False),
    # One line a category: "道路交通秩序: 红绿灯 信号灯" (knowledge_base._category_keywords).
    FieldSpec("complaint_category_keywords", "lines", twin=False),
)
# A phone field may hold more than one number, with words around them.
_NUMBER = re.compile(r"[+(]?\d[\d\s\-()]*\d")


def department_key(department_id: str) -> str:
    """Return the key a department's changes and versions are stored under."""
    return KEY_PREFIX + department_id


def department_of_key(key: str) -> str | None:
    """Return the department id of a stored key, None for an item's."""
    return key.removeprefix(KEY_PREFIX) if key.startswith(KEY_PREFIX) else None


def department_field_names() -> list[str]:
    """Return every key the form writes, twins right after their field."""
    names = ["id"]
    for spec in DEPARTMENT_FIELDS:
        names.append(spec.name)
        if spec.twin:
            names.append(spec.name + "_en")
    return names


def _shape(name: str) -> str:
    base = name.removesuffix("_en")
    return next((s.shape for s in DEPARTMENT_FIELDS if s.name == base), "line")


def department_from_form(
    form: Mapping[str, str], department_id: str, existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Return a department's fields from a posted form (one list entry per line; empty fields
    left out). Keys the form does not show are kept as `existing` has them."""
    content: dict[str, Any] = {"id": department_id}
    names = department_field_names()
    for name in names[1:]:
        raw = form.get(name, "")
        raw = raw if isinstance(raw, str) else ""
        if _shape(name) == "lines":
            values = [v for v in (_clean_line(line) for line in raw.splitlines()) if v]
            if values:
                content[name] = values
        else:
            value = _clean_line(raw)
            if value:
                content[name] = value
    for key, value in (existing or {}).items():
        if key not in names:
            content[key] = value
    return content


def ordered_department(content: Mapping[str, Any]) -> dict[str, Any]:
    """Return the fields in the form's order (keys the form does not show last, as found)."""
    known = {key: content[key] for key in department_field_names() if key in content}
    return known | {key: value for key, value in content.items() if key not in known}


# -- the file ------------------------------------------------------------------------------------


def departments_in_file(text: str) -> list[dict[str, Any]]:
    """Return every department table of departments.toml as plain values."""
    entries = tomllib.loads(text).get("departments", [])
    return [_plain(entry) for entry in entries if isinstance(entry, dict)]


def department_content(text: str | None, department_id: str) -> dict[str, Any] | None:
    """Return one department's fields as the file holds them, None when it has none."""
    if text is None:
        return None
    for entry in departments_in_file(text):
        if entry.get("id") == department_id:
            return entry
    return None


def department_table_text(text: str | None, department_id: str) -> str:
    """Return one department's table as departments.toml writes it ("" when it has none): what
    a version keeps, so that versions differ by the department's own lines only."""
    if text is None:
        return ""
    try:
        tables = tomlkit.parse(text).get("departments")
    except TOMLKitError:
        return ""
    for table in tables if isinstance(tables, AoT) else ():
        if table.get("id") == department_id:
            lines = table.as_string().rstrip().split("\n")
            # Comment lines at its end stand above the next table.
            while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
                lines.pop()
            return "[[departments]]\n" + "\n".join(lines) + "\n"
    return ""


def department_hash(content: Mapping[str, Any] | None) -> str:
    """Return the SHA-256 of a department's fields ("" for none): a proposal made against other
    values cannot overwrite them, while changes of other departments leave it valid."""
    if content is None:
        return ""
    canonical = json.dumps(_plain(dict(content)), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _inline_value(value: Any) -> Any:
    """Return a value for tomlkit; arrays on one line, as departments.toml writes them."""
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(value)
        return array
    return value


def _trailing_comments(table: Table) -> list[Comment]:
    """Take the comment lines that end a table's body: they stand above the next table."""
    body = table.value.body
    taken: list[Comment] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Comment):
        comment = body.pop()[1]
        assert isinstance(comment, Comment)
        taken.insert(0, comment)
    return taken


def render_departments_file(original: str, department_id: str, content: Any) -> str:
    """Return departments.toml with one department edited, added or (`content` None) removed.

    Raises ValueError when the file cannot be edited so, or when the result would not read back
    as exactly the other departments unchanged and this one as `content`.
    """
    try:
        document = tomlkit.parse(original)
    except TOMLKitError as error:
        raise ValueError(f"departments.toml is not valid TOML: {error}") from error
    tables = document.get("departments")
    if not isinstance(tables, AoT):
        raise ValueError("departments.toml has no [[departments]] tables")
    index = next((i for i, table in enumerate(tables) if table.get("id") == department_id), None)
    before = departments_in_file(original)
    if content is None:
        if index is None:
            raise ValueError(f"departments.toml has no department '{department_id}'")
        # The comments above the next table move up; those above this one go with it.
        below = _trailing_comments(tables[index])
        if index > 0:
            _trailing_comments(tables[index - 1])
            for comment in below:
                tables[index - 1].value.body.append((None, comment))
        elif index + 1 < len(tables):
            following = tables[index + 1]
            following.trivia.indent = (
                "".join(c.as_string() for c in below) + following.trivia.indent
            )
        del tables[index]
        expected = [entry for entry in before if entry.get("id") != department_id]
    elif index is None:
        table = tomlkit.table()
        for key, value in ordered_department(content).items():
            table[key] = _inline_value(value)
        table.trivia.indent = "\n"
        tables.append(table)
        expected = [*before, _plain(dict(content))]
    else:
        update_keys(tables[index], ordered_department(content), _inline_value)
        expected = [
            _plain(dict(content)) if entry.get("id") == department_id else entry
            for entry in before
        ]
    text = tomlkit.dumps(document)
    written = tomllib.loads(text)
    others = {k: v for k, v in tomllib.loads(original).items() if k != "departments"}
    if (
        departments_in_file(text) != expected
        or {k: v for k, v in written.items() if k != "departments"} != others
    ):
        raise ValueError("the written file would not read back as the departments")
    return text


# -- checking ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepartmentCheck:
    """What the checks found in a department's draft: the department, problems, warnings."""

    department: Department | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.department is not None and not self.problems

    def by_field(self) -> dict[str, list[Problem]]:
        """Return problems and warnings by field name ("" for the department as a whole)."""
        found: dict[str, list[Problem]] = {}
        for problem in (*self.problems, *self.warnings):
            found.setdefault(problem.field or "", []).append(problem)
        return found


def phone_problems(text: str, name: str) -> tuple[list[Problem], list[Problem]]:
    """Check each number of a phone field with the numbering plan: (problems, warnings)."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    numbers = _NUMBER.findall(unicodedata.normalize("NFKC", text))
    if not numbers:
        return [Problem(name, "phone", "holds no phone number")], []
    for number in numbers:
        try:
            verdict = classify_phone(number.strip())
        except InvalidPhone:
            problems.append(Problem(name, "phone", f"'{number.strip()}' is not a phone number"))
            continue
        if verdict == "unknown":
            warnings.append(
                Problem(
                    name,
                    "phone",
                    f"the numbering plan does not know '{number.strip()}': check the area "
                    "code and the digits",
                )
            )
    return problems, warnings


def _bounds(content: Mapping[str, Any], name: str) -> list[Problem]:
    problems = []
    for key, value in content.items():
        if isinstance(value, list):
            if len(value) > MAX_LINES:
                problems.append(Problem(name, key, f"at most {MAX_LINES} lines"))
            if any(isinstance(v, str) and len(v) > MAX_LINE_CHARS for v in value):
                problems.append(
                    Problem(name, key, f"each line at most {MAX_LINE_CHARS} characters")
                )
        elif isinstance(value, str) and len(value) > MAX_LINE_CHARS:
            problems.append(Problem(name, key, f"at most {MAX_LINE_CHARS} characters"))
    return problems


def check_department_draft(
    content: Mapping[str, Any], kb: KnowledgeBase, *, existing_id: str | None
) -> DepartmentCheck:
    """Check a department's draft with the checks of `kb check`, its phone with the numbering
    plan, and the editor's bounds. `existing_id` is the department edited (None: a new one,
    whose id must be free and kebab-case)."""
    department_id = str(content.get("id", ""))
    name = f"{DEPARTMENTS_FILE} ({department_id or 'new'})"
    problems = _bounds(content, name)
    warnings: list[Problem] = []
    if existing_id is None and department_id:
        if not ID_PATTERN.match(department_id):
            problems.append(
                Problem(name, "id", f"'{department_id}' is not kebab-case ASCII (a-z, 0-9, -)")
            )
        elif len(department_id) > MAX_DEPARTMENT_ID_CHARS:
            problems.append(Problem(name, "id", f"at most {MAX_DEPARTMENT_ID_CHARS} characters"))
        elif department_id in kb.departments or department_id in RESERVED_IDS:
            problems.append(
                Problem(name, "id", f"duplicate id '{department_id}': the id is taken")
            )
    url = content.get("url")
    if isinstance(url, str) and url and not url.startswith(("https://", "http://")):
        problems.append(Problem(name, "url", "must start with https:// or http://"))
    phone = content.get("phone")
    if isinstance(phone, str) and phone:
        found, doubtful = phone_problems(phone, name)
        problems.extend(found)
        warnings.extend(doubtful)
    department = check_department_data(content, name=name, problems=problems, warnings=warnings)
    return DepartmentCheck(department if not problems else None, tuple(problems), tuple(warnings))


def with_department(
    kb: KnowledgeBase, department: Department | None, remove: str | None = None
) -> KnowledgeBase:
    """Return the knowledge base with one department added, replaced or (`remove`) taken out."""
    departments = dict(kb.departments)
    if remove is not None:
        departments.pop(remove, None)
    if department is not None:
        departments[department.id] = department
    return dataclasses.replace(kb, departments=departments)


# -- what residents see --------------------------------------------------------------------------


def items_of(kb: KnowledgeBase, department_id: str) -> list[Item]:
    """Return the department's items, by id."""
    return sorted(
        (item for item in kb.items.values() if item.department == department_id),
        key=lambda item: item.id,
    )


def sample_item(kb: KnowledgeBase, department_id: str) -> Item | None:
    """Return the item whose card shows the department best: one without a phone of its own
    (its card shows the department's), else the first."""
    items = items_of(kb, department_id)
    for item in items:
        if not item.text.get("phone"):
            return item
    return items[0] if items else None


def items_writing(kb: KnowledgeBase, department_id: str, words: str) -> list[Item]:
    """Return the department's items that write `words` (an old phone number) in their own
    texts — answer, phone or any other field: a department's change does not reach them."""
    if not words:
        return []
    found = []
    for item in items_of(kb, department_id):
        texts = [item.answer, item.title, *item.text.values()]
        texts += [line for lines in item.lists.values() for line in lines]
        if any(words in text for text in texts):
            found.append(item)
    return found


@dataclass(frozen=True, slots=True)
class CardPreview:
    """An item's answer card in both languages, before and after a department's change."""

    item: Item
    before: dict[str, Card]
    after: dict[str, Card]


def card_preview(
    kb: KnowledgeBase, department_id: str, department: Department | None
) -> CardPreview | None:
    """Return the cards of the department's sample item now and with `department` instead."""
    item = sample_item(kb, department_id)
    if item is None:
        return None
    after_kb = with_department(kb, department, remove=department_id)
    languages: Sequence[str] = ("zh", "en")
    return CardPreview(
        item,
        {language: build_card(item, kb, language) for language in languages},
        {language: build_card(item, after_kb, language) for language in languages},
    )
