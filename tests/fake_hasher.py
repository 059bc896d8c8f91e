"""A `PasswordHasher` (commands/ports.py) that is fast and obvious, for tests that are not about
argon2: a salted sha256, with the salt and a cost in the text so `needs_rehash` can be exercised."""

from __future__ import annotations

import hashlib
import hmac
import secrets


class FakeHasher:
    def __init__(self, cost: int = 1) -> None:
        self.cost = cost
        self.verified = 0  # how many verifications ran (the unknown-email path must run one too)

    def hash(self, password: str) -> str:
        salt = secrets.token_hex(8)
        return f"fake${self.cost}${salt}${self._digest(salt, password)}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        parts = password_hash.split("$")
        if len(parts) != 4 or parts[0] != "fake":
            return False
        return hmac.compare_digest(parts[3], self._digest(parts[2], password))

    def needs_rehash(self, password_hash: str) -> bool:
        parts = password_hash.split("$")
        return len(parts) != 4 or parts[1] != str(self.cost)

    @staticmethod
    def _digest(salt: str, password: str) -> str:
        return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()
