"""The load test's HTTP client sends a request again when a kept-alive connection closes
under it before any answer, as browsers do, and only a request that is safe to repeat."""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "loadtest"))
import shoppers

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


class ResettingServer:
    """Answers the first request on each connection and keeps it open; resets the
    connection (RST, nothing answered) when a second request arrives on it, as an nginx
    worker closing its idle connections at a reload does to a request on its way."""

    def __init__(self, *, answer_first: bool = True) -> None:
        """`answer_first=False`: every connection is reset at its first request, as by a
        server that dies with the request in hand."""
        self.answer_first = answer_first
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests_read: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            body += conn.recv(65536)
        return head

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = self._read_request(conn)
            if not head:
                return
            self.requests_read.append(head)
            if self.answer_first:
                conn.sendall(ANSWER)
                if not self._read_request(conn):
                    return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server() -> Iterator[ResettingServer]:
    shoppers.replays.clear()
    running = ResettingServer()
    yield running
    running.close()


def session() -> requests.Session:
    client = requests.Session()
    shoppers.bind(client, "127.0.0.1")
    return client


@pytest.mark.parametrize(
    ("method", "headers"),
    [("GET", {}), ("PUT", {}), ("DELETE", {}), ("POST", {"Idempotency-Key": "k-1"})],
)
def test_a_request_safe_to_repeat_is_sent_again_on_a_new_connection(
    server: ResettingServer, method: str, headers: dict[str, str]
) -> None:
    client = session()
    url = f"http://127.0.0.1:{server.port}/cart/items/oak-desk"
    assert client.request(method, url, json={"quantity": 1}, headers=headers).text == "ok"

    again = client.request(method, url, json={"quantity": 1}, headers=headers)

    assert again.status_code == 200
    assert [r["method"] for r in shoppers.replays] == [method]
    assert shoppers.replays[0]["path"] == "/cart/items/oak-desk"
    # Read twice: the first request, and the repeat on a new connection (the reset one
    # was never answered).
    assert len(server.requests_read) == 2


def test_any_request_on_a_kept_alive_connection_closed_unread_is_sent_again(
    server: ResettingServer,
) -> None:
    client = session()
    url = f"http://127.0.0.1:{server.port}/auth/login"
    client.post(url, json={})

    assert client.post(url, json={}).status_code == 200

    assert [r["method"] for r in shoppers.replays] == ["POST"]
    assert len(server.requests_read) == 2


def test_a_post_without_a_key_reset_on_a_fresh_connection_is_not_sent_again() -> None:
    """The server may have read it: only a request safe to repeat goes again."""
    shoppers.replays.clear()
    server = ResettingServer(answer_first=False)
    try:
        url = f"http://127.0.0.1:{server.port}/auth/login"
        with pytest.raises(requests.ConnectionError):
            session().post(url, json={})
        assert shoppers.replays == []
        assert len(server.requests_read) == 1

        with pytest.raises(requests.ConnectionError):
            session().get(url)  # sent again once, and reset again
        assert [r["method"] for r in shoppers.replays] == ["GET"]
    finally:
        server.close()


def test_a_refused_connection_is_a_failure_not_a_replay() -> None:
    shoppers.replays.clear()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        session().get(f"http://127.0.0.1:{port}/products")
    assert shoppers.replays == []
