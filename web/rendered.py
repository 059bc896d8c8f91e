"""Rendered invoices kept per process, reused while the invoice has no newer event.

A GET of one invoice is answered from here after a single indexed read of the log (is there an
event after the version we rendered?), skipping the aggregate's load, copy and rendering. The
check runs on every request, so a write by any process shows at once; the cache only saves
work, it never serves a stale version. Rendered bytes depend on the day (`overdue`), so the
day is part of what is kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from uuid import UUID


@dataclass(frozen=True)
class Rendered:
    version: int
    day: date
    body: bytes


class RenderedInvoices:
    def __init__(self, max_size: int = 10_000) -> None:
        self._kept: OrderedDict[UUID, Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self._max_size = max_size

    def get(self, invoice_id: UUID, day: date) -> Rendered | None:
        with self._lock:
            kept = self._kept.get(invoice_id)
            if kept is None or kept.day != day:
                return None
            self._kept.move_to_end(invoice_id)
            return kept

    def put(self, invoice_id: UUID, rendered: Rendered) -> None:
        with self._lock:
            current = self._kept.get(invoice_id)
            if current is not None and current.version > rendered.version:
                return  # a newer one was kept meanwhile
            self._kept[invoice_id] = rendered
            self._kept.move_to_end(invoice_id)
            while len(self._kept) > self._max_size:
                self._kept.popitem(last=False)
