"""The events orders emits and consumes (its own copies of the types)."""

ORDER_EVENTS = "order-events"
PAYMENT_EVENTS = "payment-events"

ORDER_CREATED = "order.created"
# Sent again for an order still PENDING after the saga timeout; payments answers it
# idempotently (the charge's idempotency key is the order's).
PAYMENT_REQUESTED = "order.payment_requested"

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
