"""The parameters of one Bot API call, read from the query string and a JSON, form or multipart body.

python-telegram-bot posts form fields whose non-string values are JSON-encoded and puts uploads
in multipart parts; other clients post JSON. Telegram accepts all of them, and so do we: a value
is kept as it came and converted when a method asks for it as a given type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tryout.local_bot_api.errors import ApiError

ATTACH_PREFIX = "attach://"


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


class Params:
    """Typed access to the parameters of one call; wrong types become Telegram's 400 errors."""

    def __init__(
        self, values: dict[str, object], files: dict[str, UploadedFile] | None = None
    ) -> None:
        self._values = values
        self._files = files or {}

    @classmethod
    async def from_request(cls, request: web.Request) -> Params:
        """Read the query string and the body of `request`."""
        values: dict[str, object] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as error:
                    raise ApiError.bad_request("can't parse JSON body") from error
                if not isinstance(body, dict):
                    raise ApiError.bad_request("JSON body must be an Object")
                values.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        files[name] = UploadedFile(
                            name, value.filename, value.content_type, value.file.read()
                        )
                    else:
                        values[name] = value
        return cls(values, files)

    def recorded(self) -> dict[str, Any]:
        """Return the values for the call log, with uploads summarised."""
        record: dict[str, Any] = dict(self._values)
        for name, upload in self._files.items():
            record[name] = f"<upload {upload.filename!r}, {len(upload.data)} bytes>"
        return record

    def has(self, name: str) -> bool:
        """Tell whether the parameter was given (an empty string counts as absent)."""
        return self._values.get(name) not in (None, "") or name in self._files

    def text(self, name: str) -> str | None:
        """Return a string parameter; numbers are accepted and converted like Telegram does."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise ApiError.bad_request(f'field "{name}" must be of type String')

    def integer(self, name: str) -> int | None:
        """Return an integer parameter, or None when it is absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ApiError.bad_request(f'field "{name}" must be of type Integer')

    def number(self, name: str) -> float | None:
        """Return a float parameter, or None when it is absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ApiError.bad_request(f'field "{name}" must be of type Float')

    def flag(self, name: str) -> bool:
        """Return a boolean parameter; absent means false."""
        value = self._values.get(name)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
            return value.strip().lower() in ("true", "1")
        raise ApiError.bad_request(f'field "{name}" must be of type Boolean')

    def structured(self, name: str, description: str | None = None) -> object:
        """Return a JSON object or array parameter (JSON-encoded in forms), or None."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as error:
                raise ApiError.bad_request(
                    description or f"can't parse {name} JSON object"
                ) from error
        return value

    def upload(self, name: str) -> UploadedFile | None:
        """Return the file uploaded for `name`, directly or through an attach:// reference."""
        if name in self._files:
            return self._files[name]
        value = self._values.get(name)
        if isinstance(value, str) and value.startswith(ATTACH_PREFIX):
            attached = self._files.get(value[len(ATTACH_PREFIX) :])
            if attached is None:
                raise ApiError.bad_request(f"file for {value} was not uploaded")
            return attached
        return None
