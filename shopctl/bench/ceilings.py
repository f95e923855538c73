"""The reference servers a run measures the platform against, started by the run and
stopped by the PIDs it started:

- ceiling A: a plain nginx answering `return 200` with a product-sized constant JSON
  body: what this machine serves over HTTP with nothing behind the proxy;
- ceiling B: the same nginx in front of two bare FastAPI instances (`loadtest/bare_app.py`
  on uvicorn, which picks uvloop and httptools as our services do): the proxy and the
  framework with no middleware, cache, database or discovery.

The platform's own gateway has the same shape as B (nginx, keepalive upstreams, two
instances of a service), so the distance from B is what the platform adds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

# What ceiling B's bare instances answer, so that A's body is the same size.
from loadtest.bare_app import PRODUCT
from shopctl.progress import StackError
from shopctl.topology import ROOT

NGINX = Path("/usr/sbin/nginx")
BARE_APP_DIR = ROOT / "loadtest"
START_TIMEOUT_S = 15.0


def free_port() -> int:
    """A port free right now on 127.0.0.1 (the kernel's pick for port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_conf(folder: Path, port: int, upstreams: list[int] | None = None) -> str:
    """A plain nginx on 127.0.0.1:`port`: one worker, no access log, its pid and temp files
    in `folder`. Without `upstreams`, `return 200` with PRODUCT; with them, a proxy to
    those ports on keepalive connections, as the gateway's upstreams are."""
    if upstreams:
        servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstreams)
        upstream = f"    upstream bare {{\n{servers}        keepalive 16;\n    }}\n"
        location = 'proxy_pass http://bare; proxy_http_version 1.1; proxy_set_header Connection "";'
    else:
        upstream = ""
        body = json.dumps(PRODUCT, separators=(",", ":"))
        location = f"default_type application/json; return 200 '{body}';"
    # nginx drops its workers' privileges only when started as root; keep the invoking
    # user so that they can write their temp files here.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"# Rendered by shopctl.bench for one run.\n{user}worker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n{temp}{upstream}"
        f"    server {{\n        listen 127.0.0.1:{port};\n"
        f"        location / {{ {location} }}\n    }}\n}}\n"
    )


def nginx_command(folder: Path, conf: Path) -> list[str]:
    # -e: the error log before the configuration is read (Debian's default is /var/log).
    return [str(NGINX), "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{process.args!r} exited ({process.returncode}): {_tail(log)}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise StackError(f"{url} did not answer 200 within {START_TIMEOUT_S:g}s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


@contextmanager
def _process(
    command: list[str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the run's, stopped by its PID on the way out, whatever happened."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()  # nginx: fast shutdown; uvicorn: its graceful stop
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextmanager
def nginx(folder: Path, upstreams: list[int] | None = None) -> Iterator[str]:
    """A plain nginx serving on a free port, in its own `folder`; yields its product URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(nginx_conf(folder, port, upstreams))
    url = f"http://127.0.0.1:{port}/products/oak-desk"
    command = [*nginx_command(folder, conf), "-g", "daemon off;"]
    with _process(command, folder / "error.log") as process:
        _wait_until_serving(url, process, folder / "error.log")
        yield url


@contextmanager
def bare_apps(folder: Path, count: int = 2) -> Iterator[list[int]]:
    """`count` bare FastAPI instances on free ports; yields the ports."""
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        ports = []
        for n in range(count):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1"]
            command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
            log = folder / f"bare-{n + 1}.log"
            process = stack.enter_context(_process(command, log, cwd=BARE_APP_DIR))
            _wait_until_serving(f"http://127.0.0.1:{port}/products/oak-desk", process, log)
            ports.append(port)
        yield ports
