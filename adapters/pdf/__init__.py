"""Invoice PDFs, drawn with fpdf2 in DejaVu Sans (docs/pdf.md, docs/adr/0019).

`render.render_invoice_pdf` is the entry point; `fonts` finds the TrueType files, `document` is
the page frame (header, footer, watermark), `sections` draws the parts of an invoice.
"""
