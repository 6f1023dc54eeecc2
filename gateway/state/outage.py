"""Dependency outages as the gateway reports them: a typed error for callers, one log line per outage and recovery."""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("gateway.outage")


class DependencyUnavailable(Exception):
    """A dependency the request needs cannot be reached; answered 503 with Retry-After, never 500."""

    http_status = 503

    def __init__(self, what: str, cause: str = "", retry_after: int = 5):
        self.what = what  # "shared session store", "configuration database"
        self.cause = cause
        self.retry_after = retry_after
        super().__init__(f"{what} unavailable" + (f" ({cause})" if cause else ""))

    @property
    def summary(self) -> str:
        return f"{self.what[0].upper()}{self.what[1:]} unavailable"

    @property
    def message(self) -> str:
        return f"{self.summary}; retry in {self.retry_after} s."


class StateUnavailable(DependencyUnavailable):
    def __init__(self, cause: str = ""):
        super().__init__("shared session store", cause)


class RateCountersUnavailable(DependencyUnavailable):
    """A rate-limited call while Redis is away: refused rather than counted per process (see README, Faults)."""

    def __init__(self, cause: str = ""):
        super().__init__("shared rate-limit counters", cause)


class ConfigStoreUnavailable(DependencyUnavailable):
    def __init__(self, cause: str = ""):
        super().__init__("configuration database", cause)


class Outage:
    """Whether one dependency is down, as seen by this process: logs when it goes and when it comes back.

    A failing request per client would otherwise be a traceback per request; the operator needs two lines.
    """

    def __init__(self, name: str):
        self.name = name
        self.down_since: float | None = None
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, cause: object) -> None:
        with self._lock:
            self.failures += 1
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        log.error("%s unreachable (%s); requests that need it answer 503 until it returns", self.name, cause)

    def succeeded(self) -> bool:
        """Record a success; True when this ended an outage."""
        if self.down_since is None:
            return False
        with self._lock:
            since, self.down_since = self.down_since, None
            failures, self.failures = self.failures, 0
        if since is None:
            return False
        log.warning("%s reachable again after %.1f s (%d failed attempts meanwhile)", self.name,
                    time.monotonic() - since, failures)
        return True


redis_outage = Outage("Redis (shared session store)")
database_outage = Outage("Database (configuration store)")
