"""Whatever residents write, no exported cell can start a formula in a spreadsheet, even once the
spreadsheet cuts the text on a separator and drops leading spaces (CSV and XLSX)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator

from hypothesis import example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from bot.core.exports import BOM, Cell, csv_chunks, guard_cell, xlsx_bytes

BOUNDED = settings(max_examples=300, deadline=None)
DANGEROUS = ("=", "+", "-", "@")
# What spreadsheets and their imports split text on; tried one at a time and all together.
SEPARATORS = (",", ";", "\t", "\n", "\r", "|")
SPLITS = [re.escape(separator) for separator in SEPARATORS] + [
    "[" + re.escape("".join(SEPARATORS)) + "]"
]

# Text made mostly of what matters here: formula characters, separators, spaces of several
# kinds, quotes, the control characters XLSX cannot hold, and some ordinary words.
_PIECES = st.sampled_from(
    [
        *DANGEROUS,
        *SEPARATORS,
        " ",
        "\u3000",
        "\xa0",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x1f",
        "\x85",
        "\u2028",
        '"',
        "'",
        "\x00",
        "\x01",
        "\x07",
        "cmd",
        "A0",
        "商店欺诈",
        "噪音",
        "HYPERLINK(",
        "1",
    ]
)
TEXT = st.one_of(
    st.lists(_PIECES, max_size=12).map("".join),
    st.text(max_size=30),
)


def unsafe_pieces(text: str) -> list[str]:
    """Return the pieces of a cell, cut on any separator and stripped, that start a formula."""
    found = []
    for pattern in SPLITS:
        for piece in re.split(pattern, text):
            # What a spreadsheet may skip before it looks: spaces (what `strip` removes) and quotes.
            bare = re.sub(r'^[\s"]*', "", piece)
            if piece.strip().startswith(DANGEROUS) or bare.startswith(DANGEROUS):
                found.append(piece)
    return found


@BOUNDED
@given(TEXT)
@example("商店欺诈;=cmd|' /C calc'!A0")
@example("\t=1+1")
@example('a,"=b')
@example("\u3000-1")
@example("a;\x01=cmd")
def test_no_guarded_cell_can_start_a_formula(text: str) -> None:
    guarded = guard_cell(text)
    assert isinstance(guarded, str)
    assert unsafe_pieces(guarded) == []
    # Only apostrophes are added; nothing the resident wrote is lost.
    assert guarded.replace("'", "") == text.replace("'", "")


async def csv_bytes(cells: list[str]) -> bytes:
    """Return a CSV export of one header and one row."""

    async def rows() -> AsyncIterator[list[Cell]]:
        yield list(cells)

    return b"".join([chunk async for chunk in csv_chunks(["内容"] * len(cells), rows())])


@BOUNDED
@given(st.lists(TEXT, min_size=1, max_size=4))
@example(["商店欺诈;=cmd|' /C calc'!A0", "\t=1"])
def test_no_cell_of_a_csv_export_can_start_a_formula(cells: list[str]) -> None:
    data = asyncio.run(csv_bytes(cells))
    text = data.decode("utf-8").removeprefix(BOM)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert [cell for row in parsed for cell in row if unsafe_pieces(cell)] == []
    # Read as raw text, split on the separators without any CSV parsing, still nothing.
    assert unsafe_pieces(text) == []


@BOUNDED
@given(st.lists(TEXT, min_size=1, max_size=4))
@example(["商店欺诈;=cmd|' /C calc'!A0", "a;\x01=cmd"])
def test_no_cell_of_an_xlsx_export_can_start_a_formula(cells: list[str]) -> None:
    sheet = load_workbook(io.BytesIO(xlsx_bytes("投诉记录", ["内容"], [cells]))).active
    assert sheet is not None
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            assert cell.value is None or not unsafe_pieces(str(cell.value))


def test_numbers_stay_numbers() -> None:
    assert guard_cell(-5) == -5
    assert guard_cell(2.5) == 2.5
    assert guard_cell(True) == 1
    assert guard_cell(None) is None
