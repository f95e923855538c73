"""The events payments consumes and emits (its own copies of the types)."""

ORDER_EVENTS = "order-events"
PAYMENT_EVENTS = "payment-events"

ORDER_CREATED = "order.created"
PAYMENT_REQUESTED = "order.payment_requested"

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
