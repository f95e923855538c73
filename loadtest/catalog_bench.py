"""Catalog read throughput on this machine: `GET /products/{id}` through the gateway
(nginx -> two cart instances -> Redis cache) next to a bare FastAPI endpoint served by one
uvicorn process on the same machine, measured with wrk in the same run.

Run against a stack started with `make up`: `make bench-catalog`. Each measurement is
bounded (DURATION seconds, CONNECTIONS connections) and stops by itself.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shopctl.install import ensure_debian_packages
from shopctl.topology import Settings

DURATION, CONNECTIONS, THREADS = 10, 32, 2
HERE = Path(__file__).resolve().parent


def wrk(url: str) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rps, out
    return {
        "rps": float(rps.group(1)),
        "p50": ms("50"),
        "p99": ms("99"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    ensure_debian_packages({"wrk": "/usr/bin/wrk"})
    gateway = f"http://127.0.0.1:{Settings.load()['GATEWAY_PORT']}/products/oak-desk"
    httpx.get(gateway).raise_for_status()  # the stack is up and the cache is warm
    port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ],
        cwd=HERE,
    )
    try:
        baseline_url = f"http://127.0.0.1:{port}/products/oak-desk"
        for _ in range(50):
            try:
                httpx.get(baseline_url).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        results = {
            "bare FastAPI (1 process)": wrk(baseline_url),
            "through the gateway": wrk(gateway),
        }
    finally:
        bare.terminate()
        bare.wait(10)
    print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s, GET /products/oak-desk")
    for name, r in results.items():
        print(
            f"  {name:26} {r['rps']:8.0f} req/s   p50 {r['p50']:6.2f} ms   "
            f"p99 {r['p99']:6.2f} ms   non-2xx {r['non_2xx']:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
