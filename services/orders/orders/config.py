"""Settings of the orders service: the kit's shared fields plus the saga's timing."""

from kit import ServiceSettings


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    # A PENDING order older than this asks for its payment again.
    saga_timeout_seconds: float = 20.0
    redrive_interval_seconds: float = 2.0
    # An Idempotency-Key held this long by a request that never finished may be retaken.
    idempotency_hold_seconds: float = 30.0
