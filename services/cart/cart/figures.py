"""Stock as cart's database holds it now, exported as gauges (see kit.state_metrics): the
invariants dashboard shows initial = remaining + reserved + sold, live."""

from prometheus_client import Gauge

from kit.state_metrics import Reading

STOCK = Gauge(
    "stock_units",
    "Units of all products: initial, remaining, and held by reservations (reserved, sold).",
    ["state"],
)

READINGS = (
    Reading(
        STOCK,
        """SELECT 'initial', coalesce(sum(initial_stock), 0) FROM products
           UNION ALL SELECT 'remaining', coalesce(sum(stock), 0) FROM products
           UNION ALL SELECT lower(o.status), coalesce(sum(l.quantity), 0)
             FROM stock_orders o JOIN reservation_lines l USING (order_id)
            WHERE o.status IN ('RESERVED', 'SOLD') GROUP BY o.status""",
    ),
)
