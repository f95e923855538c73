"""The orders service's domain errors."""

from kit import ShopError


class OrderNotFound(ShopError):
    status = 404
    type = "order-not-found"
    title = "Order not found"


class IdempotencyKeyRequired(ShopError):
    status = 400
    type = "idempotency-key-required"
    title = "Idempotency-Key required"


class IdempotencyKeyReused(ShopError):
    status = 422
    type = "idempotency-key-reused"
    title = "Idempotency-Key reused"


class RequestInProgress(ShopError):
    status = 409
    type = "request-in-progress"
    title = "Request in progress"


class EmptyCart(ShopError):
    status = 422
    type = "empty-cart"
    title = "Empty cart"


class OutOfStock(ShopError):
    status = 409
    type = "out-of-stock"
    title = "Out of stock"


class UnknownProducts(OutOfStock):
    type = "product-not-sold"
    title = "Product no longer sold"


class CheckoutInterrupted(ShopError):
    """This attempt lost its hold or its stock to a newer one; the client's retry (same
    key) gets the answer of whichever attempt finishes."""

    status = 503
    type = "checkout-interrupted"
    title = "Checkout interrupted"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class ReservationMismatch(Exception):
    """cart holds other lines under this order id: never record an order over them."""


class ReservationClosed(Exception):
    """cart's reservation for the order can no longer be committed or released as asked:
    a permanent answer that ends the order."""
