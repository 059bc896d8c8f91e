"""The page frame of an invoice: A4 in DejaVu Sans, a status mark across every page, and a footer
that names the invoice and says "Page X of Y"."""

from __future__ import annotations

from fpdf import FPDF

from adapters.pdf.fonts import FAMILY, Fonts, typeface

MARGIN = 15.0  # mm, every side
FOOTER_SPACE = 18.0  # mm kept free at the foot of each page for the footer
BODY_SIZE = 9.0  # pt

# Light enough that the text printed over the mark stays readable in greyscale.
MARK_COLOURS: dict[str, tuple[int, int, int]] = {
    "DRAFT": (225, 225, 225),
    "VOID": (245, 205, 205),
    "PAID": (205, 235, 210),
    "UNCOLLECTIBLE": (245, 225, 200),
}
MARK_SIZE = 96.0  # pt; longer words are set smaller so they fit the page's diagonal
MARK_WIDTH = 200.0  # mm the word may span along the diagonal


class InvoiceDocument(FPDF):
    """An FPDF whose header draws the status mark and whose footer numbers the pages."""

    def __init__(self, fonts: Fonts, *, mark: str | None, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        for style, path in (("", fonts.regular), ("B", fonts.bold)):
            parsed = typeface(path)
            if parsed is None:
                self.add_font(FAMILY, style, str(path))
            else:
                parsed.attach(self, FAMILY, style)  # add_font without parsing the file again
        self.mark = mark
        self.footer_text = footer_text
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=FOOTER_SPACE)
        self.set_font(FAMILY, size=BODY_SIZE)

    def header(self) -> None:
        # Drawn first on each page, so the invoice's text lies over the mark, never under it.
        if self.mark is not None:
            self._draw_mark(self.mark)

    def footer(self) -> None:
        self.set_y(-FOOTER_SPACE + 6)
        self.set_font(FAMILY, size=7.5)
        self.set_text_color(110, 110, 110)
        self.cell(self.epw / 2, 5, self.footer_text, align="L")
        self.cell(self.epw / 2, 5, f"Page {self.page_no()} of {{nb}}", align="R")

    def _draw_mark(self, word: str) -> None:
        size = MARK_SIZE
        self.set_font(FAMILY, "B", size)
        width = self.get_string_width(word)
        if width > MARK_WIDTH:
            size = size * MARK_WIDTH / width
            self.set_font(FAMILY, "B", size)
            width = self.get_string_width(word)
        centre_x, centre_y = self.w / 2, self.h / 2
        colour = MARK_COLOURS.get(word, (225, 225, 225))
        with self.local_context(text_color=colour), self.rotation(45, x=centre_x, y=centre_y):
            # text() places the baseline: lower it by about a third of the size to centre the word.
            self.text(centre_x - width / 2, centre_y + size * 0.352778 / 3, word)
