"""Tables exported for spreadsheets: CSV (UTF-8 with a byte-order mark) and XLSX.

Any text cell starting with = + - @ tab or carriage return gets a leading apostrophe, so a
resident who writes `=HYPERLINK(...)` in a complaint cannot make a manager's spreadsheet run it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

Cell = str | int | float | None
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
# Excel's own limit is 1,048,576 rows; a bigger export is CSV's job.
MAX_XLSX_ROWS = 200_000


def guard_cell(value: Cell | dt.datetime | dt.date | bool) -> Cell:
    """Return a value safe for a spreadsheet cell: text that looks like a formula is quoted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_line(row: Sequence[Cell]) -> str:
    """Return one CSV line (with its line break) of guarded cells."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([guard_cell(v) for v in row])
    return buffer.getvalue()


async def csv_chunks(
    header: Sequence[str], rows: AsyncIterable[Sequence[Cell]], *, rows_per_chunk: int = 500
) -> AsyncIterator[bytes]:
    """Yield a CSV file in UTF-8 pieces: the byte-order mark (so Excel reads Chinese), the
    header, then the rows."""
    pending = [BOM + csv_line(header)]
    async for row in rows:
        pending.append(csv_line(row))
        if len(pending) >= rows_per_chunk:
            yield "".join(pending).encode("utf-8")
            pending.clear()
    if pending:
        yield "".join(pending).encode("utf-8")


def _xlsx_value(value: Cell) -> Cell:
    guarded = guard_cell(value)
    if isinstance(guarded, str):
        # XML cannot carry most control characters; openpyxl refuses them.
        return ILLEGAL_CHARACTERS_RE.sub("", guarded)
    return guarded


def xlsx_bytes(
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    note: str = "",
) -> bytes:
    """Return an XLSX workbook of one sheet: header, rows, and an optional closing note."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31] or "Sheet1")
    sheet.append([_xlsx_value(h) for h in header])
    for count, row in enumerate(rows, start=1):
        if count > MAX_XLSX_ROWS:
            break
        sheet.append([_xlsx_value(v) for v in row])
    if note:
        sheet.append([])
        sheet.append([_xlsx_value(note)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
