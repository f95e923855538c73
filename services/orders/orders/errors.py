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
