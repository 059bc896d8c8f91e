"""`ledger invoice pdf ID -o FILE [--version N]`: an invoice's PDF written to a file.

The id is the invoice's UUID, as `ledger invoice show` takes it. Prints the path written. An
unknown invoice exits 3; a missing font (FontMissingError) or a file that cannot be written
exits 2, as the CLI's other refusals do.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.bootstrap import bootstrap
from adapters.pdf.render import render_invoice_pdf
from adapters.settings import Settings
from ledger.errors import InvoiceDeletedError, InvoiceNotFoundError
from ledger.invoices import DELETED


def add_commands(invoice: Any) -> None:
    """Register `pdf` on the `ledger invoice` subparsers."""
    pdf = invoice.add_parser("pdf", help="write one invoice as a PDF file")
    pdf.add_argument("invoice_id", type=_uuid)
    pdf.add_argument("-o", "--output", required=True, type=Path, help="the file to write (replaced if it exists)")
    pdf.add_argument("--version", type=_version, default=None, help="an earlier version of the invoice")
    pdf.set_defaults(run=run_pdf)


def run_pdf(args: argparse.Namespace) -> int:
    settings = Settings.from_environment()
    app = bootstrap(settings)
    try:
        invoice = app.invoice(args.invoice_id, version=args.version)
    finally:
        app.close()
    if args.version is not None and invoice.version != args.version:
        raise InvoiceNotFoundError(f"{args.invoice_id} version {args.version}")
    if invoice.status == DELETED:
        raise InvoiceDeletedError(invoice.id)
    body = render_invoice_pdf(invoice, seller=settings.seller, font_dir=settings.pdf_font_dir)
    try:
        _write(args.output, body)
    except OSError as error:
        print(f"ledger: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(args.output)
    return 0


def _write(path: Path, body: bytes) -> None:
    """All or nothing: a reader of `path` never sees half a PDF."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(body)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an invoice id (a UUID)") from None


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version (an integer from 1)")
    return int(text)
