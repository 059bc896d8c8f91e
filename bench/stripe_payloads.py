"""Decoding Stripe's webhook payloads into typed values: msgspec Structs against pydantic models.

`python -m bench.stripe_payloads [--rounds N]` prints microseconds per payload (best of 5
rounds) for realistic deliveries built from Stripe's own example objects (fixtures3.json, as
copied into tests/fixtures/stripe_objects.json): `payment_intent.succeeded`, `charge.succeeded`
(the largest object we read) and `checkout.session.completed`.

Each contender does what the webhook path needs: decode the envelope, check types strictly (a
string where an integer belongs is refused), read the object the event carries into a typed
value. Beside them, the way the payload was read before ADR 0014: `json.loads` and dict access
with no type checks. The pydantic models mirror adapters/stripe/payloads.py field for field, in
strict mode; they exist only here, for the measurement (docs/adr/0014-typed-stripe-payloads.md).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import pydantic

from adapters.stripe import STRIPE_API_VERSION
from adapters.stripe.payloads import Charge, CheckoutSession, Envelope, PaymentIntent, read_event
from tests.stripe_payloads import event_payload

# ------------------------------------------------------------------------------ pydantic twins

Strict = pydantic.ConfigDict(strict=True, extra="ignore")


class PRef(pydantic.BaseModel):
    model_config = Strict
    id: str


PExpandable = str | PRef | None


class PData(pydantic.BaseModel):
    model_config = Strict
    object: dict[str, Any]


class PEnvelope(pydantic.BaseModel):
    model_config = Strict
    id: str
    object: Literal["event"]
    type: str
    created: int
    data: PData
    livemode: bool = False
    api_version: str | None = None


class PLastPaymentError(pydantic.BaseModel):
    model_config = Strict
    charge: str | None = None
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class PPaymentIntent(pydantic.BaseModel):
    model_config = Strict
    id: str
    amount: int
    amount_received: int
    currency: str
    status: str
    metadata: dict[str, str]
    latest_charge: PExpandable
    last_payment_error: PLastPaymentError | None
    cancellation_reason: str | None


class PRefund(pydantic.BaseModel):
    model_config = Strict
    id: str
    amount: int
    currency: str
    status: str | None
    payment_intent: PExpandable


class PRefundList(pydantic.BaseModel):
    model_config = Strict
    data: list[PRefund]


class PCharge(pydantic.BaseModel):
    model_config = Strict
    id: str
    amount: int
    amount_captured: int
    captured: bool
    currency: str
    payment_intent: PExpandable
    metadata: dict[str, str]
    failure_code: str | None
    failure_message: str | None
    refunds: PRefundList | None = None


class PCheckoutSession(pydantic.BaseModel):
    model_config = Strict
    id: str
    payment_status: str
    payment_intent: PExpandable
    amount_total: int | None
    currency: str | None
    metadata: dict[str, str] | None
    client_reference_id: str | None


PYDANTIC = {"payment_intent": PPaymentIntent, "charge": PCharge, "checkout.session": PCheckoutSession}
MSGSPEC: dict[str, type[msgspec.Struct]] = {
    "payment_intent": PaymentIntent,
    "charge": Charge,
    "checkout.session": CheckoutSession,
}


# ------------------------------------------------------------------------------ the contenders


def by_hand(text: str) -> object:
    """Before: json.loads, then dict access; no type is checked."""
    body = json.loads(text)
    obj = body["data"]["object"]
    return (body["id"], body["type"], body["created"], obj["id"], obj.get("amount"), obj.get("currency"))


def msgspec_structs(kind: str) -> Callable[[str], object]:
    envelope = msgspec.json.Decoder(Envelope)
    decoder = msgspec.json.Decoder(MSGSPEC[kind])

    def decode(text: str) -> object:
        return decoder.decode(envelope.decode(text).data.object)

    return decode


def pydantic_models(kind: str) -> Callable[[str], object]:
    model = PYDANTIC[kind]

    def decode(text: str) -> object:
        return model.model_validate(PEnvelope.model_validate_json(text).data.object)

    return decode


def pydantic_one_pass(kind: str) -> Callable[[str], object]:
    """pydantic's fastest shape: one model for envelope and object, validated from JSON at once."""

    class Data(pydantic.BaseModel):
        model_config = Strict
        object: PYDANTIC[kind]  # type: ignore[valid-type]

    class Whole(PEnvelope):
        data: Data  # type: ignore[assignment]

    return lambda text: Whole.model_validate_json(text)


def _best(decode: Callable[[str], object], text: str, rounds: int, n: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            decode(text)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


PAYLOADS = {
    "payment_intent": ("payment_intent.succeeded", "payment_intent"),
    "charge": ("charge.succeeded", "charge"),
    "checkout.session": ("checkout.session.completed", "checkout.session"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=5_000)
    args = parser.parse_args(argv)
    print(f"msgspec {msgspec.__version__}, pydantic {pydantic.VERSION}; API version {STRIPE_API_VERSION}")
    print(f"microseconds per payload, best of {args.rounds} rounds of {args.n}")
    header = ("event", "bytes", "by hand", "msgspec", "read_event", "pydantic", "pydantic 1-pass", "pydantic/msgspec")
    rows = []
    for kind, (event_type, resource) in PAYLOADS.items():
        text = event_payload(event_type, resource, event_id="evt_bench").decode()
        timings = [
            _best(by_hand, text, args.rounds, args.n),
            _best(msgspec_structs(kind), text, args.rounds, args.n),
            _best(read_event, text, args.rounds, args.n),
            _best(pydantic_models(kind), text, args.rounds, args.n),
            _best(pydantic_one_pass(kind), text, args.rounds, args.n),
        ]
        ratio = min(timings[3], timings[4]) / timings[1]
        rows.append((event_type, str(len(text)), *(f"{t:.1f}" for t in timings), f"{ratio:.1f}x"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
