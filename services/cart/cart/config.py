"""Settings of the cart service: the kit's shared fields plus cache and cart lifetimes."""

from kit import ServiceSettings


class CartSettings(ServiceSettings):
    service_name: str = "cart"
    # Product reads are cached this long; changes of price or stock also evict at once.
    product_cache_ttl_seconds: int = 30
    # Each instance's own copy of a product it served (cart.local_copies): evictions drop
    # it at once; this bounds its age when an eviction's message is lost.
    product_copy_ttl_seconds: float = 1.0
    # A cart untouched for a week expires.
    cart_ttl_seconds: int = 7 * 24 * 3600
