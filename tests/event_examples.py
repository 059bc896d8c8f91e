"""Pinned examples of every stored event shape: tests/fixtures/events/<topic>/v<class_version>.json.

Each file holds one stored event exactly as the store keeps it (topic, originator id and
version, and the state as JSON), so that tests/unit/test_event_shapes.py can load every shape
we ever stored through the application's mapper on every run. Examples are recorded once, never
rewritten: a changed shape needs a new `class_version` (and an upcaster from the old one), which
gets a file of its own beside the old one.

To record the examples of new topics or versions, run tests that store them with
`LEDGER_RECORD_EVENT_EXAMPLES=1` (tests/conftest.py calls `record_examples` on every app it
made), for example `LEDGER_RECORD_EVENT_EXAMPLES=1 pytest tests/integration -k sqlite`; then
review and commit the new files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.utils import resolve_topic

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "events"


def example_path(topic: str, class_version: int) -> Path:
    return FIXTURES / topic / f"v{class_version}.json"


def read_example(path: Path) -> dict[str, Any]:
    example: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return example


def record_examples(app: Application[Any]) -> list[Path]:
    """Write an example of each topic and version found in the app's store that has none yet."""
    written: list[Path] = []
    for notification in app.recorder.select_notifications(start=None, limit=10**9):
        cls = resolve_topic(notification.topic)
        path = example_path(notification.topic, getattr(cls, "class_version", 1))
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        example = {
            "topic": notification.topic,
            "class_version": getattr(cls, "class_version", 1),
            "originator_id": str(notification.originator_id),
            "originator_version": notification.originator_version,
            "state": json.loads(notification.state),
        }
        path.write_text(json.dumps(example, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
