"""Business and invariants: what the shop sells, and whether the books add up while it
runs (the live counterpart of `make verify`)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from shopctl.grafana.common import GREEN, RED, YELLOW, graph, new_dashboard, row, single, steps

CAPTURED = 'max(payments_stored_amount_cents{status="SUCCEEDED"}) / 100'
CONFIRMED = 'max(orders_stored_value_cents{status="CONFIRMED"}) / 100'
# Per instance: each scrape holds one reading of cart's database (one statement), while
# two instances' readings may be seconds apart, so they are never mixed.
STOCK_GAP = (
    'max(abs(sum by (instance_id) (stock_units{state="initial"}) - '
    'sum by (instance_id) (stock_units{state=~"remaining|reserved|sold"})))'
)


def build() -> Dashboard:
    d = new_dashboard(
        "shopstack-business",
        "Business and invariants",
        "Orders per minute by status, the payment success ratio, money captured "
        "against confirmed totals, and stock that must add up.",
        "business",
    )
    d.with_row(row("Invariants (0 is healthy)"))
    d.with_panel(
        single(
            "Captured less confirmed",
            "Money kept by payments less the totals of confirmed orders; "
            "non-zero only while orders close.",
            f"{CAPTURED} - {CONFIRMED}",
            unit="currencyUSD",
            thresholds=steps((None, RED), (-0.005, GREEN), (0.005, RED)),
            background=True,
            width=6,
        )
    )
    d.with_panel(
        single(
            "Stock unaccounted",
            "Units that initial stock less remaining, reserved and sold leaves unexplained, as cart's database holds them.",
            STOCK_GAP,
            thresholds=steps((None, RED), (-0.5, GREEN), (0.5, RED)),
            background=True,
            decimals=0,
            width=6,
        )
    )
    d.with_panel(
        single(
            "Oldest PENDING order",
            "Age of the oldest order not yet CONFIRMED or CANCELLED.",
            "max(orders_oldest_pending_age_seconds)",
            unit="s",
            thresholds=steps((None, GREEN), (30, YELLOW), (120, RED)),
            width=6,
        )
    )
    hits = 'sum(rate(payments_total{outcome="succeeded"}[$__rate_interval]))'
    tried = 'sum(rate(payments_total{outcome=~"succeeded|failed"}[$__rate_interval]))'
    d.with_panel(
        single(
            "Payment success",
            "Charges that succeeded, of all tried.",
            f"({hits} or {tried} * 0) / {tried}",
            unit="percentunit",
            thresholds=steps((None, RED), (0.5, YELLOW), (0.9, GREEN)),
            width=6,
        )
    )
    d.with_row(row("Orders"))
    d.with_panel(
        graph(
            "Orders per minute",
            "Orders placed (202), and closed by outcome.",
            [
                ("sum(rate(orders_placed_total[$__rate_interval])) * 60", "placed"),
                (
                    "sum by (outcome) (rate(saga_outcomes_total[$__rate_interval])) * 60",
                    "{{outcome}}",
                ),
            ],
            unit="opm",
            series=("confirmed", "cancelled"),
        )
    )
    d.with_panel(
        graph(
            "Orders stored by status",
            "Rows in orders' database by status.",
            [("max by (status) (orders_stored)", "{{status}}")],
            series=("CONFIRMED", "CANCELLED", "PENDING"),
        )
    )
    d.with_panel(
        graph(
            "Money",
            "Money captured by payments against the totals of confirmed orders.",
            [(CAPTURED, "captured"), (CONFIRMED, "confirmed orders")],
            unit="currencyUSD",
        )
    )
    d.with_panel(
        graph(
            "Stock",
            "Units of all products by state.",
            [("max by (state) (stock_units)", "{{state}}")],
        )
    )
    return d
