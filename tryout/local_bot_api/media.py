"""Small media helpers: a generated sample photo and image dimensions from file headers."""

from __future__ import annotations

import mimetypes
import struct
import zlib


def sample_png(
    width: int = 96, height: int = 64, rgb: tuple[int, int, int] = (82, 136, 193)
) -> bytes:
    """Return a valid PNG of one colour with a lighter band, for fake photos."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    light = bytes(min(255, channel + 80) for channel in rgb)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "none" for every scanline
        colour = light if height // 3 <= y < 2 * height // 3 else bytes(rgb)
        rows.extend(colour * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) of a PNG, GIF or JPEG, or None if the header is not recognised."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = struct.unpack(">H", data[index + 2 : index + 4])[0]
        # Start-of-frame markers carry the dimensions; C4, C8 and CC are other tables.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def guess_mime_type(file_name: str | None, default: str = "application/octet-stream") -> str:
    """Return the MIME type suggested by a file name."""
    if not file_name:
        return default
    guessed, _ = mimetypes.guess_type(file_name)
    return guessed or default


def extension_for(mime_type: str | None, fallback: str) -> str:
    """Return a file extension (without dot) for a MIME type."""
    if mime_type:
        known = {"image/jpeg": "jpg", "audio/ogg": "oga", "image/webp": "webp"}
        if mime_type in known:
            return known[mime_type]
        guessed = mimetypes.guess_extension(mime_type)
        if guessed:
            return guessed.lstrip(".")
    return fallback
