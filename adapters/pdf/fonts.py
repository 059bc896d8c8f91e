"""The TrueType fonts the invoices are set in: DejaVu Sans, regular and bold.

Embedded TrueType (not the PDF core fonts, which know Latin-1 only) is what lets a customer
named "Αθηνά" or "Дмитрий" see their name. Debian's fonts-dejavu-core puts them in
DEFAULT_FONT_DIR; LEDGER_PDF_FONT_DIR points elsewhere.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from fpdf import FPDF
from fpdf.enums import TextEmphasis
from fpdf.fonts import SubsetMap, TTFFont

from adapters.persistence import ConfigurationError

DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR_FILE = "DejaVuSans.ttf"
BOLD_FILE = "DejaVuSans-Bold.ttf"
FAMILY = "DejaVu"


class FontMissingError(ConfigurationError):
    """A font file the invoice PDFs need is not there: nothing can be rendered until it is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"the invoice PDF font {path} is missing: install fonts-dejavu-core or set LEDGER_PDF_FONT_DIR "
            f"to a directory holding {REGULAR_FILE} and {BOLD_FILE}"
        )


@dataclass(frozen=True)
class Fonts:
    regular: Path
    bold: Path


def find_fonts(directory: Path | None = None) -> Fonts:
    """The font files in `directory` (None: DEFAULT_FONT_DIR); FontMissingError names the first one absent."""
    base = DEFAULT_FONT_DIR if directory is None else directory
    fonts = Fonts(regular=base / REGULAR_FILE, bold=base / BOLD_FILE)
    for path in (fonts.regular, fonts.bold):
        if not path.is_file():
            raise FontMissingError(path)
    return fonts


# Parsing a TrueType file is most of what a PDF costs: fpdf2's TTFFont reads the glyph table, the
# glyph names and the character map of all ~6,000 glyphs to build its widths and glyph ids, about
# 40 ms of CPU per file, for every document. Those figures depend only on the file, so each file
# is parsed once per process and every document gets a copy of the result (typeface() below).
# Writing the PDF subsets each font in place (fontTools), so each document still opens its own
# fontTools font, from a lean copy of the file kept in memory (_lean).


@dataclass(frozen=True)
class _Stamp:
    """What identifies a font file's content without reading it: a file replaced on disk (a new
    file renamed over it, or new bytes written into it) is parsed again."""

    inode: int
    mtime_ns: int
    size: int


@dataclass(frozen=True, eq=False)
class Typeface:
    """One font file parsed once: its bytes, and fpdf2's TTFFont made from them, which is only
    ever copied (attach), never used by a document itself."""

    path: Path
    lean: bytes  # the file less the tables fpdf2's subsetting drops (_lean)
    glyph_order: tuple[str, ...]  # the file's glyph names, which `lean` no longer carries
    template: TTFFont
    fonttools_font: Any  # fontTools' TTFont class, as fpdf2 uses it (_fonttools_font)

    def attach(self, pdf: FPDF, family: str, style: str) -> None:
        """Add this font to `pdf` under `family`/`style`, as `pdf.add_font(family, style, path)`
        would, without parsing the file again.

        The copy shares what no document changes (the character map, the glyph ids) and gets
        its own of what one does: the widths (a defaultdict, which grows on a lookup of a
        character the font lacks), the font descriptor (fpdf2's output sets its name, object
        number and font file), the subset of glyphs used, the glyphs found missing, and the
        fontTools font, which fpdf2 subsets in place when it writes the PDF:
        each document opens its own from the bytes, so two documents rendered at once in two
        threads never touch the same mutable object.
        """
        template = self.template
        style = "".join(sorted(style.upper()))  # as add_font spells it: "BI", never "IB"
        fontkey = f"{family.lower()}{style}"
        font = copy.copy(template)  # every slot, shallow; the mutable ones are replaced below
        font.i = len(pdf.fonts) + 1
        font.fontkey = fontkey
        font.emphasis = TextEmphasis.coerce(style)
        font.ttfont = _fonttools_font(self.fonttools_font, self.lean)
        font.ttfont.setGlyphOrder(list(self.glyph_order))
        font.cw = copy.copy(template.cw)  # keeps the default width for missing characters
        font.desc = copy.copy(template.desc)  # output names it, numbers it and points it at the subset
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.subset = SubsetMap(font)
        pdf.fonts[fontkey] = font


_typefaces: dict[Path, tuple[_Stamp, Typeface | None]] = {}
_typefaces_lock = threading.Lock()


def typeface(path: Path) -> Typeface | None:
    """The font file at `path`, parsed once per process for as long as it is not replaced on
    disk (None: a font to leave to add_font); FontMissingError when it is not there (any more)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise FontMissingError(path) from None
    stamp = _Stamp(status.st_ino, status.st_mtime_ns, status.st_size)
    with _typefaces_lock:
        cached = _typefaces.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        # Parsed under the lock: two threads asking at once for a new file parse it once.
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FontMissingError(path) from None
        parsed = _parse(path, data)
        _typefaces[path] = (stamp, parsed)  # one entry per path: a replaced file's parse is dropped
        return parsed


def _parse(path: Path, data: bytes) -> Typeface | None:
    """fpdf2's TTFFont made from the very bytes the documents will embed, as add_font makes it;
    None for a font whose TTFFont is more than a function of its file (see below)."""
    template = TTFFont(FPDF(), cast(Path, BytesIO(data)), "template", "")
    template.ttffile = path  # what fpdf2 would have named it by
    # The file as fontTools reads it, untouched (TTFFont may have drawn a .notdef into its own).
    fonttools_font = type(template.ttfont)
    raw = _fonttools_font(fonttools_font, data)
    # Left to add_font, parsed per document: a font without a .notdef glyph (fpdf2 draws one
    # into the document's own fontTools font), a colour font (its Type 3 font object belongs to
    # one document), a CFF font (add_font raises the document's PDF version for it) and a
    # variable font (none of which fpdf2 handles the same way as DejaVu's static TrueType).
    if "glyf" in raw and ".notdef" not in raw["glyf"]:
        return None
    if template.color_font is not None or template.is_cff or "fvar" in raw:
        return None
    glyph_order = tuple(raw.getGlyphOrder())  # read before _lean drops the names from the file
    # Each document opens its own (attach): the template's, all ~6,000 glyphs parsed, would be
    # tens of thousands of objects the garbage collector walks through at each full collection.
    template.ttfont = None
    return Typeface(path, _lean(raw), glyph_order, template, fonttools_font)


def _fonttools_font(fonttools_font: Any, data: bytes) -> Any:
    """A fontTools TTFont of `data`, opened as fpdf2 opens one. The class is taken from a font
    fpdf2 made: fontTools is fpdf2's dependency, not one of this layer's
    (tests/unit/test_architecture.py)."""
    # recalcTimestamp=False as in fpdf2: the embedded subset must not depend on today.
    return fonttools_font(BytesIO(data), recalcTimestamp=False, lazy=True)


# What fpdf2 2.8.9's subsetting drops from every embedded font (fpdf/output.py,
# OutputProducer._add_fonts, its Options.drop_tables additions), and what fontTools' subsetter
# drops by default besides: the legacy 'kern' table of a font that has GPOS.
_FPDF2_DROPPED = {"FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT", "CBLC", "EBDT"}
_FPDF2_DROPPED |= {"EBLC", "EBSC", "SVG ", "CPAL", "COLR"}


def _lean(font: Any) -> bytes:
    """The font without tables fpdf2's subsetting would drop from it anyway, and its glyph names
    stored as post format 3 (none): most of what a document's subsetting costs is parsing tables
    (the layout tables and the ~6,000 glyph names more than the glyphs themselves).

    The subsetter is handed the same glyph names (Typeface.attach sets them) and every table it
    keeps, so it writes the same subset, byte for byte (a test compares a document made this way
    with one from plain add_font). Only tables the subsetter drops are dropped here: one it drops
    that is left here (fontTools' other defaults) is still dropped by it, per document.
    """
    has_gpos = "GPOS" in font
    for tag in list(font.keys()):
        if tag in _FPDF2_DROPPED or (tag == "kern" and has_gpos):
            del font[tag]
    font["post"].formatType = 3.0  # no glyph names: the subset is written without them anyway
    out = BytesIO()
    font.save(out)
    return bytes(out.getvalue())
