"""Settings of the auth service: the kit's shared fields plus token lifetimes, password
hashing cost, login and sign-up limits and the admin account created at start-up."""

from pydantic import SecretStr

from kit import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: str = "auth"

    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 14 * 24 * 3600

    # argon2id at OWASP's minimum or above (19 MiB, 2 passes, 1 lane).
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # Hashes computed at once per instance; more wait up to the timeout, then get a 503.
    max_concurrent_hashes: int = 2
    hash_queue_timeout_seconds: float = 2.0

    # Failed logins per account per window; all login attempts per client address.
    login_failures_per_account: int = 5
    login_failure_window_seconds: int = 900
    login_attempts_per_address: int = 30
    login_address_window_seconds: int = 60
    # Sign-ups per client address per window: room for a household or an office behind
    # one address, none for a script filling the user table (and the hashing capacity).
    signup_attempts_per_address: int = 20
    signup_address_window_seconds: int = 600

    admin_email: str = "admin@shopstack.dev"
    admin_password: SecretStr = SecretStr("change-me-admin-password")
