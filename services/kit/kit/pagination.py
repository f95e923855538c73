"""Opaque keyset-pagination cursors: the sort key of a page's last row, encoded so that
clients pass it back unchanged; anything else is a 422 that says to start over."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from kit.errors import ShopError

_SEPARATOR = "|"


class InvalidCursor(ShopError):
    status = 422
    type = "invalid-cursor"
    title = "Invalid cursor"


def encode_cursor(*key: str) -> str:
    return base64.urlsafe_b64encode(_SEPARATOR.join(key).encode()).decode()


def decode_cursor(cursor: str, *, parts: int) -> list[str]:
    try:
        # validate=True: characters outside the alphabet are an error, not skipped.
        raw = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True)
        key = raw.decode().split(_SEPARATOR)
    except (binascii.Error, UnicodeDecodeError):
        key = []
    if len(key) != parts:
        raise InvalidCursor("The cursor is not one this API gave out; start without it.")
    return key


def encode_time_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """For lists newest first, keyed on (created_at, id): stable under inserts."""
    return encode_cursor(at.isoformat(), str(row_id))


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, row_id = decode_cursor(cursor, parts=2)
    try:
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this API gave out; start without it.") from exc
