"""Invoice email delivery: the SMTP URL (smtp_url.py), the SMTP sender (smtp.py), the message
(message.py) and the worker (worker.py)."""
