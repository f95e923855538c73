"""`make bench`'s parts that can break without the stack: reading wrk, the write's Lua
script (run by a real wrk against a server the test starts), the reference nginx's
configuration (checked by a real nginx), the goals' verdicts and the comparison."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shopctl.bench import ceilings, report, wrk
from shopctl.bench.report import Document
from shopctl.bench.wrk import WrkResult, WrkSettings
from shopctl.install import ensure_debian_packages

pytestmark = pytest.mark.unit

# Captured from this machine: `wrk -t2 -c32 -d3s --latency` on GET /products/oak-desk
# through the gateway.
REAL_OUTPUT = """\
Running 3s test @ http://127.0.0.1:8080/products/oak-desk
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.36ms   14.71ms 114.71ms   87.88%
    Req/Sec     1.86k   350.20     2.77k    86.67%
  Latency Distribution
     50%    6.87ms
     75%   14.03ms
     90%   31.28ms
     99%   71.37ms
  11119 requests in 3.02s, 3.47MB read
Requests/sec:   3685.30
Transfer/sec:      1.15MB
"""

# A run with failures, in the units and lines wrk prints (microseconds and seconds; the
# socket-error line before the non-2xx one, each only when its count is not zero).
FAILING_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8080/products/no-such
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us    1.02s     2.00s    56.00%
    Req/Sec    24.90     10.86    40.00     60.00%
  Latency Distribution
     50%  812.00us
     75%  106.29ms
     90%    1.02s
     99%    2.00s
  25 requests in 1.00s, 9.55KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 20
Requests/sec:     24.88
Transfer/sec:      9.50KB
"""


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    ensure_debian_packages({"wrk": "/usr/bin/wrk", "nginx": str(ceilings.NGINX)})


def test_wrk_figures_are_read_in_milliseconds_whatever_unit_wrk_printed() -> None:
    real = wrk.parse(REAL_OUTPUT)
    assert real == WrkResult(rps=3685.30, p50_ms=6.87, p99_ms=71.37, requests=11119)
    failing = wrk.parse(FAILING_OUTPUT)
    assert failing.p50_ms == pytest.approx(0.812)
    assert failing.p99_ms == pytest.approx(2000.0)
    assert (failing.non_2xx, failing.socket_errors, failing.failed) == (20, 5, 25)
    assert failing.rps == 24.88


def test_output_without_the_latency_distribution_is_refused() -> None:
    without = REAL_OUTPUT.replace("     99%   71.37ms\n", "")
    with pytest.raises(ValueError, match="99% latency"):
        wrk.parse(without)


@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server on 127.0.0.1 that records each request's method, path, Authorization and
    body, and answers 200 only to a bearer token (401 otherwise, which wrk counts)."""
    seen: list[dict[str, str]] = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk's connections are

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            auth = self.headers.get("Authorization", "")
            seen.append(
                {
                    "connection": str(self.client_address[1]),
                    "method": self.command,
                    "path": self.path,
                    "auth": auth,
                    "type": self.headers.get("Content-Type", ""),
                    "body": body,
                }
            )
            self.send_response(200 if auth.startswith("Bearer ") else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_write_script_sends_every_threads_own_tokens_and_the_body(
    recording_server: tuple[str, list[dict[str, str]]], tmp_path: Path
) -> None:
    base, seen = recording_server
    tokens = ["tok-a.1", "tok-b.2", "tok-c.3", "tok-d.4"]
    script = tmp_path / "write.lua"
    script.write_text(
        wrk.authenticated_script("PUT", "/cart/items/oak-desk", '{"quantity": 1}', tokens, 2)
    )
    result = wrk.run(f"{base}/cart/items/oak-desk", WrkSettings(2, 2, 1), script)
    assert result.requests > 0 and result.failed == 0
    assert {r["method"] for r in seen} == {"PUT"}
    assert {r["path"] for r in seen} == {"/cart/items/oak-desk"}
    assert {r["body"] for r in seen} == {'{"quantity": 1}'}
    assert {r["type"] for r in seen} == {"application/json"}
    # One connection a thread here: thread 1 goes round tokens 1 and 3, thread 2 round 2
    # and 4, and nothing else is sent.
    by_connection: dict[str, set[str]] = {}
    for r in seen:
        by_connection.setdefault(r["connection"], set()).add(r["auth"].removeprefix("Bearer "))
    assert sorted(map(sorted, by_connection.values())) == [
        ["tok-a.1", "tok-c.3"],
        ["tok-b.2", "tok-d.4"],
    ]


def test_the_script_needs_a_token_for_every_thread_and_plain_strings() -> None:
    with pytest.raises(ValueError, match="2 threads"):
        wrk.authenticated_script("PUT", "/p", "{}", ["one"], 2)
    with pytest.raises(ValueError, match="printable ASCII"):
        wrk.authenticated_script("PUT", "/p", "{}", ["new\nline"], 1)
    quoted = wrk.authenticated_script("PUT", "/p", '{"a": "\\\\"}', ["t"], 1)
    assert r'"{\"a\": \"\\\\\"}"' in quoted


@pytest.mark.parametrize("upstreams", [None, [18001, 18002]], ids=["ceiling A", "ceiling B"])
def test_the_reference_nginx_configuration_is_valid_for_nginx(
    upstreams: list[int] | None, tmp_path: Path
) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(ceilings.nginx_conf(tmp_path, 18000, upstreams))
    checked = subprocess.run(
        [*ceilings.nginx_command(tmp_path, conf), "-t"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    text = conf.read_text()
    assert "worker_processes 1;" in text and "access_log off;" in text
    assert "listen 127.0.0.1:18000;" in text
    if upstreams:
        assert "server 127.0.0.1:18001;" in text and "server 127.0.0.1:18002;" in text
        assert "keepalive 16;" in text and 'proxy_set_header Connection "";' in text
    else:
        body = text.split("return 200 '", 1)[1].split("'", 1)[0]
        assert json.loads(body) == ceilings.PRODUCT


def test_the_plain_nginx_serves_the_product_and_is_stopped_after(tmp_path: Path) -> None:
    import httpx

    with ceilings.nginx(tmp_path / "a") as url:
        answer = httpx.get(url)
        pid = int((tmp_path / "a" / "nginx.pid").read_text())
    assert answer.status_code == 200 and answer.json() == ceilings.PRODUCT
    assert not Path(f"/proc/{pid}").exists()


def rows(a: float, b: float, read: float, write: float, **extra: Any) -> dict[str, WrkResult]:
    """Rows with these req/s; read's p99 is `read_p99` (B's is 10 ms)."""
    out = {
        "ceiling_a": WrkResult(a, 1, 5, 1000),
        "ceiling_b": WrkResult(b, 2, 10, 1000),
        "read": WrkResult(read, 3, extra.get("read_p99", 20), 1000),
        "write": WrkResult(write, 4, 40, 1000, non_2xx=extra.get("write_non_2xx", 0)),
    }
    return out


def verdicts(doc_goals: list[report.Goal]) -> dict[str, str]:
    return {g.name: g.verdict for g in doc_goals}


def test_the_ratios_pass_at_their_goal_and_miss_below_it() -> None:
    at_goal = verdicts(report.goals(rows(20000, 10000, 7000, 5000, read_p99=30), 100))
    assert set(at_goal.values()) == {"PASS"}
    below = report.goals(rows(20000, 10000, 6999, 4999, read_p99=30.1), 99.9)
    assert [g.verdict for g in below] == ["MISS"] * 4
    assert [round(g.value or 0, 4) for g in below] == [0.6999, 0.4999, 3.01, 99.9]


def test_failures_flag_the_ratios_they_touch_and_a_skipped_checkout_says_so() -> None:
    judged = verdicts(report.goals(rows(20000, 10000, 9000, 9000, write_non_2xx=3), None))
    assert judged == {
        "read req/s / B's": "PASS",
        "write req/s / B's": "FLAGGED",
        "read p99 / B's": "PASS",
        "checkout orders/s": "SKIPPED",
    }


def doc(stamp: str, read_rps: float = 5000, checkout: bool = True) -> Document:
    return report.document(
        stamp=stamp,
        commit="abc1234",
        machine="2 cores",
        settings={"wrk": "wrk -t2 -c32 -d10s --latency"},
        rows=rows(20000, 10000, read_rps, 2000),
        checkout={"orders_per_s": 40.0, "p99_bound_ms": 500.0, "steps": []} if checkout else None,
    )


def test_a_result_is_compared_with_the_latest_one_before_it(tmp_path: Path) -> None:
    assert report.comparison(None, doc("20261201T100000Z")) == "Compared with: no earlier result"
    older, previous = doc("20261201T090000Z"), doc("20261201T100000Z", read_rps=4000)
    later = doc("20261201T120000Z")
    for d in (older, previous, later):
        (tmp_path / f"{d['time']}.json").write_text(json.dumps(d))
    now = doc("20261201T110000Z")
    assert report.latest_before(tmp_path, now["time"]) == previous
    assert report.latest_before(tmp_path, "20261201T080000Z") is None
    lines = report.comparison(previous, now).splitlines()
    assert lines[0] == "Compared with 20261201T100000Z (commit abc1234):"
    read = next(line for line in lines if "GET /products/oak-desk req/s" in line)
    assert read.split()[-4:] == ["4000.00", "->", "5000.00", "+25.0%"]
    ratio = next(line for line in lines if line.strip().startswith("read req/s / B's"))
    assert ratio.split()[-4:] == ["0.40", "->", "0.50", "+25.0%"]
    checkout = next(line for line in lines if "checkout orders/s" in line)
    assert checkout.split()[-1] == "+0.0%"
    skipped = report.comparison(previous, doc("20261201T110000Z", checkout=False)).splitlines()
    assert skipped[-1].split()[2:6] == ["40.00", "->", "-", "not"]


def test_the_table_shows_every_row_goal_and_flag() -> None:
    flagged = report.document(
        stamp="20261201T100000Z",
        commit="abc1234-dirty",
        machine="2 cores",
        settings={"wrk": "wrk -t2 -c32 -d10s --latency"},
        rows=rows(20000, 10000, 7500, 2000, write_non_2xx=3),
        checkout=None,
    )
    text = report.table(flagged)
    for name in report.ROWS.values():
        assert name in text
    assert "read req/s / B's" in text and "0.75" in text and "PASS" in text
    assert "FLAGGED write: PUT /cart/items/oak-desk: 3 non-2xx, 0 socket errors" in text
    assert "SKIPPED" in text


@pytest.mark.parametrize("measured", [True, False], ids=["with checkout", "CHECKOUT=0"])
def test_the_plot_is_a_png_with_or_without_the_checkout(measured: bool, tmp_path: Path) -> None:
    from shopctl.bench import plot

    steps = [
        {"rate": rate, "sent": rate * 5, "p50_ms": p99 / 2, "p99_ms": p99, "held": p99 <= 500}
        for rate, p99 in ((10, 200.0), (20, 380.0), (30, 640.0))
    ]
    made = report.document(
        stamp="20261201T100000Z",
        commit="abc1234",
        machine="2 cores",
        settings={"wrk": "wrk -t2 -c32 -d10s --latency"},
        rows=rows(20000, 10000, 7500, 2000, write_non_2xx=3),
        checkout={"orders_per_s": 20.0, "p99_bound_ms": 500.0, "steps": steps}
        if measured
        else None,
    )
    png = plot.draw(made, tmp_path / "run.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
