"""Password hashes with argon2id (argon2-cffi), the `PasswordHasher` port of commands/ports.py.

argon2-cffi's defaults are RFC 9106's second recommended (low-memory) option (argon2id, t=3, m=64 MiB, p=4):
every hash and every check costs the same memory and time, a login and an offline guess alike.
Each hash encodes its parameters, so raising them later (`needs_rehash`) keeps old hashes usable.
"""

from __future__ import annotations

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Hasher:
    def __init__(self, hasher: Argon2 | None = None) -> None:
        # Tests pass cheaper parameters (argon2.profiles); production keeps the defaults.
        self._hasher = hasher or Argon2()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True
