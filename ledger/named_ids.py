"""Deterministic ids (`uuid5`) remembered for the ids a webhook derives again and again.

A webhook derives the same few ids several times (its provider-event record, its payment and
the payment's waiting movements: in the batch's lookup, in the step, in the save), about 7
`uuid5` per webhook at some 5 us each (a SHA-1 and a UUID built in Python). The result depends
only on the arguments, so a bounded cache answers the repeats (docs/throughput.md §Webhook
path).
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

# Ids of the deliveries in flight: a group-commit batch is at most a few hundred webhooks,
# each naming a handful of ids. Bounded, so a long-running server does not grow with it.
CACHED_IDS = 4_096


@lru_cache(maxsize=CACHED_IDS)
def named_id(namespace: UUID, name: str) -> UUID:
    """`uuid5(namespace, name)`, remembered."""
    return uuid5(namespace, name)
