"""The auth service's domain errors; the kit renders each as problem+json."""

from kit import ShopError


class EmailTaken(ShopError):
    status = 409
    type = "email-taken"
    title = "Email already registered"


class InvalidCredentials(ShopError):
    status = 401
    type = "invalid-credentials"
    title = "Invalid credentials"

    def __init__(self) -> None:
        # One message for a wrong email and a wrong password: no account enumeration.
        super().__init__("The email or the password is wrong.")


class InvalidRefreshToken(ShopError):
    status = 401
    type = "invalid-refresh-token"
    title = "Invalid refresh token"


class TooManyAttempts(ShopError):
    status = 429
    type = "too-many-attempts"
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
