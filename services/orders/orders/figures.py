"""What orders' database holds now, exported as gauges (see kit.state_metrics): the
business dashboard compares confirmed totals with the money payments captured, and the
stuck-order alert watches the oldest PENDING order."""

from prometheus_client import Gauge

from kit.state_metrics import Reading

ORDERS = Gauge("orders_stored", "Orders in orders' database, by status.", ["status"])
ORDERS_VALUE = Gauge(
    "orders_stored_value_cents", "Sum of order totals in orders' database, by status.", ["status"]
)
OLDEST_PENDING = Gauge(
    "orders_oldest_pending_age_seconds", "Age of the oldest PENDING order (0 when none)."
)

READINGS = (
    Reading(
        ORDERS_VALUE,
        "SELECT status, coalesce(sum(total_cents), 0) FROM orders GROUP BY status",
    ),
    Reading(ORDERS, "SELECT status, count(*) FROM orders GROUP BY status"),
    Reading(
        OLDEST_PENDING,
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) "
        "FROM orders WHERE status = 'PENDING'",
    ),
)
