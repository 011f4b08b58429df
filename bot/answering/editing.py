"""Editing one item of the knowledge base: its fields as a form, the checks of `kb check`, the
TOML file written with tomlkit, and a readable difference between two versions.

Nothing here touches the database or the live knowledge base; `publishing.py` does, and the
console's editor (bot/console/views/knowledge.py) shows what this module says.

The TOML file stays the source of truth. An edit changes only the keys whose values changed, so
comments and the layout of everything else are kept; a new item is written in the order of
docs/knowledge-base.md.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import tomlkit
from tomlkit.exceptions import TOMLKitError

from bot.answering.knowledge_base import (
    ITEM_FOLDERS,
    Item,
    KnowledgeBase,
    Problem,
    check_item_data,
)

Shape = Literal["line", "text", "lines", "choice"]
KINDS = ("guide", "disclosure")
FOLDER_OF_KIND = {kind: folder for folder, kind in ITEM_FOLDERS.items()}

# Bounds the files never had to state: a form is hostile until checked.
MAX_LINE_CHARS = 300
MAX_TEXT_CHARS = 3000
MAX_LINES = 60
MAX_ID_CHARS = 80


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of the editor's form: its name, its shape, and whether it has an `_en` twin."""

    name: str
    shape: Shape
    twin: bool = True
    required: bool = False


# The form, in the order of docs/knowledge-base.md (which is also the order of a new file).
COMMON_HEAD = (
    FieldSpec("title", "line", required=True),
    FieldSpec("category", "line", required=True),
    FieldSpec("department", "choice", twin=False, required=True),
    FieldSpec("questions", "lines", required=True),
    FieldSpec("keywords", "lines", twin=False),
    FieldSpec("answer", "text", required=True),
)
GUIDE_FIELDS = (
    FieldSpec("materials", "lines"),
    FieldSpec("steps", "lines"),
    FieldSpec("fee", "line"),
    FieldSpec("time_limit", "line"),
    FieldSpec("location", "line"),
    FieldSpec("hours", "line"),
    FieldSpec("phone", "line", twin=False),
    FieldSpec("legal_basis", "lines"),
)
DISCLOSURE_FIELDS = (
    FieldSpec("disclosure", "choice", twin=False),
    FieldSpec("period", "line"),
    FieldSpec("published_in", "line"),
    FieldSpec("exempt_reason", "text"),
    FieldSpec("alternative", "text"),
    FieldSpec("phone", "line", twin=False),
)
COMMON_TAIL = (
    FieldSpec("url", "line", twin=False),
    FieldSpec("related", "lines", twin=False),
)


def form_fields(kind: str) -> tuple[FieldSpec, ...]:
    """Return the fields of an item of this kind, as the form shows them."""
    middle = GUIDE_FIELDS if kind == "guide" else DISCLOSURE_FIELDS
    return COMMON_HEAD + middle + COMMON_TAIL


def field_names(kind: str) -> list[str]:
    """Return every key the form writes for this kind, twins right after their field."""
    names = ["id", "kind"]
    for spec in form_fields(kind):
        names.append(spec.name)
        if spec.twin:
            names.append(spec.name + "_en")
    return names


def _clean_line(text: str) -> str:
    kept = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(kept.split())


def _clean_text(text: str) -> str:
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(
            "".join(c for c in line if not unicodedata.category(c).startswith("C")).strip()
        )
    return "\n".join(lines).strip()


def content_from_form(form: Mapping[str, str], kind: str, item_id: str) -> dict[str, Any]:
    """Return an item's fields from a posted form (texts cleaned, one list entry per line).

    Empty fields are left out, as they would be from a file. Values are not cut short here, so
    that a field too long is reported beside the field rather than silently shortened.
    """
    content: dict[str, Any] = {"id": item_id, "kind": kind}
    for name in field_names(kind)[2:]:
        raw = form.get(name, "")
        raw = raw if isinstance(raw, str) else ""
        spec_shape = _shape_of(kind, name)
        if spec_shape == "lines":
            values = [_clean_line(line) for line in raw.splitlines()]
            values = [v for v in values if v]
            if values or name in ("questions", "keywords"):
                content[name] = values
        elif spec_shape == "text":
            value = _clean_text(raw)
            if value:
                content[name] = value
        else:
            value = _clean_line(raw)
            if value:
                content[name] = value
    return content


def _shape_of(kind: str, name: str) -> Shape:
    base = name.removesuffix("_en")
    for spec in form_fields(kind):
        if spec.name == base:
            return spec.shape
    return "line"


def form_values(content: Mapping[str, Any] | None) -> dict[str, str]:
    """Return an item's fields as the form's texts (lists one entry per line)."""
    values: dict[str, str] = {}
    for key, value in (content or {}).items():
        if isinstance(value, list):
            values[key] = "\n".join(str(v) for v in value)
        elif value is not None:
            values[key] = str(value)
    return values


def content_of_item_file(text: str) -> dict[str, Any]:
    """Return the fields of an item's file as plain values (`updated` left out: it is set when
    a change is published)."""
    data = tomllib.loads(text)
    return {key: _plain(value) for key, value in data.items() if key != "updated"}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def file_hash(text: str | None) -> str:
    """Return the SHA-256 of a file's text ("" for no file)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else ""


# -- checking ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftCheck:
    """What the checks found in a draft: the item it makes, problems that block, warnings."""

    item: Item | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.item is not None and not self.problems

    def by_field(self) -> dict[str, list[Problem]]:
        """Return problems and warnings by field name ("" for the item as a whole)."""
        found: dict[str, list[Problem]] = {}
        for problem in (*self.problems, *self.warnings):
            found.setdefault(problem.field or "", []).append(problem)
        return found


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
        elif isinstance(value, str):
            limit = (
                MAX_TEXT_CHARS
                if _shape_of(str(content.get("kind", "guide")), key) == "text"
                else MAX_LINE_CHARS
            )
            if key == "id":
                limit = MAX_ID_CHARS
            if len(value) > limit:
                problems.append(Problem(name, key, f"at most {limit} characters"))
    url = content.get("url")
    if isinstance(url, str) and url and not url.startswith(("https://", "http://")):
        problems.append(Problem(name, "url", "must start with https:// or http://"))
    return problems


def check_draft(
    content: Mapping[str, Any], kb: KnowledgeBase, *, existing_id: str | None
) -> DraftCheck:
    """Check a draft with the checks of `kb check`, and the editor's bounds.

    `existing_id` is the item being edited (None for a new item, whose id must be free).
    """
    kind = str(content.get("kind", ""))
    item_id = str(content.get("id", ""))
    if kind not in KINDS:
        return DraftCheck(None, (Problem("(draft)", "kind", "not 'guide' or 'disclosure'"),), ())
    name = f"{FOLDER_OF_KIND[kind]}/{item_id or '(new)'}.toml"
    problems: list[Problem] = []
    warnings: list[Problem] = []
    problems.extend(_bounds(content, name))
    if existing_id is None and item_id:
        taken = item_id in kb.items or any(
            (kb.directory / folder / f"{item_id}.toml").exists() for folder in ITEM_FOLDERS
        )
        if taken:
            problems.append(Problem(name, "id", f"duplicate id '{item_id}': the id is taken"))
    disclosure = content.get("disclosure")
    if kind == "guide" and disclosure:
        problems.append(Problem(name, "disclosure", "only disclosure items have this field"))
    item = check_item_data(
        content,
        name=name,
        stem=item_id,
        root=kb.directory,
        expected_kind=kind,
        departments=kb.departments,
        problems=problems,
        warnings=warnings,
    )
    for related in item.related if item else ():
        if related not in kb.items or related == item_id:
            warnings.append(Problem(name, "related", f"unknown item '{related}'; it is not shown"))
    return DraftCheck(item if not problems else None, tuple(problems), tuple(warnings))


def with_item(kb: KnowledgeBase, item: Item | None, remove: str | None = None) -> KnowledgeBase:
    """Return the knowledge base with one item added, replaced or (`remove`) taken out."""
    items = dict(kb.items)
    if remove is not None:
        items.pop(remove, None)
    if item is not None:
        items[item.id] = item
    return dataclasses.replace(kb, items=items)


# -- writing -------------------------------------------------------------------------------------


def _toml_value(value: Any) -> Any:
    """Return a value for tomlkit; arrays of more than one entry one per line, indented by two
    spaces as the bundled files are."""
    if isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) for v in value):
        lines = "".join(f"  {json.dumps(v, ensure_ascii=False)},\n" for v in value)
        return tomlkit.parse(f"value = [\n{lines}]\n")["value"]
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(value)
        return array
    return value


def _unwrapped(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def update_keys(container: Any, wanted: Mapping[str, Any], value_of: Callable[[Any], Any]) -> None:
    """Make a tomlkit table or document hold exactly `wanted`, rewriting only the keys whose
    values changed (comments and the layout of the others stay); `value_of` writes a new value.
    """
    for key in list(container.keys()):
        if key not in wanted:
            del container[key]
    for key, value in wanted.items():
        if key in container and _plain(_unwrapped(container[key])) == _plain(value):
            continue
        present = container.get(key)
        if isinstance(present, list) and isinstance(value, list):
            old = _plain(_unwrapped(present))
            if old and value[: len(old)] == old:
                # Only added at the end (a new phrasing): keep the array as it is written.
                for entry in value[len(old) :]:
                    present.append(entry)
                continue
        container[key] = value_of(value)


def render_item_file(
    content: Mapping[str, Any], original: str | None, updated: dt.date | None
) -> str:
    """Return the item's file: `original` with only the changed keys rewritten, or a new file.

    Comments and the layout of keys whose values stay are kept. Raises ValueError when the
    result would not read back as exactly `content` (and `updated`).
    """
    try:
        document = tomlkit.parse(original) if original else tomlkit.document()
    except TOMLKitError as error:
        raise ValueError(f"the item's file is not valid TOML: {error}") from error
    wanted: dict[str, Any] = dict(content)
    if updated is not None:
        wanted["updated"] = updated
    elif "updated" in document:
        wanted["updated"] = _unwrapped(document["updated"])
    update_keys(document, wanted, _toml_value)
    text = tomlkit.dumps(document)
    if _plain(tomllib.loads(text)) != _plain(wanted):
        raise ValueError("the written file would not read back as the item")
    return text


def ordered_content(content: Mapping[str, Any]) -> dict[str, Any]:
    """Return the fields in the form's order (unknown keys last, as found)."""
    kind = str(content.get("kind", "guide"))
    order = field_names(kind if kind in KINDS else "guide")
    known = {key: content[key] for key in order if key in content}
    return known | {key: value for key, value in content.items() if key not in known}


# -- differences ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs between two versions."""

    name: str
    before: str
    after: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def field_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[FieldChange]:
    """Return the fields that differ, lists also as lines added and removed."""
    old = dict(before or {})
    new = dict(after or {})
    names = list(ordered_content(new | old))
    changes = []
    for name in names:
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if isinstance(a, list) or isinstance(b, list):
            left = [str(v) for v in (a or [])]
            right = [str(v) for v in (b or [])]
            changes.append(
                FieldChange(
                    name,
                    "\n".join(left),
                    "\n".join(right),
                    added=tuple(v for v in right if v not in left),
                    removed=tuple(v for v in left if v not in right),
                )
            )
        else:
            changes.append(
                FieldChange(name, "" if a is None else str(a), "" if b is None else str(b))
            )
    return changes


def text_diff(before: str, after: str, name: str = "") -> list[tuple[str, str]]:
    """Return a unified diff of two files as (kind, line): kind is "+", "-", "@" or " "."""
    lines = []
    for line in difflib.unified_diff(
        before.splitlines(), after.splitlines(), f"a/{name}", f"b/{name}", lineterm="", n=2
    ):
        if line.startswith(("---", "+++")):
            continue
        kind = line[:1] if line[:1] in "+-@" else " "
        lines.append((kind, line))
    return lines


def first_lines(values: Sequence[str], count: int) -> list[str]:
    """Return up to `count` distinct non-empty values, in order."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
        if len(seen) >= count:
            break
    return list(seen)


# -- browsing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Haystack:
    """Every item's searchable text, lower-cased, joined into one string with NUL between
    items, so that a word is looked for with one `str.find` scan instead of one per item."""

    kb: KnowledgeBase
    ids: tuple[str, ...]
    texts: dict[str, str]
    joined: str
    starts: tuple[int, ...]

    def holding(self, word: str) -> set[str]:
        """Return the ids of the items whose text holds `word`."""
        found: set[str] = set()
        position = self.joined.find(word)
        while position >= 0:
            index = bisect.bisect_right(self.starts, position) - 1
            found.add(self.ids[index])
            # Go on from the next item: one hit per item is enough.
            following = (
                self.starts[index + 1] if index + 1 < len(self.starts) else len(self.joined)
            )
            position = self.joined.find(word, following)
        return found


_HAYSTACKS: dict[int, _Haystack] = {}


def _haystack(kb: KnowledgeBase) -> _Haystack:
    """The knowledge base's haystack, built once per loaded knowledge base."""
    cached = _HAYSTACKS.get(id(kb))
    if cached is not None and cached.kb is kb:
        return cached
    texts = {
        item.id: "\n".join(
            (
                item.id,
                item.title,
                item.text.get("title_en", ""),
                item.category,
                *item.questions,
                *item.questions_en,
                *item.keywords,
            )
        ).lower()
        for item in kb.items.values()
    }
    ids = tuple(texts)
    starts = []
    offset = 0
    for item_id in ids:
        starts.append(offset)
        offset += len(texts[item_id]) + 1
    haystack = _Haystack(kb, ids, texts, "\x00".join(texts[i] for i in ids), tuple(starts))
    _HAYSTACKS.clear()
    _HAYSTACKS[id(kb)] = haystack
    return haystack


@dataclass(frozen=True, slots=True)
class ItemPage:
    """One page of the editor's list."""

    items: tuple[Item, ...]
    total: int
    offset: int


def search_items(
    kb: KnowledgeBase,
    *,
    query: str = "",
    kind: str = "",
    department: str = "",
    only: frozenset[str] | None = None,
    offset: int = 0,
    limit: int = 50,
) -> ItemPage:
    """Return the items whose id, titles, category, questions or keywords hold every word of
    `query`, of a kind and department, by id."""
    words = [w.replace("\x00", "") for w in query.lower().split() if w][:10]
    words = [w for w in words if w]
    holding: set[str] | None = None
    if words:
        haystack = _haystack(kb)
        holding = haystack.holding(max(words, key=len))
        holding = {i for i in holding if all(w in haystack.texts[i] for w in words)}
    found = []
    for item in kb.items.values():
        if holding is not None and item.id not in holding:
            continue
        if kind and item.kind != kind:
            continue
        if department and item.department != department:
            continue
        if only is not None and item.id not in only:
            continue
        found.append(item)
    found.sort(key=lambda i: i.id)
    return ItemPage(tuple(found[offset : offset + limit]), len(found), offset)


# -- synonym groups ------------------------------------------------------------------------------

MAX_SYNONYM_GROUPS = 2000
MAX_GROUP_WORDS = 30


def synonym_groups_from_text(text: str) -> list[list[str]]:
    """Return the groups of a form: one group a line, words separated by commas or 、."""
    groups = []
    for line in text.replace("\r\n", "\n").split("\n"):
        words = [_clean_line(w) for w in line.replace("，", ",").replace("、", ",").split(",")]
        words = [w for w in words if w]
        if words:
            groups.append(words)
    return groups


def check_synonym_groups(groups: Sequence[Sequence[str]]) -> list[Problem]:
    """Check groups as `kb check` reads them, with the editor's bounds."""
    problems = []
    if len(groups) > MAX_SYNONYM_GROUPS:
        problems.append(Problem("synonyms.toml", "groups", f"at most {MAX_SYNONYM_GROUPS} lines"))
    for number, group in enumerate(groups, start=1):
        where = f"groups[{number}]"
        if len(group) < 2:
            problems.append(Problem("synonyms.toml", where, "a group needs at least two words"))
        if len(group) > MAX_GROUP_WORDS:
            problems.append(Problem("synonyms.toml", where, f"at most {MAX_GROUP_WORDS} words"))
        if any(len(word) > 60 for word in group):
            problems.append(Problem("synonyms.toml", where, "each word at most 60 characters"))
    return problems


def render_synonyms_file(groups: Sequence[Sequence[str]], original: str | None) -> str:
    """Return synonyms.toml with `groups`: groups that stay keep their lines and comments;
    changed, removed and added groups are edited in place. Raises ValueError when the result
    would not read back as `groups`."""
    wanted = [list(group) for group in groups]
    try:
        document = tomlkit.parse(original) if original else tomlkit.document()
    except TOMLKitError as error:
        raise ValueError(f"synonyms.toml is not valid TOML: {error}") from error
    present = document.get("groups")
    if not isinstance(present, list):
        document["groups"] = _toml_value(wanted) if wanted else tomlkit.array()
    else:
        old = [list(map(str, _unwrapped(group))) for group in present]
        matcher = difflib.SequenceMatcher(a=[tuple(g) for g in old], b=[tuple(g) for g in wanted])
        for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
            if tag == "equal":
                continue
            for index in reversed(range(i1, i2)):
                del present[index]
            for offset, group in enumerate(wanted[j1:j2]):
                array = tomlkit.array()
                array.extend(group)
                present.insert(i1 + offset, array)
    text = tomlkit.dumps(document)
    if _plain(tomllib.loads(text).get("groups", [])) != wanted:
        raise ValueError("the written file would not read back as the groups")
    return text
