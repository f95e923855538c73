"""What payments' database holds now, exported as gauges (see kit.state_metrics): money
captured and kept (SUCCEEDED) is what the business dashboard sets against the totals of
confirmed orders."""

from prometheus_client import Gauge

from kit.state_metrics import Reading

PAYMENTS = Gauge("payments_stored", "Payments in payments' database, by status.", ["status"])
PAYMENTS_AMOUNT = Gauge(
    "payments_stored_amount_cents", "Sum of payment amounts, by status.", ["status"]
)

READINGS = (
    Reading(PAYMENTS, "SELECT status, count(*) FROM payments GROUP BY status"),
    Reading(
        PAYMENTS_AMOUNT,
        "SELECT status, coalesce(sum(amount_cents), 0) FROM payments GROUP BY status",
    ),
)
