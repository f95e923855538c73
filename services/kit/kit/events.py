"""The platform's event envelope (ARCHITECTURE.md): `{event_id, type, version,
occurred_at, producer, key, data}`. Types are past-tense (`order.created`); the key is the
aggregate's id (an order id), which is also the Kafka record key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ENVELOPE_FIELDS = ("event_id", "type", "version", "occurred_at", "producer", "key", "data")


class MalformedEvent(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    type: str
    key: str
    data: dict[str, Any]
    producer: str
    version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def envelope(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "producer": self.producer,
            "key": self.key,
            "data": self.data,
        }

    @classmethod
    def from_envelope(cls, envelope: Any) -> Event:
        if not isinstance(envelope, dict):
            raise MalformedEvent("an event is a JSON object")
        missing = [name for name in ENVELOPE_FIELDS if name not in envelope]
        if missing:
            raise MalformedEvent(f"the envelope lacks {', '.join(missing)}")
        try:
            return cls(
                event_id=uuid.UUID(envelope["event_id"]),
                type=str(envelope["type"]),
                version=int(envelope["version"]),
                occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
                producer=str(envelope["producer"]),
                key=str(envelope["key"]),
                data=dict(envelope["data"]),
            )
        except (TypeError, ValueError) as exc:
            raise MalformedEvent(f"the envelope is malformed: {exc}") from exc
