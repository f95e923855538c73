"""The payments service's domain errors."""

from kit import ShopError


class PaymentNotFound(ShopError):
    status = 404
    type = "payment-not-found"
    title = "Payment not found"
