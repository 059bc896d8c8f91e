"""Idempotency receipts: a command that may arrive twice saves one, in the same transaction
as its effects.

The receipt's id is derived from the idempotency key, so a second command with the same key
collides with the first one's receipt instead of repeating its effects. The receipt keeps a
fingerprint of the request and the first result: a repeat is answered with that result, and
the same key on a different request is refused.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.errors import IdempotencyKeyReusedError, InvalidTextError
from ledger.events import CopiedCheaply, SharedWhenCopied

_RECEIPT_NAMESPACE = UUID("a9d4c0de-5b7e-4a13-8f0c-6c1f2e9b7d45")
KEY_LIMIT = 255


def receipt_id_for(key: str) -> UUID:
    if not isinstance(key, str) or not key or len(key) > KEY_LIMIT:
        raise InvalidTextError(
            f"idempotency key must be a string of 1 to {KEY_LIMIT} characters", field="idempotency_key"
        )
    return uuid5(_RECEIPT_NAMESPACE, key)


def fingerprint(command: str, arguments: dict[str, Any]) -> str:
    """A stable digest of what was asked: the command's name and its arguments."""
    canonical = json.dumps({"command": command, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Receipt(CopiedCheaply, Aggregate):
    TOPIC = "receipt"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Recorded(Event, Aggregate.Created):
        TOPIC = "receipt.recorded"
        key: str
        command: str
        fingerprint: str
        result: dict[str, Any]

    Created = Recorded  # the library looks for a "Created" event; ours has a domain name

    def __init__(self, key: str, command: str, fingerprint: str, result: dict[str, Any]) -> None:
        self.key = key
        self.command = command
        self.fingerprint = fingerprint
        self.result = result

    @classmethod
    def record(cls, *, key: str, command: str, fingerprint: str, result: dict[str, Any], at: datetime) -> Receipt:
        return cls._create(
            cls.Recorded,
            id=receipt_id_for(key),
            timestamp=at,
            key=key,
            command=command,
            fingerprint=fingerprint,
            result=result,
        )

    def replay(self, fingerprint: str) -> dict[str, Any]:
        """The first result, if this is the same request again."""
        if fingerprint != self.fingerprint:
            raise IdempotencyKeyReusedError(self.key)
        return self.result
