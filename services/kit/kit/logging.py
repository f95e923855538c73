"""JSON logs, one object per line, each carrying the service, instance and (inside a
request) the request id, so lines from eight instances can be merged and followed.

Lines are buffered: they reach stdout in one write per `FLUSH_SECONDS` (or per
`FLUSH_BYTES`), not one write per line. At thousands of requests a second a write per
access line costs the instance a syscall each and wakes whatever reads its stdout
(supervisord, Docker) as often. A warning or error flushes at once, with everything
before it, and so does the interpreter's exit; a killed instance loses at most the last
`FLUSH_SECONDS` of lines.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

FLUSH_SECONDS = 0.5
FLUSH_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 8 * 1024 * 1024

# Attributes every LogRecord has; anything else was passed through `extra=` and is kept.
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


_second: tuple[int, str] = (0, "")


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC to the millisecond; the part up to the second is formatted once a
    second, not once a line."""
    global _second
    whole = int(created)
    if whole != _second[0]:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.static = {"service": service, "instance": instance}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(
            (key, value) for key, value in record.__dict__.items() if key not in _STANDARD_ATTRS
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class BufferedLines(logging.Handler):
    """Collects formatted lines; a thread of its own writes them in batches (see the
    module's doc), so a slow reader of stdout never blocks the event loop. If stdout
    stops being read, lines past `MAX_BUFFERED_BYTES` are dropped and counted."""

    def __init__(self, stream: TextIO, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__()
        self.stream = stream
        self.flush_seconds = flush_seconds
        self._lines: list[str] = []
        self._size = 0
        self._dropped = 0
        self._due = threading.Event()
        # The buffer has a lock of its own, taken last and held only to swap the list:
        # logging.shutdown() holds the handler's lock while it flushes, and a flush waits
        # on `_writing`, so a writer thread that needed the handler's lock for its batch
        # would wait on that flush for ever (a process that never exits).
        self._buffer = threading.Lock()
        self._writing = threading.Lock()
        self._closed = False
        self._writer = threading.Thread(target=self._write_forever, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.add(line, urgent=record.levelno >= logging.WARNING)

    def add(self, line: str, *, urgent: bool = False) -> None:
        """Queue one line; `urgent` has it (and what came before) written now."""
        with self._buffer:
            if self._size >= MAX_BUFFERED_BYTES:
                self._dropped += 1
                return
            self._lines.append(line)
            self._size += len(line) + 1
            if urgent or self._size >= FLUSH_BYTES:
                self._due.set()

    def flush(self) -> None:
        """Write what is buffered now, in the caller's thread (exit, tests)."""
        self._write()

    def close(self) -> None:
        self._closed = True
        self._due.set()
        self.flush()
        super().close()

    def _take(self) -> str:
        with self._buffer:
            lines, self._lines, self._size = self._lines, [], 0
            dropped, self._dropped = self._dropped, 0
        if dropped:
            lines.append(
                orjson.dumps(
                    {
                        "level": "warning",
                        "message": f"{dropped} log lines dropped: stdout was not read",
                    }
                ).decode()
            )
        return "\n".join(lines) + "\n" if lines else ""

    def _write(self) -> None:
        # One writer at a time (the thread, or a flush at exit), so batches keep their order.
        with self._writing:
            text = self._take()
            if not text:
                return
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # stdout closed under us (shutting down): nothing left to tell it

    def _write_forever(self) -> None:
        while not self._closed:
            self._due.wait(self.flush_seconds)
            self._due.clear()
            self._write()


class AccessLog:
    """The one line per request, written straight to the buffer: a request pays for a
    dict and an orjson encoding, not for a LogRecord and the logging machinery."""

    def __init__(self, handler: BufferedLines, static: dict[str, str]) -> None:
        self.handler = handler
        self.static = static

    def write(self, request_id: str, fields: dict[str, Any]) -> None:
        entry = {
            "time": _timestamp(time.time()),
            "level": "info",
            "logger": "kit.access",
            "message": "request",
            **self.static,
            "request_id": request_id,
            **fields,
        }
        self.handler.add(orjson.dumps(entry).decode())


_access: AccessLog | None = None


def access_log() -> AccessLog | None:
    """Where access lines go; None when logging is not configured (tests) or INFO is off."""
    return _access


def configure_logging(*, service: str, instance: str, level: str) -> None:
    global _access
    handler = BufferedLines(sys.stdout)
    handler.setFormatter(JsonFormatter(service, instance))
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    enabled = logging.getLogger("kit.access").isEnabledFor(logging.INFO)
    _access = AccessLog(handler, {"service": service, "instance": instance}) if enabled else None
    # Our middleware writes the one access line per request; uvicorn's would duplicate it.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("kafka").setLevel(logging.WARNING)
