"""kit.http against real sockets: an answer is read whole, a refused connection is
`Refused` (never sent, safe to send elsewhere), and a connection that closes or stays
silent is `Failed` (maybe sent), within the timeout."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest

from kit.http import Failed, HttpClient, Refused

pytestmark = pytest.mark.unit

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


async def test_an_answer_comes_back_whole_with_the_json_sent() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        seen.append((head, body))
        answer = orjson.dumps({"got": orjson.loads(body)})
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer
        )
        await writer.drain()
        writer.close()

    server, url = await serve(echo)
    client = HttpClient(timeout=2, base_url=url)
    try:
        answer = await client.send("POST", "/v1/charges", {"Idempotency-Key": "k1"}, {"a": 1})
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert answer.status_code == 201
    assert answer.json() == {"got": {"a": 1}}
    assert answer.headers["content-type"] == "application/json"
    head, _ = seen[0]
    assert head.startswith(b"POST /v1/charges HTTP/1.1")
    assert b"idempotency-key: k1" in head.lower()


async def test_a_refused_connection_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    client = HttpClient(timeout=2)
    try:
        with pytest.raises(Refused):
            await client.send("POST", f"http://127.0.0.1:{port}/x")
    finally:
        await client.close()


async def test_a_connection_closed_without_an_answer_has_failed() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    server, url = await serve(hang_up)
    client = HttpClient(timeout=2, base_url=url)
    try:
        with pytest.raises(Failed):
            await client.send("POST", "/x", None, {})
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_a_silent_server_fails_within_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        try:
            await asyncio.sleep(10)
        finally:
            writer.close()

    server, url = await serve(silent)
    client = HttpClient(timeout=0.3, base_url=url)
    started = time.monotonic()
    try:
        with pytest.raises(Failed):
            await client.send("GET", "/x")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 2
