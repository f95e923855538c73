"""Settings of the cart service: the kit's shared fields (environment variables with the
same names in both modes); its own fields arrive with its domain features."""

from kit import ServiceSettings


class CartSettings(ServiceSettings):
    service_name: str = "cart"
