"""The platform's event envelope (ARCHITECTURE.md): `{event_id, type, version,
occurred_at, producer, key, data}`. Types are past-tense (`order.created`); the key is the
aggregate's id (an order id), which is also the Kafka record key.

Each kind of event is a pydantic class on `EventData` (`OrderCreated`, ...), kept by every
service that uses it in its own `events.py`: `new_event` builds the envelope from one and
`Event.parse` reads one back, so a field renamed on one side fails in mypy or at the
boundary as a `MalformedEvent`, never deep inside a handler.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

ENVELOPE_FIELDS = ("event_id", "type", "version", "occurred_at", "producer", "key", "data")


class MalformedEvent(ValueError):
    pass


class EventData(BaseModel):
    """The `data` of one kind of event; a subclass names its past-tense type."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1


D = TypeVar("D", bound=EventData)


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

    def parse(self, kind: builtins.type[D]) -> D:
        """This event's data as `kind`; MalformedEvent if it is another type or does not
        fit (a permanent failure: the record is dead-lettered)."""
        if self.type != kind.event_type:
            raise MalformedEvent(f"expected {kind.event_type}, got {self.type}")
        try:
            return kind.model_validate(self.data)
        except ValidationError as exc:
            raise MalformedEvent(f"{self.type} data does not fit: {exc}") from exc

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


def new_event(data: EventData, *, key: str, producer: str) -> Event:
    return Event(
        type=data.event_type,
        version=data.event_version,
        key=key,
        producer=producer,
        data=data.model_dump(mode="json"),
    )
