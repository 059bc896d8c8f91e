"""The dashboard's adapters: argon2 password hashes (passwords.py), server-side sessions
(sessions.py) and the `ledger admin` commands (cli.py)."""
