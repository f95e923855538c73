"""Settings of the orders service: the kit's shared fields (environment variables with the
same names in both modes); its own fields arrive with its domain features."""

from kit import ServiceSettings


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
