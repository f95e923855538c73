"""Settings of the payments service: the kit's shared fields (environment variables with the
same names in both modes); its own fields arrive with its domain features."""

from kit import ServiceSettings


class PaymentsSettings(ServiceSettings):
    service_name: str = "payments"
