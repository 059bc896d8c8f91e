"""`named_id`: the remembered `uuid5` the webhook path derives its ids with. The ids are stored
(as aggregate ids), so they must stay exactly what they were before the cache."""

from __future__ import annotations

from uuid import UUID, uuid5

from commands.ingestion.provider_events import provider_event_id
from ledger.deferred import deferred_id_for
from ledger.named_ids import CACHED_IDS, named_id
from ledger.payments import payment_id_for

A = UUID("0b7e5c9a-2d41-4f38-b6e0-91c2a7d4e853")
B = UUID("6f0f7f4e-1c2b-4a6e-9a55-0d1c3b8a2e11")


def test_the_webhook_path_s_ids_are_the_ones_stored_before_the_cache() -> None:
    # Computed with the code before `named_id` (plain uuid5); each twice: the second answer is
    # the cache's.
    for _ in range(2):
        assert provider_event_id("stripe", "evt_1NG8Du2eZvKYlo2CUI79vXWy") == UUID(
            "8b240f16-2311-57e2-b2ac-71b26a20dc59"
        )
        assert payment_id_for("stripe", "pi_3MtwBwLkdIwHu7ix28a3tqPa") == UUID("2bd06696-72e6-5707-881c-0cbabc3bd9be")
        assert deferred_id_for("stripe", "pi_3MtwBwLkdIwHu7ix28a3tqPa") == UUID("8d5ccde0-6cc0-5fed-bebb-974c925bcb30")


def test_one_name_in_two_namespaces_is_two_ids_cache_or_not() -> None:
    for _ in range(2):
        assert named_id(A, "stripe:x") == uuid5(A, "stripe:x")
        assert named_id(B, "stripe:x") == uuid5(B, "stripe:x")
    assert named_id(A, "stripe:x") != named_id(B, "stripe:x")


def test_the_cache_stays_bounded_and_answers_right_past_its_bound() -> None:
    names = [f"stripe:evt_{n}" for n in range(CACHED_IDS + 10)]
    assert [named_id(A, name) for name in names] == [uuid5(A, name) for name in names]
    assert named_id.cache_info().currsize <= CACHED_IDS
    assert named_id(A, names[0]) == uuid5(A, names[0])  # evicted, derived again
