"""The invoice_emails read model and the queue the mail worker reads (emails.py)."""
