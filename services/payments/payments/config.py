"""Settings of the payments service: the kit's shared fields plus the card processor."""

from kit import ServiceSettings


class PaymentsSettings(ServiceSettings):
    service_name: str = "payments"
    # The card processor, an outside system (not in Consul).
    psp_url: str = "http://127.0.0.1:8140"
    psp_timeout_seconds: float = 5.0
