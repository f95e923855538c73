"""wrk, run and read: one measurement's throughput, latency quantiles and failures, and the
Lua script that makes it send authenticated writes.

wrk prints its figures for people (`157.62ms`, `1.02s`, `812.00us`), so they are parsed back
from that text; `--latency` adds the quantiles. It counts an answer of 400 or above as
"Non-2xx or 3xx responses" and a connect, read, write or timeout failure as a socket error;
the line is there only when the count is not zero.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkSettings:
    threads: int = 2
    connections: int = 32
    duration_s: int = 10

    def args(self) -> list[str]:
        return [f"-t{self.threads}", f"-c{self.connections}", f"-d{self.duration_s}s", "--latency"]

    def line(self) -> str:
        return f"wrk {' '.join(self.args())}"


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors


def _milliseconds(value: str, unit: str) -> float:
    # wrk prints 2 decimals, so 4 keep every digit of microseconds without float noise.
    return round(float(value) * _UNIT_MS[unit], 4)


def parse(output: str) -> WrkResult:
    """The figures of one wrk run with --latency, from what it printed."""

    def quantile(percent: int) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)$", output, re.M)
        if not match:
            raise ValueError(
                f"no {percent}% latency in wrk's output (run with --latency):\n{output}"
            )
        return _milliseconds(match.group(1), match.group(2))

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    requests = re.search(r"^\s+(\d+) requests in ", output, re.M)
    if not rps or not requests:
        raise ValueError(f"no Requests/sec in wrk's output:\n{output}")
    non_2xx = re.search(r"^\s+Non-2xx or 3xx responses: (\d+)", output, re.M)
    sockets = re.search(
        r"^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output, re.M
    )
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=quantile(50),
        p99_ms=quantile(99),
        requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
    )


def run(url: str, settings: WrkSettings, script: Path | None = None) -> WrkResult:
    command = ["wrk", *settings.args()]
    if script:
        command += ["-s", str(script)]
    # wrk stops by itself after the duration; the timeout only guards against a hang.
    out = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=settings.duration_s + 60,
    )
    return parse(out.stdout)


def _lua_string(text: str) -> str:
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"not a printable ASCII string for the Lua script: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authenticated_script(method: str, path: str, body: str, tokens: list[str], threads: int) -> str:
    """A wrk script sending `method path` with `body`, each of its `threads` threads with
    bearer tokens of its own: thread n takes tokens n, n+threads, n+2*threads, ... and its
    requests go round them. (wrk does not tell a script which connection a request is for,
    so tokens go by thread; each thread's init runs before the next thread is set up, so
    the count of threads comes from here.)"""
    if len(tokens) < threads:
        raise ValueError(f"{threads} threads need at least as many tokens, not {len(tokens)}")
    listed = ",\n".join(f"  {_lua_string(t)}" for t in tokens)
    return f"""-- Written by shopctl.bench: a run's bearer tokens; deleted with the run's folder.
local tokens = {{
{listed}
}}
local set_up = 0

function setup(thread)
  thread:set("index", set_up)
  set_up = set_up + 1
end

function init(args)
  requests, next_request = {{}}, 1
  for i = index + 1, #tokens, {threads} do
    requests[#requests + 1] = wrk.format({_lua_string(method)}, {_lua_string(path)}, {{
      ["Authorization"] = "Bearer " .. tokens[i],
      ["Content-Type"] = "application/json",
    }}, {_lua_string(body)})
  end
end

function request()
  local answer = requests[next_request]
  next_request = next_request % #requests + 1
  return answer
end
"""
