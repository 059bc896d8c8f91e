"""A signed event whose payload lacks what its type promises is refused; a bug below the Stripe
handlers is not (refusing would settle the event for good and lose its money)."""

from __future__ import annotations

import pytest

from commands.provider_events import VerifiedEvent
from commands.stripe_events import UnreadableEventError, _raised_reading_the_payload, handle
from commands.work import Work
from tests.unit.given import T0


def _raise_type_error() -> None:
    raise TypeError("a bug in some other module")


def test_a_payload_without_its_fields_is_unreadable() -> None:
    event = VerifiedEvent("evt_1", "payment_intent.succeeded", 1, False, {"id": "pi_1"}, "{}")
    with pytest.raises(UnreadableEventError, match="amount_received"):
        handle(Work(lambda _: None), event, T0)


def test_an_error_raised_outside_the_stripe_handlers_is_not_taken_for_a_bad_payload() -> None:
    with pytest.raises(TypeError) as raised:
        _raise_type_error()
    assert _raised_reading_the_payload(raised.value) is False
    with pytest.raises(KeyError) as read:
        {}["amount"]  # as a handler reads a payload, but raised in this frame
    assert _raised_reading_the_payload(read.value) is False  # this test's frame, not the handlers'
