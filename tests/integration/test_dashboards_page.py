"""Local mode's dashboards page renders every Grafana dashboard file from Prometheus: after
real traffic through the gateway, headless Chromium opens each dashboard at /d/<uid> and
every panel ends with data, none empty or failed, and the browser logs no error.
Screenshots are kept in .artifacts/dashboards/<uid>.png for people to look at."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopctl.dashboards import DASHBOARDS
from shopctl.install import ensure_debian_packages
from shopctl.load import new_run, profile_with, run_locust
from shopctl.load_gates import read_stats
from shopctl.local import LocalStack
from shopctl.topology import ROOT, SERVICES
from tests.integration.test_auth import bearer, login, new_user
from tests.integration.test_checkout import checkout, wait_status

pytestmark = pytest.mark.integration

SCREENSHOTS = ROOT / ".artifacts" / "dashboards"
CHROMIUM = "/usr/bin/chromium"
# What works as root in a container: no sandbox, no GPU, nothing phoning home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANELS_DEADLINE_S = 45


@dataclass
class PageReport:
    uid: str
    panels: list[dict[str, str]] = field(default_factory=list)
    browser_errors: list[str] = field(default_factory=list)


def sign_up_shoppers(gw: httpx.Client, count: int = 3) -> list[dict[str, str]]:
    """Shoppers signed up and logged in once (sign-ups per address are limited)."""
    return [bearer(login(gw, new_user(gw))["access_token"]) for _ in range(count)]


def shop(gw: httpx.Client, users: list[dict[str, str]], round_: int) -> None:
    """One round of what shoppers do: browse, fill a cart, pay (now and then declined)."""
    products = gw.get("/products").json()["items"]
    assert products, "the catalog is empty"
    for i, user in enumerate(users):
        for product in products[:4]:
            assert gw.get(f"/products/{product['id']}").status_code == 200
        # Earlier tests on the shared stack may have sold some products out.
        in_stock = [p for p in products if p["stock"] > 0]
        assert in_stock, "every product is sold out"
        product = in_stock[(round_ + i) % len(in_stock)]["id"]
        put = gw.put(f"/cart/items/{product}", json={"quantity": 1}, headers=user)
        assert put.status_code == 200, put.text
        token = "tok_declined" if (round_ + i) % 4 == 3 else "tok_visa"
        placed = checkout(gw, user, token)
        assert placed.status_code == 202, placed.text
        wait_status(gw, user, placed.json()["id"], timeout=10)
        assert gw.get("/payments", headers=user).status_code == 200


def rated_services(prometheus: str) -> int:
    query = "count(sum by (service) (rate(http_requests_total[1m])) > 0)"
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}).json()
    return int(float(answer["data"]["result"][0]["value"][1])) if answer["data"]["result"] else 0


def rate_points(prometheus: str) -> int:
    """How many points the last two minutes of the total request rate have, at the step and
    rate window the dashboards use over a short range (5 s, 20 s)."""
    now = time.time()
    params = {"query": "sum(rate(http_requests_total[20s]))", "start": now - 120, "end": now}
    answer = httpx.get(f"{prometheus}/api/v1/query_range", params={**params, "step": 5}).json()
    return sum(len(series["values"]) for series in answer["data"]["result"])


def keep_traffic_up(gw: httpx.Client, prometheus: str, seconds: float = 25) -> None:
    """Traffic for a few scrapes, until Prometheus has a request rate for every service
    (rate() needs two scrapes) and the rates have points enough to draw lines."""
    users = sign_up_shoppers(gw)
    started = time.monotonic()
    deadline = started + 90
    for round_ in itertools.count():
        shop(gw, users, round_)
        enough = time.monotonic() - started >= seconds
        if enough and rated_services(prometheus) == len(SERVICES) and rate_points(prometheus) >= 6:
            return
        assert time.monotonic() < deadline, "Prometheus has no request rate for some service"


@pytest.fixture(scope="module")
def load_run(stack: LocalStack) -> None:
    """A short Locust run, so the load test's dashboard has a run to show (its figures
    exist only while one goes)."""
    chosen = profile_with("smoke", users=8, spawn_rate=8, duration_s=40)
    run = new_run(stack.settings, "smoke", chosen)
    run_locust(run, stack.settings)
    entries, _ = read_stats(run.stats_csv)
    confirmed = [e for e in entries if e.name == "checkout → CONFIRMED"]
    # The journeys' panels need at least one checkout followed to its end.
    assert confirmed and confirmed[0].requests > 0, "the run confirmed no checkout"


def dashboard_uids() -> list[str]:
    return [json.loads(path.read_text())["uid"] for path in sorted(DASHBOARDS.glob("*.json"))]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ensure_debian_packages({"chromium": CHROMIUM})
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def render_dashboard(browser: Any, base_url: str, uid: str, out_dir: Path) -> PageReport:
    """Open one dashboard, expand its collapsed rows, wait until no panel is loading, and
    keep a full-page screenshot."""
    report = PageReport(uid)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})

    def on_console(message: Any) -> None:
        if message.type == "error":
            report.browser_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: report.browser_errors.append(f"page error: {error}"))
    try:
        # The last 5 minutes, where the test's traffic is (the URL parameters of Grafana).
        page.goto(f"{base_url}/d/{uid}?from=now-5m&to=now", wait_until="networkidle")
        page.wait_for_selector("[data-panel-title]", timeout=PANELS_DEADLINE_S * 1000)
        for row in page.query_selector_all('[data-row-collapsed="true"]'):
            row.click()
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-panel-title]')]
                   .every(p => p.dataset.state !== 'loading')""",
            timeout=PANELS_DEADLINE_S * 1000,
        )
        # Let charts finish their layout (resize observers, sparklines) before the picture.
        page.wait_for_timeout(500)
        report.panels = page.eval_on_selector_all(
            "[data-panel-title]",
            """panels => panels.map(p => ({
                title: p.dataset.panelTitle, state: p.dataset.state,
                message: p.querySelector('.panel-message')?.textContent ?? ''}))""",
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out_dir / f"{uid}.png"), full_page=True)
    finally:
        page.close()
    return report


def test_the_dashboard_list_names_every_dashboard_file(stack: LocalStack, browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{stack.settings['GRAFANA_PORT']}/")
        page.wait_for_selector(".dashboard-list a")
        listed = page.eval_on_selector_all(
            ".dashboard-list a", "links => links.map(a => a.dataset.uid)"
        )
    finally:
        page.close()
    assert sorted(listed) == sorted(dashboard_uids())


def test_every_dashboard_renders_with_data_in_every_panel(
    stack: LocalStack, gw: httpx.Client, browser: Any, load_run: None
) -> None:
    keep_traffic_up(gw, f"http://127.0.0.1:{stack.settings['PROMETHEUS_PORT']}")
    base_url = f"http://127.0.0.1:{stack.settings['GRAFANA_PORT']}"
    problems = []
    for uid in dashboard_uids():
        report = render_dashboard(browser, base_url, uid, SCREENSHOTS)
        assert report.panels, f"{uid}: no panel on the page"
        problems += [
            f"{uid} / {p['title']}: {p['state']} {p['message']}".strip()
            for p in report.panels
            if p["state"] != "data"
        ]
        problems += [f"{uid}: browser: {error}" for error in report.browser_errors]
    assert not problems, "\n".join(problems)


def expressions() -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard uid, panel title, target) for every query of every panel."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        model = json.loads(path.read_text())
        panels = model["panels"] + [p for r in model["panels"] for p in r.get("panels", [])]
        for panel in panels:
            found += [(model["uid"], panel["title"], t) for t in panel.get("targets", [])]
    return found


def as_grafana_sends_it(expr: str) -> str:
    """The expression with Grafana's variables as a dashboard opened on the last 5 minutes
    fills them: every instance picked, the rate window of a 5 s scrape."""
    for name, value in {
        "$__rate_interval": "20s",
        "$__interval": "5s",
        "$__range": "5m",
        "$instance": ".*",
    }.items():
        expr = expr.replace(name, value)
    return expr


def test_every_query_of_every_panel_parses_and_returns_data(
    stack: LocalStack, gw: httpx.Client, load_run: None
) -> None:
    """Each target straight against Prometheus's HTTP API, so that an empty panel is named
    by its query whatever draws it; parse_query is the check Docker mode's files get too."""
    prometheus = f"http://127.0.0.1:{stack.settings['PROMETHEUS_PORT']}"
    keep_traffic_up(gw, prometheus, seconds=0)  # a no-op right after the browser test
    now = time.time()
    empty, broken = [], []
    targets = expressions()
    assert len(targets) > 50
    with httpx.Client(base_url=prometheus, timeout=10) as client:
        for uid, title, target in targets:
            expr = as_grafana_sends_it(target["expr"])
            parsed = client.get("/api/v1/parse_query", params={"query": expr}).json()
            if parsed["status"] != "success":
                broken.append(f"{uid} / {title}: {parsed.get('error')}: {expr}")
                continue
            if target.get("instant"):
                answer = client.get("/api/v1/query", params={"query": expr, "time": now})
            else:
                params = {"query": expr, "start": now - 300, "end": now, "step": 5}
                answer = client.get("/api/v1/query_range", params=params)
            if not answer.json()["data"]["result"]:
                empty.append(f"{uid} / {title}: {expr}")
    assert not broken, "queries Prometheus cannot parse:\n" + "\n".join(broken)
    assert not empty, "queries with no data after traffic:\n" + "\n".join(empty)
