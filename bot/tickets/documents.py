"""The document a department gives a disclosure applicant with its answer: a file or a link.

A file comes from the console (an upload), from the department's Telegram group (a document
sent in reply to the bot's prompt) or, as a link, from the signed callback API. Every file is
checked before it is stored: its size (at most `[disclosure] max_document_bytes`, never more than
Telegram lets a bot send) and its type, by its name *and* its first bytes, so that a page or a
program renamed to `.pdf` is refused. A link must be http(s) and is passed on as it is: the bot
never fetches it. The console serves stored files as downloads only (bot/console/views/tickets.py).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit

# The kinds of file an answer may carry: extension → (media type, accepted first bytes).
_PDF = (b"%PDF-",)
_ZIP = (b"PK\x03\x04",)
_OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)
DOCUMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", _PDF),
    ".ofd": ("application/ofd", _ZIP),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ZIP,
    ),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
    ".doc": ("application/msword", _OLE),
    ".xls": ("application/vnd.ms-excel", _OLE),
    ".odt": ("application/vnd.oasis.opendocument.text", _ZIP),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet", _ZIP),
    ".zip": ("application/zip", _ZIP),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
}
MAX_FILE_NAME = 120
MAX_URL = 2000
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]')


class DocumentRefused(ValueError):
    """A file or link that cannot go to an applicant; `code` says why (size, type, name, url)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A checked file, ready to store and send."""

    file_name: str
    media_type: str
    content: bytes
    telegram_file_id: str = ""

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class DocumentLink:
    """A checked http(s) link to the document."""

    url: str


Document = DocumentFile | DocumentLink


def allowed_extensions() -> str:
    """Return the accepted extensions, for messages and the console's file picker."""
    return ",".join(DOCUMENT_TYPES)


def safe_file_name(name: str) -> str:
    """Return the last part of a file name, without control or path characters, bounded."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = _UNSAFE_NAME.sub("_", unicodedata.normalize("NFC", base)).strip(" .")
    if len(base) > MAX_FILE_NAME:
        stem, dot, extension = base.rpartition(".")
        keep = MAX_FILE_NAME - len(extension) - 1
        base = f"{stem[:keep]}.{extension}" if dot and keep > 0 else base[:MAX_FILE_NAME]
    return base


def check_file(
    name: str, content: bytes, *, max_bytes: int, telegram_file_id: str = ""
) -> DocumentFile:
    """Return the file checked for size and type; DocumentRefused says what is wrong."""
    file_name = safe_file_name(name)
    if not content:
        raise DocumentRefused("the file is empty", code="empty")
    if len(content) > max_bytes:
        raise DocumentRefused(
            f"the file is {len(content)} bytes; at most {max_bytes} are accepted", code="size"
        )
    extension = PurePosixPath(file_name.lower()).suffix
    known = DOCUMENT_TYPES.get(extension)
    if not file_name or known is None:
        raise DocumentRefused(
            f"{file_name or 'a file without a name'} is not one of {allowed_extensions()}",
            code="type",
        )
    media_type, signatures = known
    if not content.startswith(signatures):
        raise DocumentRefused(
            f"{file_name} does not hold what a {extension} file holds", code="type"
        )
    return DocumentFile(file_name, media_type, content, telegram_file_id)


def check_link(url: str) -> DocumentLink:
    """Return an http(s) link checked for form (never fetched); DocumentRefused otherwise."""
    text = (url or "").strip()
    if len(text) > MAX_URL or any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in text):
        raise DocumentRefused(
            "the link is too long or holds spaces or control characters", code="url"
        )
    try:
        parts = urlsplit(text)
    except ValueError:
        raise DocumentRefused("the link cannot be read", code="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise DocumentRefused("the link must be an http:// or https:// address", code="url")
    return DocumentLink(text)
