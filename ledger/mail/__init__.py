"""Invoice email: one aggregate per send (emails.py, ADR 0020)."""
