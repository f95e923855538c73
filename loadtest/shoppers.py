"""Who the load test's users are: each simulated shopper has an address of its own and an
account of its own, as real shoppers do.

The gateway limits logins and sign-ups per client address (auth's settings), and those
limits stay on under load. A load generator sending every user's requests from one
address would measure the limits instead of the shop, so each user binds its connections
to its own loopback address (127.0.1.1, 127.0.1.2, ...: all of 127.0.0.0/8 reaches the
gateway on 127.0.0.1). Its account is named after that address, so a later run logs in to
the account an earlier run signed up: one sign-up per address, ever, and one login per
user per run.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectionError as RequestsConnectionError
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ProtocolError

PASSWORD = "load-shopper-password"
# Loopback addresses for users: 127.0.1.1 onwards (127.0.0.x is left to everything else).
_next_user = itertools.count()
_lock = threading.Lock()


def next_address() -> str:
    with _lock:
        n = next(_next_user)
    return f"127.0.{1 + n // 254}.{1 + n % 254}"


def email_for(address: str, kind: str = "shopper") -> str:
    return f"load-{kind}-{address.replace('.', '-')}@shopstack.dev"


# Requests a client may send again whenever their connection closed before any answer:
# the idempotent methods (RFC 9110 9.2.2), and any request carrying an Idempotency-Key
# (our checkout fences every attempt with its key). Any other request is sent again only
# when the connection had already carried an answer, as browsers do: a server closing an
# idle kept-alive connection never read what arrived on it.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Requests sent again, for the run's record: {"at", "method", "path", "error"}.
replays: list[dict[str, Any]] = []
# Whether this thread's (with gevent: this user's) last request went out on a
# connection that had already carried an answer.
_last = threading.local()


def replayable(request: PreparedRequest) -> bool:
    return request.method in IDEMPOTENT or "Idempotency-Key" in request.headers


class _TrackedConnection(HTTPConnection):
    """Counts the answers it carried since it connected."""

    answered = 0

    def connect(self) -> None:
        self.answered = 0
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _last.reused = self.sock is not None and self.answered > 0
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        response = super().getresponse()
        self.answered += 1
        return response


class _TrackedPool(HTTPConnectionPool):
    ConnectionCls = _TrackedConnection


def closed_unanswered(error: RequestsConnectionError) -> bool:
    """The connection was reset or closed before a status line came back (urllib3's
    "Connection aborted."), as opposed to a refused connection, a timeout, or an answer
    cut off midway."""
    cause = error.args[0] if error.args else None
    return isinstance(cause, ProtocolError) and isinstance(
        cause.args[-1], (ConnectionResetError, BrokenPipeError)
    )


class ShopperAdapter(HTTPAdapter):
    """Every connection of a session leaves from one local address, and a request that
    meets a kept-alive connection closed under it is sent once more on a new one.

    That is what browsers do, and what HTTP allows (RFC 9112 9.3.1): a server may close
    an idle connection at any moment (nginx's old workers close theirs at every reload,
    which consul-template triggers when an instance comes or goes), and a request already
    on its way meets a reset. The request was never read, so sending it again changes
    nothing. A request that is not safe to repeat is sent again only if its connection
    was a kept-alive one (see IDEMPOTENT); on a fresh connection a reset may come from a
    server that read it. Each replay is recorded."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "http": _TrackedPool,
        }

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        _last.reused = False
        try:
            return super().send(request, *args, **kwargs)
        except RequestsConnectionError as error:
            safe = replayable(request) or _last.reused
            if not (safe and closed_unanswered(error)):
                raise
            replays.append(
                {
                    "at": time.time(),
                    "method": request.method,
                    "path": request.path_url,
                    "error": str(error)[:200],
                }
            )
        return super().send(request, *args, **kwargs)


def bind(client: Any, address: str) -> None:
    """Make a requests-based client (Locust's HttpSession) send from `address`, sending a
    request again when a kept-alive connection closes under it (ShopperAdapter)."""
    adapter = ShopperAdapter(address)
    client.mount("http://", adapter)
    client.mount("https://", adapter)


class Account:
    """A shopper's tokens: logs in once (signing up on the first run from its address),
    and refreshes the access token before it expires instead of logging in again."""

    def __init__(self, client: Any, email: str) -> None:
        self.client = client
        self.email = email
        self.access_token = ""
        self.refresh_token = ""
        self.expires_at = 0.0

    @property
    def headers(self) -> dict[str, str]:
        if time.monotonic() > self.expires_at - 60:
            self._refresh()
        return {"Authorization": f"Bearer {self.access_token}"}

    def _take(self, tokens: dict[str, Any]) -> None:
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]
        self.expires_at = time.monotonic() + tokens["expires_in"]

    def sign_in(self) -> None:
        credentials = {"email": self.email, "password": PASSWORD}
        with self.client.post("/auth/login", json=credentials, catch_response=True) as login:
            if login.status_code == 401:
                login.success()  # not signed up yet: expected once per address
            elif login.status_code == 200:
                self._take(login.json())
                return
        with self.client.post("/auth/register", json=credentials, catch_response=True) as signup:
            if signup.status_code == 409:
                signup.success()  # a concurrent run signed it up; the login below decides
        login = self.client.post("/auth/login", json=credentials)
        login.raise_for_status()
        self._take(login.json())

    def _refresh(self) -> None:
        answer = self.client.post("/auth/refresh", json={"refresh_token": self.refresh_token})
        if answer.status_code == 200:
            self._take(answer.json())
        else:
            self.sign_in()
