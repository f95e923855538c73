import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from shopctl.topology import ROOT

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_finishes_in_flight_requests_then_exits() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.integration.slow_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "10",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/health/live", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)

        result: dict[str, object] = {}

        def call_slow() -> None:
            response = httpx.get(f"{base}/slow?seconds=2", timeout=10)
            result["status"] = response.status_code
            result["body"] = response.json()

        caller = threading.Thread(target=call_slow)
        caller.start()
        time.sleep(0.5)  # the request is now in flight
        server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # No new connections once SIGTERM arrived...
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/health/live", timeout=1)
        caller.join(10)
        # ...but the request already in flight completed normally.
        assert result == {"status": 200, "body": {"slept": 2.0}}
        # uvicorn re-raises the signal it drained for, so the exit status says SIGTERM.
        assert server.wait(10) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
