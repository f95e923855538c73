"""The Consul and consul-template binaries that local mode uses, run for real: a dev agent
on free loopback ports, a service with an HTTP check against a server this test runs, and
consul-template rendering that service once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from shopctl.consul_build import ensure_consul_binaries

pytestmark = pytest.mark.integration

SERVICE = "shop-probe"
PASSING_WITHIN = 10.0
TEMPLATE = '{{ range service "shop-probe" }}{{ .Address }}:{{ .Port }}\n{{ end }}'


@dataclass(frozen=True)
class Agent:
    http: str  # host:port of the agent's HTTP API
    consul_template: Path


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _api(agent: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://{agent}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "PUT",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def _wait_for(what: str, seconds: float, probe: Any) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = probe()
        except OSError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds:.0f}s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    consul, consul_template = ensure_consul_binaries()
    http, serf_lan, serf_wan, server = _free_ports(4)
    log_path = tmp_path_factory.mktemp("consul") / "agent.log"
    # Every port off its default or off: nothing collides with an agent already running.
    flags = {
        "-node": "shopstack-test",
        "-bind": "127.0.0.1",
        "-client": "127.0.0.1",
        "-http-port": str(http),
        "-https-port": "-1",
        "-dns-port": "-1",
        "-grpc-port": "-1",
        "-grpc-tls-port": "-1",
        "-serf-lan-port": str(serf_lan),
        "-serf-wan-port": str(serf_wan),
        "-server-port": str(server),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(consul), "agent", "-dev", *chain.from_iterable(flags.items())],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{http}"
    try:
        _wait_for("a Consul leader", 20, lambda: _api(address, "/v1/status/leader"))
        yield Agent(address, consul_template)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        print(log_path.read_text()[-3000:])


@pytest.fixture(scope="module")
def registered(agent: Agent, health_server: int) -> int:
    _api(
        agent.http,
        "/v1/agent/service/register",
        {
            "Name": SERVICE,
            "ID": f"{SERVICE}-1",
            "Address": "127.0.0.1",
            "Port": health_server,
            "Check": {
                "HTTP": f"http://127.0.0.1:{health_server}/health",
                "Interval": "1s",
                "Timeout": "1s",
            },
        },
    )
    return health_server


def test_service_with_an_http_check_becomes_passing(agent: Agent, registered: int) -> None:
    entries = _wait_for(
        f"{SERVICE} passing",
        PASSING_WITHIN,
        lambda: _api(agent.http, f"/v1/health/service/{SERVICE}?passing"),
    )
    assert [entry["Service"]["Port"] for entry in entries] == [registered]
    assert {check["Status"] for check in entries[0]["Checks"]} == {"passing"}


def test_consul_template_renders_the_service_once(
    agent: Agent, registered: int, tmp_path: Path
) -> None:
    _wait_for(
        f"{SERVICE} passing",
        PASSING_WITHIN,
        lambda: _api(agent.http, f"/v1/health/service/{SERVICE}?passing"),
    )
    source, rendered = tmp_path / "in.ctmpl", tmp_path / "out.txt"
    source.write_text(TEMPLATE)
    command = [str(agent.consul_template), "-once", "-consul-addr", agent.http]
    subprocess.run(
        [*command, "-template", f"{source}:{rendered}"],
        check=True,
        capture_output=True,
        timeout=20,
    )
    assert rendered.read_text() == f"127.0.0.1:{registered}\n"
