"""The cart service's domain errors."""

from kit import ShopError


class ProductNotFound(ShopError):
    status = 404
    type = "product-not-found"
    title = "Product not found"


class NotEnoughStock(ShopError):
    status = 409
    type = "not-enough-stock"
    title = "Not enough stock"


class ReservationNotFound(ShopError):
    status = 404
    type = "reservation-not-found"
    title = "Reservation not found"


class ReservationClosed(ShopError):
    status = 409
    type = "reservation-closed"
    title = "Reservation already closed"


class ReservationMismatch(ShopError):
    status = 409
    type = "reservation-mismatch"
    title = "Another reservation under this order id"
