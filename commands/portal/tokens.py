"""The portal link's token: the link's id and a signature of it, so that a URL cannot be made up.

    token = base64url(id's 16 bytes) "." base64url(HMAC-SHA256(key, b"portal-link:v1:" + id's bytes))

without padding (22 + 1 + 43 characters). The key is derived from LEDGER_SECRET_KEY
(HMAC-SHA256(secret, "ledger portal-link signing key v1")), never the raw secret: the same
secret may sign other things later under other labels without one signature standing for another.
The id alone is unguessable (uuid4) and the signature stops an enumeration of the store ever
reaching it: a token that does not verify is refused before the store is read.

A token is checked strictly: exactly those lengths, the base64url alphabet and canonical
encoding, the signature compared in constant time. Revoking and expiry are the link's (the
store's) business, not the token's: a token stays well-formed for ever.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from uuid import UUID

MIN_SECRET_LENGTH = 32
_LABEL = b"portal-link:v1:"
_KEY_LABEL = b"ledger portal-link signing key v1"
_KEYED_LABEL = b"portal-link-id:v1:"
_ID_CHARS = 22  # 16 bytes
_SIGNATURE_CHARS = 43  # 32 bytes
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{_ID_CHARS}}}\.[A-Za-z0-9_-]{{{_SIGNATURE_CHARS}}}")
TOKEN_LENGTH = _ID_CHARS + 1 + _SIGNATURE_CHARS


class WeakSecretKeyError(ValueError):
    """LEDGER_SECRET_KEY is shorter than MIN_SECRET_LENGTH characters (or not text)."""


class TamperedTokenError(ValueError):
    """The token is not one this application signed with its secret (the portal answers 403)."""


def require_secret(secret: object) -> str:
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise WeakSecretKeyError(
            f"LEDGER_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters "
            '(make one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return secret


def signing_key(secret: str) -> bytes:
    return hmac.new(require_secret(secret).encode(), _KEY_LABEL, hashlib.sha256).digest()


def keyed_link_id(secret: str, invoice_id: UUID, key: str) -> UUID:
    """The id of the link a request with idempotency key `key` makes for the invoice: the same for
    a retry, so it meets the link (and the URL) the first try made; unguessable without the
    secret, as a uuid4 is."""
    digest = hmac.new(signing_key(secret), _KEYED_LABEL + invoice_id.bytes + key.encode(), hashlib.sha256).digest()
    return UUID(bytes=digest[:16], version=4)


def token_for(link_id: UUID, secret: str) -> str:
    raw = link_id.bytes
    return f"{_encode(raw)}.{_encode(_signature(raw, secret))}"


def link_id_from(token: str, secret: str) -> UUID:
    """The link id the token carries, if this secret signed it; TamperedTokenError otherwise."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise TamperedTokenError("not a portal token")
    encoded_id, encoded_signature = token.split(".")
    raw = _decode(encoded_id, 16)
    given = _decode(encoded_signature, 32)
    if not hmac.compare_digest(given, _signature(raw, secret)):
        raise TamperedTokenError("the portal token's signature does not match")
    return UUID(bytes=raw)


def _signature(raw: bytes, secret: str) -> bytes:
    return hmac.new(signing_key(secret), _LABEL + raw, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str, size: int) -> bytes:
    """The bytes, only if `text` is their one canonical encoding (no spare bits set)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TamperedTokenError("not a portal token") from None
    if len(raw) != size or _encode(raw) != text:
        raise TamperedTokenError("not a portal token")
    return raw
