"""The bank's PDF letterhead: one A4 document class every statement and receipt is drawn on.

Built on fpdf2 with the DejaVu Sans fonts shipped in aegis/fonts/ (they carry ₹, U+20B9, which
the PDF core fonts do not), so nothing is fetched at run time and every machine renders alike.
Table rows are drawn with `text` at computed positions: `cell`, `multi_cell` and `table()` lay
out every value as a styled paragraph, which made a 10,000-entry statement take 14 s.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from aegis.clock import format_instant

BANK_NAME = "Aegis Bank"
FONT_DIR = Path(__file__).resolve().parent / "fonts"
FAMILY = "DejaVu"
ELLIPSIS = "…"
TOTAL_PAGES = "{nb}"  # replaced by the page count when the document is closed

MARGIN = 12  # mm, left, right and top: A4 leaves 186 mm for a six-column statement
BOTTOM_MARGIN = 18  # room for the footer below the last row
ROW_HEIGHT = 5.5
BODY_SIZE = 8
TABLE_SIZE = 7  # a 24-character transaction id and a crore balance fit their columns
# A note or name can hold anything a sender typed: control characters would break a one-line cell.
_CONTROL = dict.fromkeys([*range(0x00, 0x20), 0x7F], " ")


@dataclass(frozen=True)
class Column:
    title: str
    width: float  # mm
    figure: bool = False  # right-aligned, and never cut


def one_line(text) -> str:
    """Any value as a single line of text (control characters become spaces)."""
    return "" if text is None else str(text).translate(_CONTROL)


class BankDocument(FPDF):
    """A4 portrait, the bank's name and the document's title on every page, "Page N of M" and the
    generation time (IST) in every footer. A table's header row is drawn again on each new page."""

    def __init__(self, *, title: str, generated_at: datetime):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.document_title = title
        self.generated_at = generated_at
        self._columns: Sequence[Column] | None = None
        self.add_font(FAMILY, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FAMILY, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=BOTTOM_MARGIN)
        self.set_title(f"{BANK_NAME} — {title}")
        self.set_author(BANK_NAME)
        self.set_creator(BANK_NAME)
        # The document's own date is the generation time, so the same statement renders to the same bytes.
        self.set_creation_date(generated_at)
        self.alias_nb_pages(TOTAL_PAGES)
        self.add_page()

    # --- every page ----------------------------------------------------------------------

    def header(self):
        self.set_font(FAMILY, "B", 14)
        self.cell(self.epw / 2, 8, BANK_NAME)
        self.set_font(FAMILY, "", 10)
        self.cell(self.epw / 2, 8, self.document_title, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(3)
        self.set_font(FAMILY, "", BODY_SIZE)
        if self._columns is not None and self.page_no() > 1:
            self._draw_table_header()

    def footer(self):
        self.set_y(-12)
        self.set_font(FAMILY, "", 7)
        self.set_text_color(110, 110, 110)
        generated = f"Generated {format_instant(self.generated_at, 'seconds')}"
        self.cell(self.epw / 2, 5, generated)
        self.cell(self.epw / 2, 5, f"Page {self.page_no()} of {TOTAL_PAGES}", align="R")
        self.set_text_color(0, 0, 0)

    # --- helpers -------------------------------------------------------------------------

    def heading(self, text: str, size: float = 12):
        self.set_font(FAMILY, "B", size)
        self.cell(0, 8, one_line(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FAMILY, "", BODY_SIZE)

    def label_value(self, label: str, value, *, label_width: float = 42, size: float = 9, bold: bool = False):
        """One "Label   value" line; the value is truncated to the line."""
        self.set_font(FAMILY, "B", size)
        self.cell(label_width, 5.5, one_line(label))
        self.set_font(FAMILY, "B" if bold else "", size)
        width = self.epw - label_width
        self.cell(width, 5.5, self.fit(one_line(value), width), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FAMILY, "", BODY_SIZE)

    def text_width(self, text: str) -> float:
        """Width in mm of `text` in the current font: its glyphs' advance widths (thousandths of the
        font size) summed, without the fragment layout `get_string_width` builds for each call,
        which costs more than drawing the text."""
        advance = self.current_font.cw
        return sum(map(advance.__getitem__, map(ord, text))) * self.font_size_pt * 0.001 / self.k

    def fit(self, text: str, width: float) -> str:
        """`text` cut to fit `width` mm in the current font (less the cell padding), ending in "…"."""
        room = (width - 2 * self.c_margin) * self.k / (self.font_size_pt * 0.001)  # in advance units
        advance = self.current_font.cw
        widths = list(accumulate(map(advance.__getitem__, map(ord, text))))
        if not widths or widths[-1] <= room:
            return text
        cut = bisect_right(widths, room - advance[ord(ELLIPSIS)])
        return text[:cut].rstrip() + ELLIPSIS

    def table_header(self, columns: Sequence[Column]):
        """Start a table: draw its header row now and again at the top of every later page."""
        self._columns = columns
        if self.will_page_break(2 * ROW_HEIGHT):
            self.add_page()  # header() draws the header row on the new page
        else:
            self._draw_table_header()

    def end_table(self):
        self._columns = None

    def _draw_table_header(self):
        self.set_font(FAMILY, "B", TABLE_SIZE)
        self.set_fill_color(232, 236, 242)
        for column in self._columns:
            align = "R" if column.figure else "L"
            self.cell(column.width, ROW_HEIGHT + 0.5, column.title, border="B", align=align, fill=True)
        self.ln(ROW_HEIGHT + 0.5)
        # Back to the text colour: while the two differ, every `text` call saves and restores the
        # graphics state around itself, which a 10,000-row table pays for 60,000 times.
        self.set_fill_color(0)

    def table_row(self, values: Sequence, *, bold: bool = False, columns: Sequence[Column] | None = None):
        """One row of fixed-width cells on one line each: text is cut with "…" to its column, a
        figure is never cut (one too wide for its column is drawn smaller instead).

        Drawn with `text` at the place `cell` would put it: a statement is thousands of rows, and
        `cell` lays out each value as a styled paragraph first.
        """
        columns = columns or self._columns
        if self.will_page_break(ROW_HEIGHT):
            self.add_page()
        style = "B" if bold else ""
        if self.font_style != style or self.font_size_pt != TABLE_SIZE:
            self.set_font(FAMILY, style, TABLE_SIZE)
        x, padding = self.l_margin, self.c_margin
        baseline = self.y + 0.5 * ROW_HEIGHT + 0.3 * self.font_size
        for column, value in zip(columns, values, strict=True):
            text = one_line(value)
            if text and column.figure:
                width, room = self.text_width(text), column.width - 2 * padding
                if width <= room:
                    self.text(x + column.width - padding - width, baseline, text)
                else:
                    self.set_font_size(TABLE_SIZE * room / width)
                    self.text(x + padding, baseline, text)
                    self.set_font_size(TABLE_SIZE)
            elif text:
                self.text(x + padding, baseline, self.fit(text, column.width))
            x += column.width
        self.ln(ROW_HEIGHT)

    def rule(self):
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())

    def to_bytes(self) -> bytes:
        return bytes(self.output())
