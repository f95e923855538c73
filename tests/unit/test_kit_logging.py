"""The kit's buffered JSON log: lines reach stdout in batches, warnings at once, the
order kept, and a stdout nobody reads costs dropped lines, never a blocked request."""

import io
import json
import logging
import threading
import time

import pytest

from kit import logging as kit_logging
from kit.logging import AccessLog, BufferedLines, JsonFormatter, request_id_var

pytestmark = pytest.mark.unit


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def handler_on(stream: io.StringIO, flush_seconds: float = 60) -> BufferedLines:
    handler = BufferedLines(stream, flush_seconds=flush_seconds)
    handler.setFormatter(JsonFormatter("cart", "cart-1"))
    return handler


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.makeLogRecord({"msg": message, "levelno": level, "levelname": "X"})


def test_info_lines_wait_for_the_batch_and_leave_in_one_write() -> None:
    out = Recording()
    handler = handler_on(out)
    for n in range(100):
        handler.emit(record(f"line {n}"))
    assert out.getvalue() == ""
    handler.flush()
    assert out.writes == 1
    assert [line["message"] for line in lines(out)] == [f"line {n}" for n in range(100)]
    handler.close()


def test_the_writer_thread_flushes_on_its_own_within_the_interval() -> None:
    out = io.StringIO()
    handler = handler_on(out, flush_seconds=0.05)
    handler.emit(record("eventually"))
    deadline = time.monotonic() + 2
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lines(out)[0]["message"] == "eventually"
    handler.close()


def test_a_warning_is_written_at_once_with_what_came_before() -> None:
    out = io.StringIO()
    handler = handler_on(out)
    handler.emit(record("before"))
    handler.emit(record("trouble", logging.WARNING))
    deadline = time.monotonic() + 2
    while len(out.getvalue().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [line["message"] for line in lines(out)] == ["before", "trouble"]
    handler.close()


class Stuck(io.StringIO):
    """A stdout whose reader went away: every write blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(5)
        return super().write(text)


def test_a_stdout_nobody_reads_drops_lines_instead_of_blocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kit_logging, "MAX_BUFFERED_BYTES", 2000)
    out = Stuck()
    handler = handler_on(out, flush_seconds=0.01)
    started = time.monotonic()
    for n in range(500):
        handler.emit(record(f"line {n}", logging.WARNING))
    assert time.monotonic() - started < 1  # the caller never waited on the stuck write
    out.release.set()
    handler.close()
    written = lines(out)
    assert len(written) < 500
    assert any("log lines dropped" in str(line["message"]) for line in written)


def test_access_lines_carry_the_request_id_and_fields() -> None:
    out = io.StringIO()
    handler = handler_on(out)
    AccessLog(handler, {"service": "cart", "instance": "cart-2"}).write(
        "rid-7", {"route": "/products/{product_id}", "status": 200}
    )
    handler.flush()
    (line,) = lines(out)
    assert line["request_id"] == "rid-7"
    assert line["instance"] == "cart-2"
    assert line["status"] == 200
    assert str(line["time"]).endswith("+00:00")
    handler.close()


def test_timestamps_are_iso_utc_to_the_millisecond() -> None:
    from datetime import UTC, datetime

    for moment in (0.0, 1764000000.9995, 1764000001.0004, 1764000059.25):
        expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
        assert kit_logging._timestamp(moment) == expected


def test_log_records_keep_the_request_id_of_their_request() -> None:
    out = io.StringIO()
    handler = handler_on(out)
    token = request_id_var.set("rid-9")
    try:
        handler.emit(record("inside"))
    finally:
        request_id_var.reset(token)
    handler.flush()
    assert lines(out)[0]["request_id"] == "rid-9"
    handler.close()


def test_the_writer_thread_writes_while_another_thread_holds_the_handler_lock() -> None:
    # logging.shutdown() at exit holds the handler's lock while it flushes, and a flush
    # waits for a batch the writer thread is writing. If the writer needed that lock to
    # take its batch, each would wait for the other and the process would never exit.
    out = io.StringIO()
    handler = handler_on(out)
    handler.acquire()
    try:
        handler.add("urgent", urgent=True)  # wakes the writer thread
        deadline = time.monotonic() + 3
        while not out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        written = out.getvalue()
    finally:
        handler.release()
    assert written == "urgent\n"
    handler.flush()  # then the exit's own flush: nothing is left, so it returns at once
    handler.close()
