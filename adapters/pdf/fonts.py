"""The TrueType fonts the invoices are set in: DejaVu Sans, regular and bold.

Embedded TrueType (not the PDF core fonts, which know Latin-1 only) is what lets a customer
named "Αθηνά" or "Дмитрий" see their name. Debian's fonts-dejavu-core puts them in
DEFAULT_FONT_DIR; LEDGER_PDF_FONT_DIR points elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
