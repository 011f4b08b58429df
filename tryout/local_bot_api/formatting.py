"""Telegram's message formatting: parse modes into plain text and entities, and back to HTML.

The parsers follow tdlib's (the library behind Telegram's Bot API server), including its error
messages, so a bot that would get "can't parse entities" from Telegram gets it here too. One
deliberate difference: by default a bare "&" that starts no HTML entity is rejected, while
Telegram lets it through; that is the character a bot most often forgets to escape.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Every entity type a bot may send in `entities`/`caption_entities`.
ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)

HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)

_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
}

_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityParseError(ValueError):
    """A text that Telegram refuses with "can't parse entities: <reason>"."""


@dataclass(frozen=True)
class Entity:
    """One MessageEntity; offset and length count UTF-16 code units, as in the Bot API."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    user_id: int | None = None
    custom_emoji_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        """Return the Bot API JSON object."""
        data: dict[str, Any] = {"offset": self.offset, "length": self.length, "type": self.type}
        if self.url is not None:
            data["url"] = self.url
        if self.language is not None:
            data["language"] = self.language
        if self.user_id is not None:
            data["user"] = {"id": self.user_id, "is_bot": False, "first_name": str(self.user_id)}
        if self.custom_emoji_id is not None:
            data["custom_emoji_id"] = self.custom_emoji_id
        return data


@dataclass(frozen=True)
class FormattedText:
    """Plain text and its entities, after Telegram parsed and trimmed them."""

    text: str
    entities: tuple[Entity, ...] = ()

    def entities_api(self) -> list[dict[str, Any]]:
        """Return the entities as Bot API JSON."""
        return [entity.to_api() for entity in self.entities]

    @property
    def html(self) -> str:
        """Return the text as Telegram HTML."""
        return entities_to_html(self.text, self.entities_api())


@dataclass
class _Span:
    """An entity under construction, in code-point offsets."""

    type: str
    start: int
    end: int
    url: str | None = None
    language: str | None = None
    user_id: int | None = None
    custom_emoji_id: str | None = None


@dataclass
class _OpenTag:
    name: str
    start: int
    byte_offset: int
    argument: str = ""
    expandable: bool = False


@dataclass
class _Builder:
    """Collects the output text and entities of a parser."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    spans: list[_Span] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def result(self) -> FormattedText:
        return _finish("".join(self.parts), self.spans)


def utf16_length(text: str) -> int:
    """Return the length of `text` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _utf16_offsets(text: str) -> list[int]:
    """Return the UTF-16 offset of every code-point index, and of the end."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets


def _finish(text: str, spans: Iterable[_Span]) -> FormattedText:
    """Trim the text as Telegram does and turn code-point spans into UTF-16 entities."""
    stripped_left = len(text) - len(text.lstrip())
    trimmed = text.strip()
    end_limit = len(trimmed)
    offsets = _utf16_offsets(trimmed)
    entities: list[Entity] = []
    for span in spans:
        start = max(0, span.start - stripped_left)
        end = min(end_limit, span.end - stripped_left)
        if end <= start:
            continue
        entities.append(
            Entity(
                type=span.type,
                offset=offsets[start],
                length=offsets[end] - offsets[start],
                url=span.url,
                language=span.language,
                user_id=span.user_id,
                custom_emoji_id=span.custom_emoji_id,
            )
        )
    entities.sort(key=lambda entity: (entity.offset, -entity.length))
    return FormattedText(trimmed, tuple(entities))


def _link_user_id(url: str) -> int | None:
    match = re.fullmatch(r"tg://user\?id=(\d{1,20})", url.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _link_span(start: int, end: int, url: str) -> _Span | None:
    url = url.strip()
    if not url:
        return None
    user_id = _link_user_id(url)
    if user_id is not None:
        return _Span("text_mention", start, end, user_id=user_id)
    return _Span("text_link", start, end, url=url)


# ---------------------------------------------------------------------------------------------
# HTML


def _decode_html_entity(text: str, index: int) -> tuple[str, int] | None:
    """Decode the HTML entity at text[index] == "&" as tdlib does; None if there is none."""
    position = index + 1
    code: int | None = None
    if position < len(text) and text[position] == "#":
        position += 1
        if position < len(text) and text[position] in "xX":
            position += 1
            match = re.match(r"[0-9A-Fa-f]{1,8}", text[position:])
            if match:
                code = int(match.group(0), 16)
        else:
            match = re.match(r"[0-9]{1,9}", text[position:])
            if match:
                code = int(match.group(0))
        if match is None or code is None or code == 0 or code > 0x10FFFF:
            return None
        if 0xD800 <= code <= 0xDFFF:
            return None
        position += len(match.group(0))
        decoded = chr(code)
    else:
        match = re.match(r"[A-Za-z]+", text[position:])
        if not match or match.group(0) not in _NAMED_HTML_ENTITIES:
            return None
        position += len(match.group(0))
        decoded = _NAMED_HTML_ENTITIES[match.group(0)]
    if position < len(text) and text[position] == ";":
        position += 1
    return decoded, position


def _is_space(char: str) -> bool:
    return char in " \t\r\n\f\v"


def parse_html(source: str, *, strict_ampersand: bool = True) -> FormattedText:
    """Parse Telegram HTML; raise EntityParseError as Telegram would."""
    text = source
    size = len(text)
    out = _Builder()
    stack: list[_OpenTag] = []
    i = 0
    while i < size:
        char = text[i]
        if char == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is None:
                if strict_ampersand:
                    raise EntityParseError(
                        f'Unescaped "&" at byte offset {_byte_offset(text, i)}; write &amp;'
                    )
                out.add("&")
                i += 1
            else:
                out.add(decoded[0])
                i = decoded[1]
            continue
        if char != "<":
            out.add(char)
            i += 1
            continue
        begin = i
        if i + 1 < size and text[i + 1] == "/":
            i = _close_html_tag(text, begin, stack, out)
        else:
            i = _open_html_tag(text, begin, stack, out)
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    return out.result()


def _open_html_tag(text: str, begin: int, stack: list[_OpenTag], out: _Builder) -> int:
    size = len(text)
    tag_end = begin + 1
    while tag_end < size and not _is_space(text[tag_end]) and text[tag_end] != ">":
        tag_end += 1
    if tag_end >= size:
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    tag_name = text[begin + 1 : tag_end].lower()
    if tag_name not in HTML_TAGS:
        raise EntityParseError(
            f'Unsupported start tag "{tag_name}" at byte offset {_byte_offset(text, begin)}'
        )
    tag = _OpenTag(tag_name, out.length, _byte_offset(text, begin))
    i = tag_end
    while True:
        while i < size and _is_space(text[i]):
            i += 1
        if i >= size:
            raise EntityParseError(f"Unclosed start tag at byte offset {tag.byte_offset}")
        if text[i] == ">":
            break
        name_begin = i
        while i < size and not _is_space(text[i]) and text[i] not in "=>":
            i += 1
        attribute = text[name_begin:i].lower()
        if not attribute:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag_name}" at byte offset '
                f"{_byte_offset(text, name_begin)}"
            )
        while i < size and _is_space(text[i]):
            i += 1
        if i >= size or text[i] != "=":
            if tag_name == "blockquote" and attribute == "expandable":
                tag.expandable = True
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag_name}" '
                f"at byte offset {_byte_offset(text, i)}"
            )
        i += 1
        while i < size and _is_space(text[i]):
            i += 1
        if i >= size:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
        value, i = _read_attribute_value(text, i)
        if tag_name == "a" and attribute == "href":
            tag.argument = value
        elif tag_name == "code" and attribute == "class" and value.startswith("language-"):
            tag.argument = value[len("language-") :]
        elif tag_name == "span" and attribute == "class" and value.startswith("tg-"):
            tag.argument = value[len("tg-") :]
        elif tag_name == "tg-emoji" and attribute == "emoji-id":
            tag.argument = value
    if tag_name == "span" and tag.argument != "spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {tag.byte_offset}'
        )
    stack.append(tag)
    return i + 1


def _read_attribute_value(text: str, i: int) -> tuple[str, int]:
    size = len(text)
    if text[i] not in "'\"":
        # An unquoted value is an HTML name token: letters, digits, periods and hyphens.
        begin = i
        while i < size and (text[i].isascii() and (text[i].isalnum() or text[i] in ".-")):
            i += 1
        if i >= size or (not _is_space(text[i]) and text[i] != ">"):
            raise EntityParseError(
                f"Unexpected end of name token at byte offset {_byte_offset(text, i)}"
            )
        return text[begin:i].lower(), i
    quote = text[i]
    i += 1
    value: list[str] = []
    while i < size and text[i] != quote:
        if text[i] == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                value.append(decoded[0])
                i = decoded[1]
                continue
        value.append(text[i])
        i += 1
    if i >= size:
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
    return "".join(value), i + 1


def _close_html_tag(text: str, begin: int, stack: list[_OpenTag], out: _Builder) -> int:
    size = len(text)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
    i = begin + 2
    while i < size and not _is_space(text[i]) and text[i] != ">":
        i += 1
    end_name = text[begin + 2 : i].lower()
    while i < size and _is_space(text[i]):
        i += 1
    if i >= size or text[i] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
    tag = stack[-1]
    if end_name and end_name != tag.name:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
            f'expected "</{tag.name}>", found "</{end_name}>"'
        )
    stack.pop()
    _add_html_span(tag, out)
    return i + 1


def _add_html_span(tag: _OpenTag, out: _Builder) -> None:
    start, end = tag.start, out.length
    if end <= start:
        return
    kind = _TAG_ENTITY[tag.name]
    if kind == "text_link":
        span = _link_span(start, end, tag.argument)
        if span is not None:
            out.spans.append(span)
        return
    if kind == "custom_emoji":
        if tag.argument.isdigit():
            out.spans.append(_Span(kind, start, end, custom_emoji_id=tag.argument))
        return
    if kind == "code" and tag.argument:
        out.spans.append(_Span("code", start, end, language=tag.argument))
        return
    if kind == "pre":
        # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
        for index, span in enumerate(out.spans):
            if span.type == "code" and (span.start, span.end) == (start, end) and span.language:
                del out.spans[index]
                out.spans.append(_Span("pre", start, end, language=span.language))
                return
        out.spans.append(_Span("pre", start, end))
        return
    if kind == "code":
        out.spans.append(_Span("code", start, end))
        return
    if kind == "blockquote" and tag.expandable:
        kind = "expandable_blockquote"
    out.spans.append(_Span(kind, start, end))


# ---------------------------------------------------------------------------------------------
# MarkdownV2

_V2_RESERVED = "_*[]()~`>#+-=|{}.!"


@dataclass
class _V2Open:
    type: str
    start: int
    byte_offset: int
    argument: str = ""


def parse_markdown_v2(source: str) -> FormattedText:
    """Parse MarkdownV2; raise EntityParseError as Telegram would."""
    text = source
    size = len(text)
    out = _Builder()
    stack: list[_V2Open] = []
    quote_start: int | None = None
    i = 0
    while i < size:
        char = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        in_code = bool(stack) and stack[-1].type in ("code", "pre")
        if at_line_start and not in_code:
            if char == ">":
                if quote_start is None:
                    quote_start = out.length
                i += 1
                continue
            if quote_start is not None:
                _close_quote(out, quote_start)
                quote_start = None
        if char == "\\" and i + 1 < size and 0 < ord(text[i + 1]) <= 126:
            out.add(text[i + 1])
            i += 2
            continue
        reserved = "`" if in_code else _V2_RESERVED
        if char not in reserved:
            out.add(char)
            i += 1
            continue
        if stack and _v2_closes(stack[-1].type, text, i):
            i = _v2_close(text, i, stack, out)
            continue
        i = _v2_open(text, i, stack, out)
    if stack:
        raise EntityParseError(
            f"Can't find end of the entity starting at byte offset {stack[-1].byte_offset}"
        )
    if quote_start is not None:
        _close_quote(out, quote_start)
    return out.result()


def _close_quote(out: _Builder, start: int) -> None:
    # The newline that ends the last quoted line is not part of the quote.
    text = "".join(out.parts)
    end = out.length - 1 if text.endswith("\n") else out.length
    if end > start:
        out.spans.append(_Span("blockquote", start, end))


def _v2_closes(kind: str, text: str, i: int) -> bool:
    char = text[i]
    following = text[i + 1] if i + 1 < len(text) else ""
    if kind == "bold":
        return char == "*"
    if kind == "italic":
        return char == "_" and following != "_"
    if kind == "underline":
        return char == "_" and following == "_"
    if kind == "strikethrough":
        return char == "~"
    if kind == "spoiler":
        return char == "|" and following == "|"
    if kind == "code":
        return char == "`"
    if kind == "pre":
        return text.startswith("```", i)
    if kind in ("text_link", "custom_emoji"):
        return char == "]"
    return False


def _v2_open(text: str, i: int, stack: list[_V2Open], out: _Builder) -> int:
    char = text[i]
    begin = i
    following = text[i + 1] if i + 1 < len(text) else ""
    argument = ""
    if char == "_" and following == "_":
        kind, i = "underline", i + 2
    elif char == "_":
        kind, i = "italic", i + 1
    elif char == "*":
        kind, i = "bold", i + 1
    elif char == "~":
        kind, i = "strikethrough", i + 1
    elif char == "|" and following == "|":
        kind, i = "spoiler", i + 2
    elif char == "[":
        kind, i = "text_link", i + 1
    elif char == "!" and following == "[":
        kind, i = "custom_emoji", i + 2
    elif char == "`" and text.startswith("```", i):
        kind, i = "pre", i + 3
        language_end = i
        while language_end < len(text) and not _is_space(text[language_end]):
            if text[language_end] == "`":
                break
            language_end += 1
        if language_end != i and language_end < len(text) and text[language_end] != "`":
            argument = text[i:language_end]
            i = language_end
        # One newline right after the opening fence is not part of the code.
        if text.startswith(("\r\n", "\n\r"), i):
            i += 2
        elif i < len(text) and text[i] in "\r\n":
            i += 1
    elif char == "`":
        kind, i = "code", i + 1
    else:
        raise EntityParseError(
            f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
        )
    stack.append(_V2Open(kind, out.length, _byte_offset(text, begin), argument))
    return i


def _v2_close(text: str, i: int, stack: list[_V2Open], out: _Builder) -> int:
    opened = stack.pop()
    start, end = opened.start, out.length
    kind = opened.type
    if kind in ("underline", "spoiler"):
        i += 2
    elif kind == "pre":
        i += 3
    else:
        i += 1
    if kind in ("text_link", "custom_emoji"):
        url = ""
        if i < len(text) and text[i] == "(":
            url_begin = i + 1
            i += 1
            parts: list[str] = []
            while i < len(text) and text[i] != ")":
                if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                    parts.append(text[i + 1])
                    i += 2
                    continue
                parts.append(text[i])
                i += 1
            if i >= len(text):
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                )
            i += 1
            url = "".join(parts)
        elif kind == "text_link":
            url = "".join(out.parts)[start:end]
        if end > start:
            if kind == "custom_emoji":
                emoji_id = url.removeprefix("tg://emoji?id=")
                if not emoji_id.isdigit():
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                out.spans.append(_Span(kind, start, end, custom_emoji_id=emoji_id))
            else:
                span = _link_span(start, end, url)
                if span is not None:
                    out.spans.append(span)
        return i
    if end > start:
        language = opened.argument or None
        out.spans.append(_Span(kind, start, end, language=language if kind == "pre" else None))
    return i


# ---------------------------------------------------------------------------------------------
# Markdown (legacy)


def parse_markdown(source: str) -> FormattedText:
    """Parse legacy Markdown; raise EntityParseError as Telegram would."""
    text = source
    size = len(text)
    out = _Builder()
    i = 0
    while i < size:
        char = text[i]
        if char == "\\" and i + 1 < size and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        begin = i
        end_char = "]" if char == "[" else char
        is_pre = False
        language = ""
        i += 1
        if char == "`" and text.startswith("``", i):
            i += 2
            is_pre = True
            language_end = i
            while language_end < size and not _is_space(text[language_end]):
                if text[language_end] == "`":
                    break
                language_end += 1
            if language_end != i and language_end < size and text[language_end] != "`":
                language = text[i:language_end]
                i = language_end
        start = out.length
        while i < size and (text[i] != end_char or (is_pre and not text.startswith("```", i))):
            out.add(text[i])
            i += 1
        if i >= size:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        end = out.length
        i += 3 if is_pre else 1
        if char == "[":
            url = ""
            if i < size and text[i] == "(":
                close = text.find(")", i)
                if close == -1:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, i)}"
                    )
                url = text[i + 1 : close]
                i = close + 1
            span = _link_span(start, end, url) if end > start else None
            if span is not None:
                out.spans.append(span)
        elif end > start:
            kind = {"*": "bold", "_": "italic", "`": "pre" if is_pre else "code"}[char]
            out.spans.append(_Span(kind, start, end, language=language or None))
    return out.result()


# ---------------------------------------------------------------------------------------------
# Explicit entities, detection and rendering


def entities_from_api(text: str, raw: object) -> FormattedText:
    """Validate entities a bot sent explicitly (UTF-16 offsets) and trim the text."""
    if not isinstance(raw, list):
        raise EntityParseError("entities must be an Array")
    offsets = _utf16_offsets(text)
    index_of = {offset: index for index, offset in enumerate(offsets)}
    total = offsets[-1]
    spans: list[_Span] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise EntityParseError("entity must be an Object")
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if not isinstance(kind, str) or kind not in ENTITY_TYPES:
            raise EntityParseError(f"unsupported entity type {kind!r}")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0:
            raise EntityParseError("entity offset and length must be non-negative Integers")
        if length <= 0 or offset >= total:
            continue
        end = min(total, offset + length)
        if offset not in index_of or end not in index_of:
            raise EntityParseError("entity boundary splits a UTF-16 surrogate pair")
        url = item.get("url")
        if kind == "text_link" and not (isinstance(url, str) and url):
            raise EntityParseError("text_link entity must have a url")
        language = item.get("language")
        user = item.get("user")
        spans.append(
            _Span(
                kind,
                index_of[offset],
                index_of[end],
                url=url if isinstance(url, str) else None,
                language=language if isinstance(language, str) else None,
                user_id=user.get("id") if isinstance(user, Mapping) else None,
                custom_emoji_id=str(item["custom_emoji_id"])
                if "custom_emoji_id" in item
                else None,
            )
        )
    return _finish(text, spans)


def format_text(
    text: str,
    parse_mode: str | None,
    entities: object = None,
    *,
    strict_ampersand: bool = True,
) -> FormattedText:
    """Parse `text` the way Telegram does for the given parse mode or explicit entities."""
    if entities is not None:
        return entities_from_api(text, entities)
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text, strict_ampersand=strict_ampersand)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    if mode == "":
        return _finish(text, ())
    raise ValueError(f"unsupported parse_mode {parse_mode!r}")


_DETECTORS = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?!\w)")),
    ("email", re.compile(r"(?<![\w.@])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("url", re.compile(r"(?<![\w@])(?:https?://)[^\s<>\"]+[^\s<>\".,;:!?)\]}'，。！？]")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
)


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Find the entities Telegram detects in a user's plain text (commands, links, …)."""
    offsets = _utf16_offsets(text)
    taken: list[tuple[int, int]] = []
    found: list[dict[str, Any]] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < taken_end and taken_start < end for taken_start, taken_end in taken):
                continue
            taken.append((start, end))
            found.append(
                {
                    "offset": offsets[start],
                    "length": offsets[end] - offsets[start],
                    "type": kind,
                }
            )
    found.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return found


_HTML_WRAP = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "spoiler": ("<tg-spoiler>", "</tg-spoiler>"),
    "code": ("<code>", "</code>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote expandable>", "</blockquote>"),
}


def _html_tags(entity: Mapping[str, Any]) -> tuple[str, str]:
    kind = entity.get("type")
    if kind == "text_link":
        return f'<a href="{html.escape(str(entity.get("url", "")))}">', "</a>"
    if kind == "text_mention":
        user_id = (entity.get("user") or {}).get("id")
        return f'<a href="tg://user?id={user_id}">', "</a>"
    if kind == "pre":
        language = entity.get("language")
        if language:
            return f'<pre><code class="language-{html.escape(str(language))}">', "</code></pre>"
        return "<pre>", "</pre>"
    if kind == "custom_emoji":
        return f'<tg-emoji emoji-id="{html.escape(str(entity.get("custom_emoji_id")))}">', (
            "</tg-emoji>"
        )
    return _HTML_WRAP.get(str(kind), ("", ""))


def entities_to_html(text: str, entities: Sequence[Mapping[str, Any]]) -> str:
    """Render text and Bot API entities as Telegram HTML, escaping all text."""
    offsets = _utf16_offsets(text)
    index_of = {offset: index for index, offset in enumerate(offsets)}
    opens: dict[int, list[tuple[int, str, str]]] = {}
    for entity in entities:
        start = index_of.get(int(entity.get("offset", 0)))
        end = index_of.get(int(entity.get("offset", 0)) + int(entity.get("length", 0)))
        if start is None or end is None or end <= start:
            continue
        open_tag, close_tag = _html_tags(entity)
        if open_tag:
            opens.setdefault(start, []).append((end, open_tag, close_tag))
    result: list[str] = []
    closing: list[tuple[int, str]] = []  # a stack of (end, close tag)
    for index in range(len(text) + 1):
        while closing and closing[-1][0] == index:
            result.append(closing.pop()[1])
        if index == len(text):
            break
        for end, open_tag, close_tag in sorted(opens.get(index, []), key=lambda o: -o[0]):
            # Entities that overlap without nesting are clipped to the enclosing one.
            if closing and end > closing[-1][0]:
                end = closing[-1][0]
            result.append(open_tag)
            closing.append((end, close_tag))
        result.append(html.escape(text[index], quote=False))
    while closing:
        result.append(closing.pop()[1])
    return "".join(result)
