"""The portal's tokens (commands/portal/tokens.py): only what this secret signed reads back."""

from __future__ import annotations

import base64
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.persistence import ConfigurationError
from adapters.settings import Settings
from commands.portal.tokens import (
    TOKEN_LENGTH,
    TamperedTokenError,
    WeakSecretKeyError,
    keyed_link_id,
    link_id_from,
    require_secret,
    token_for,
)

SECRET = "s" * 16 + "unit-test-secret-0123456789"
OTHER = "o" * 16 + "unit-test-secret-0123456789"
LINK = UUID("3f2b8a52-6f0e-4c1e-9d7a-0b5e1c2d3e4f")


def test_a_token_reads_back_as_its_link_id() -> None:
    token = token_for(LINK, SECRET)
    assert len(token) == TOKEN_LENGTH
    assert token.isascii()
    assert link_id_from(token, SECRET) == LINK


def test_the_same_link_and_secret_give_the_same_token_and_another_secret_another() -> None:
    assert token_for(LINK, SECRET) == token_for(LINK, SECRET)
    assert token_for(LINK, SECRET) != token_for(LINK, OTHER)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(TamperedTokenError):
        link_id_from(token_for(LINK, OTHER), SECRET)


def test_the_signature_of_one_link_does_not_open_another() -> None:
    ours, other = token_for(LINK, SECRET), token_for(uuid4(), SECRET)
    swapped = other.split(".")[0] + "." + ours.split(".")[1]
    with pytest.raises(TamperedTokenError):
        link_id_from(swapped, SECRET)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],  # too short
        lambda t: t + "A",  # too long
        lambda t: t.replace(".", ""),  # no separator
        lambda t: t.replace(".", ":"),
        lambda t: t[:5] + "+" + t[6:],  # not the base64url alphabet
        lambda t: t[:5] + "/" + t[6:],
        lambda t: t[:5] + "=" + t[6:],
        lambda t: t + "\n",
        lambda t: " " + t,
        lambda t: t.upper(),
        lambda t: t.split(".")[1] + "." + t.split(".")[0],  # the parts swapped
        lambda t: "",
    ],
)
def test_malformed_tokens_are_refused(mangle: object) -> None:
    token = token_for(LINK, SECRET)
    assert callable(mangle)
    with pytest.raises(TamperedTokenError):
        link_id_from(mangle(token), SECRET)


def test_a_non_canonical_encoding_of_the_same_bytes_is_refused() -> None:
    """The last character of 16 bytes in base64 carries 2 spare bits: setting them decodes to
    the same bytes, and must not be a second spelling of the token."""
    encoded_id, signature = token_for(LINK, SECRET).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(encoded_id[-1])
    twin = encoded_id[:-1] + alphabet[last | 1]
    assert twin != encoded_id
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(encoded_id + "==")
    with pytest.raises(TamperedTokenError):
        link_id_from(f"{twin}.{signature}", SECRET)


@given(position=st.integers(min_value=0, max_value=TOKEN_LENGTH - 1), bit=st.integers(min_value=0, max_value=7))
def test_no_single_bit_flip_is_ever_accepted(position: int, bit: int) -> None:
    token = token_for(LINK, SECRET)
    flipped = bytearray(token.encode())
    flipped[position] ^= 1 << bit
    try:
        text = flipped.decode()
    except UnicodeDecodeError:
        return  # not even text: a URL could not carry it
    with pytest.raises(TamperedTokenError):
        link_id_from(text, SECRET)


@given(raw=st.binary(min_size=0, max_size=80))
def test_random_bytes_are_never_a_token(raw: bytes) -> None:
    text = raw.decode("latin-1")
    with pytest.raises(TamperedTokenError):
        link_id_from(text, SECRET)


def test_a_short_secret_is_refused_with_a_clear_message() -> None:
    with pytest.raises(WeakSecretKeyError, match="LEDGER_SECRET_KEY must be at least 32 characters"):
        require_secret("x" * 31)
    with pytest.raises(WeakSecretKeyError):
        token_for(LINK, "short")
    assert require_secret("x" * 32) == "x" * 32


def test_keyed_link_ids_are_stable_per_key_and_differ_per_invoice_key_and_secret() -> None:
    invoice = uuid4()
    first = keyed_link_id(SECRET, invoice, "pay-1")
    assert first == keyed_link_id(SECRET, invoice, "pay-1")
    assert first.version == 4
    assert first != keyed_link_id(SECRET, invoice, "pay-2")
    assert first != keyed_link_id(SECRET, uuid4(), "pay-1")
    assert first != keyed_link_id(OTHER, invoice, "pay-1")


def test_the_settings_refuse_a_short_secret_key_at_start() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_SECRET_KEY must be at least 32 characters"):
        Settings.from_environment({"LEDGER_SECRET_KEY": "too-short"}, dotenv_path=None)
    assert Settings.from_environment({}, dotenv_path=None).secret_key is None
    assert Settings.from_environment({"LEDGER_SECRET_KEY": SECRET}, dotenv_path=None).secret_key == SECRET
