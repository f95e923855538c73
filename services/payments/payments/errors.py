"""The payments service's domain errors."""

from kit import ShopError


class PaymentNotFound(ShopError):
    status = 404
    type = "payment-not-found"
    title = "Payment not found"


class ProcessorUnavailable(Exception):
    """The card processor did not give a final answer; the event is tried again."""
