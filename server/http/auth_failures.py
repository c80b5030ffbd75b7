"""Rate limit of failed authentications per client (docs/auth-limits.md).

A client that fails to authenticate `limit` times within `window` seconds (a bad bearer token,
a bad webhook signature or Basic credentials) is refused, HTTP 429 with `Retry-After` or
WebSocket close 4429, until the oldest of those failures is `window` seconds old. That turns
guessing tokens or secrets from thousands of tries a second into `limit` a window. Requests
without credentials and successful ones are never counted and never slowed.

A client is its remote address from the ASGI scope (behind a proxy, the address the server's
`--forwarded-allow-ips` lets through); IPv6 clients are counted by their /64, which one host
usually holds whole. The counts live in this process's memory: each process of a cluster counts
on its own, and a restart forgets them.
"""

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import lru_cache

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import Scope

from server.settings import Settings

MAX_CLIENTS = 10_000  # clients tracked at once; the least recently failing are forgotten first


class AuthFailures:
    """Sliding-window log: the times of each client's last `limit` failures, nothing more."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.max_clients, self.clock = (
            limit,
            window_seconds,
            max_clients,
            clock,
        )
        # Ordered by each client's latest failure, oldest first: expired entries are in front.
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> "AuthFailures":
        return cls(settings.auth_failure_limit, settings.auth_failure_window_seconds)

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until `client` may try again, or None when it may now."""
        times = self.failures.get(client)
        if times is None or len(times) < self.limit:
            return None
        left = times[0] + self.window - self.clock()
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, client: str) -> None:
        now = self.clock()
        times = self.failures.pop(client, None)
        if times is None:
            times = deque(maxlen=self.limit)
        times.append(now)
        self.failures[client] = times
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self.failures:
            oldest = next(iter(self.failures.values()))
            if oldest[-1] > now - self.window and len(self.failures) <= self.max_clients:
                return
            self.failures.popitem(last=False)


def refusal_message(retry_after: int) -> str:
    return f"too many failed authentications from this address: retry in {retry_after} s"


def client_of(scope: Scope) -> str:
    """The key a client is counted under: its IP address, or its /64 for IPv6."""
    peer = scope.get("client")
    return _client_key(str(peer[0]) if peer else "unknown")


@lru_cache(maxsize=4096)  # parsing an address costs more than the check; clients come back
def _client_key(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def failures_of(scope: Scope) -> AuthFailures:
    """The app's counter (create_app puts it in `app.state`, shared by every endpoint)."""
    failures = getattr(scope["app"].state, "auth_failures", None)
    if not isinstance(failures, AuthFailures):
        raise RuntimeError("app.state.auth_failures is not set: build the app with create_app")
    return failures


def retry_after(scope: Scope) -> int | None:
    """Whole seconds until this connection's client may try again, or None when it may now."""
    return failures_of(scope).retry_after(client_of(scope))


def refusal(conn: HTTPConnection) -> JSONResponse | None:
    """The 429 for a client over the limit, or None: call it before checking credentials."""
    wait = retry_after(conn.scope)
    if wait is None:
        return None
    return JSONResponse(
        {"error": refusal_message(wait)}, status_code=429, headers={"Retry-After": str(wait)}
    )


def record_failure(conn: HTTPConnection) -> None:
    failures_of(conn.scope).failed(client_of(conn.scope))
