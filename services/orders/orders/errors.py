"""The orders service's domain errors."""

from kit import ShopError


class InvalidCursor(ShopError):
    status = 422
    type = "invalid-cursor"
    title = "Invalid cursor"
